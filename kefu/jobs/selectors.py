"""Reads of background jobs: who sees which, and how far a job has got."""

import datetime as dt
from dataclasses import dataclass

from django.db.models import QuerySet

from kefu.accounts.models import User
from kefu.core.permissions import has_perm
from kefu.jobs.exceptions import JobNotFound
from kefu.jobs.kinds import JobKind, job_kind_get
from kefu.jobs.models import Job
from kefu.jobs.runs import progress_file_read

# Below this share done (or this many seconds in), a time-left estimate is mostly noise.
_ESTIMATE_FROM_SHARE = 0.02
_ESTIMATE_FROM_SECONDS = 2.0


def job_list_visible_to(*, user: User | None, everyone: bool = False) -> QuerySet[Job]:
    """The user's own jobs; with `everyone`, those of all users for holders of view_all_jobs
    (the system sees every job)."""
    jobs = Job.objects.select_related("owner")
    if user is None or (everyone and has_perm(user, "jobs.view_all_jobs")):
        return jobs
    return jobs.filter(owner=user)


def job_get_for_user(*, user: User | None, job_id: int) -> Job:
    """One job the user may see: their own, or anyone's with view_all_jobs."""
    job = job_list_visible_to(user=user, everyone=True).filter(pk=job_id).first()
    if job is None:
        raise JobNotFound(job_id)
    return job


@dataclass(frozen=True)
class JobProgress:
    """How far a job is, for the progress bar: rows done of total in the current step, the
    share of the whole job done (steps weighted by their usual share of its time) and an
    estimate of the time left."""

    phase: str
    phase_label: str
    step: int  # 1-based; 0 before the first step
    steps: int
    done: int
    total: int | None
    percent: int | None  # of the whole job; None: not known yet
    seconds_left: int | None
    elapsed_seconds: int

    @property
    def is_known(self) -> bool:
        return self.percent is not None


def job_progress(job: Job, *, now: dt.datetime) -> JobProgress:
    """The job's progress from its row, or from its progress file while the run is inside its
    own transaction (the row cannot be updated where others would see it then)."""
    phase, done, total = job.phase, job.done, job.total
    if job.status == Job.Status.RUNNING:
        live = progress_file_read(job.pk)
        if live and live.get("claim") == job.claimed_by and _newer(live, job):
            phase = str(live.get("phase") or "")
            done = int(live.get("done") or 0)
            total = live.get("total")
    kind = job_kind_get(job.kind)
    started = job.started_at or job.created_at
    elapsed = max((now - started).total_seconds(), 0.0) if job.is_active else 0.0
    if job.status == Job.Status.SUCCEEDED:
        steps = len(kind.phases) if kind else 1
        return JobProgress("", "", steps, steps, done, total, 100, 0, int(elapsed))
    step, steps, label, share = _share(kind, phase, done, total)
    if job.status == Job.Status.QUEUED or share is None:
        return JobProgress(phase, label, step, steps, done, total, None, None, int(elapsed))
    seconds_left = None
    estimable = share >= _ESTIMATE_FROM_SHARE and elapsed >= _ESTIMATE_FROM_SECONDS
    if job.status == Job.Status.RUNNING and estimable:
        seconds_left = round(elapsed * (1 - share) / share)
    return JobProgress(
        phase, label, step, steps, done, total, int(share * 100), seconds_left, int(elapsed)
    )


def _newer(live: dict, job: Job) -> bool:
    try:
        at = dt.datetime.fromisoformat(str(live.get("at")))
    except ValueError:
        return False
    return job.heartbeat_at is None or at >= job.heartbeat_at


def _share(
    kind: JobKind | None, phase: str, done: int, total: int | None
) -> tuple[int, int, str, float | None]:
    """(step number, number of steps, step label, share of the job done)."""
    if kind is None or not kind.phases:
        share = done / total if total else None
        return 0, 0, "", share
    weights = [max(p.weight, 0.0) for p in kind.phases]
    whole = sum(weights) or 1.0
    for index, p in enumerate(kind.phases):
        if p.key != phase:
            continue
        before = sum(weights[:index])
        within = min(done / total, 1.0) if total else 0.0
        share = (before + weights[index] * within) / whole
        # An unknown total in the first step: nothing to measure yet.
        known = bool(total) or index > 0
        return index + 1, len(kind.phases), str(p.label), share if known else None
    return 0, len(kind.phases), "", None
