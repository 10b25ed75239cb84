"""Writes of background jobs: start, run (claim, run the kind, end), cancel, recover, prune.

Every state change of a job is one conditional UPDATE on its row (`WHERE status = ... AND
claimed_by = ...`), so two workers, a sweep and a cancel can meet on one job and exactly one
of them wins.
"""

import datetime as dt
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from kefu.accounts.models import User
from kefu.audit.services import audit_record
from kefu.core.exceptions import DomainError
from kefu.core.permissions import require_perm
from kefu.jobs.exceptions import (
    JobCancelled,
    JobLost,
    JobNotCancellable,
    JobNotFinished,
    JobNotFound,
    JobResultGone,
)
from kefu.jobs.kinds import JobKind, job_kind_get
from kefu.jobs.models import Job
from kefu.jobs.runs import (
    SYSTEM_PARAM,
    Claim,
    JobRun,
    ProgressReport,
    claim_token,
    job_dir,
    jobs_root,
    progress_file_read,
)
from kefu.notifications.services import notify

logger = logging.getLogger(__name__)

# A job whose worker died is run again from the start, up to this many runs in all.
MAX_ATTEMPTS = 3
# Jobs that ran at least this long tell their owner when they end (failures always do).
NOTIFY_AFTER = dt.timedelta(seconds=10)


def _kind_or_fail(name: str) -> JobKind:
    kind = job_kind_get(name)
    if kind is None:
        raise ValueError(f"No job kind {name!r} is registered.")
    return kind


@transaction.atomic
def job_create(
    *,
    kind: str,
    actor: User | None,
    title: str,
    params: dict[str, Any] | None = None,
    files: dict[str, IO[bytes] | File | bytes] | None = None,
    source: Job | None = None,
    in_process: bool = False,
    now: dt.datetime,
) -> Job:
    """Record a job and hand it to the worker once the transaction commits.

    `files` are saved in the job's folder under the names given (an upload, usually).
    `in_process` jobs are run by the caller with job_run (the `kefu import` command).
    """
    job_kind = _kind_or_fail(kind)
    require_perm(actor, job_kind.permission)
    owner = actor if getattr(actor, "pk", None) else None
    job = Job.objects.create(
        kind=kind,
        owner=owner,
        title=str(title)[:200],
        language=translation.get_language() or settings.LANGUAGE_CODE,
        params={**(params or {}), **({SYSTEM_PARAM: True} if owner is None else {})},
        source=source,
        in_process=in_process,
        enqueued_at=None if in_process else now,
    )
    folder = job_dir(job.pk)
    for name, content in (files or {}).items():
        target = folder / Path(name).name
        if isinstance(content, bytes):
            target.write_bytes(content)
            continue
        content.seek(0)
        with target.open("wb") as out:
            shutil.copyfileobj(content, out, 1024 * 1024)
    if not in_process:
        transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _enqueue(job_id: int) -> None:
    from kefu.jobs.tasks import job_run_task

    job_run_task(job_id)


def job_run(*, job_id: int, listener: Callable[[ProgressReport], None] | None = None) -> str:
    """Claim a queued job and run it to its end; returns the status it ended in.

    Idempotent: a job that is not queued (another worker has it, it was cancelled or it is
    done) is left alone ("skipped"). Called by the worker's task and by `kefu import`.
    """
    now = timezone.now()
    claim = claim_token()
    claimed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING,
        claimed_by=claim,
        attempts=F("attempts") + 1,
        started_at=now,
        phase_started_at=now,
        heartbeat_at=now,
        phase="",
        done=0,
        total=None,
    )
    if not claimed:
        return "skipped"
    job = Job.objects.select_related("owner").get(pk=job_id)
    with translation.override(job.language):
        return _run(job, claim, listener)


def _run(job: Job, claim: str, listener: Callable[[ProgressReport], None] | None) -> str:
    kind = job_kind_get(job.kind)
    if kind is None:
        _end(job, claim, Job.Status.FAILED, code="unknown_kind")
        return Job.Status.FAILED
    run = JobRun(job, kind, claim, listener)
    try:
        kind.run(run)
        if not run.completed:
            run.complete(summary={})
    except JobLost:
        logger.warning("Job %s was taken over by another worker; this run stopped.", job.pk)
        return "lost"
    except JobCancelled:
        _end(job, claim, Job.Status.CANCELLED)
        return Job.Status.CANCELLED
    except DomainError as exc:
        _end(job, claim, Job.Status.FAILED, code=exc.code, message=str(exc.message))
        return Job.Status.FAILED
    except Exception:
        logger.exception("Job %s (%s) failed.", job.pk, job.kind)
        _end(job, claim, Job.Status.FAILED, code="internal")
        return Job.Status.FAILED
    except BaseException:
        # Ctrl-C in `kefu import`, or the worker shutting down: the work was rolled back.
        _end(job, claim, Job.Status.FAILED, code="interrupted")
        raise
    return Job.Status.SUCCEEDED


@transaction.atomic
def _end(job: Job, claim: str, status: str, *, code: str = "", message: str = "") -> bool:
    now = timezone.now()
    ended = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, claimed_by=claim).update(
        status=status,
        error_code=code,
        error_message=message,
        finished_at=now,
        heartbeat_at=now,
        phase="",
    )
    if ended:
        job.status, job.error_code, job.error_message, job.finished_at = status, code, message, now
        job_finished_notify(job, now=now)
    return bool(ended)


def job_finished_notify(job: Job, *, now: dt.datetime) -> None:
    """Tell the owner how a long (or failed) job ended, with a link to it; in the caller's
    transaction, so the note exists exactly when the ending does."""
    if job.owner_id is None or job.in_process or job.status == Job.Status.CANCELLED:
        return
    took = now - (job.started_at or job.created_at)
    if job.status == Job.Status.SUCCEEDED and took < NOTIFY_AFTER:
        return
    with translation.override(job.language):
        if job.status == Job.Status.SUCCEEDED:
            title = _("Done: %(title)s") % {"title": job.title}
        else:
            title = _("Failed: %(title)s") % {"title": job.title}
        notify(
            [job.owner],
            kind=f"job_{job.status}",
            title=title,
            body=job.error_display if job.status == Job.Status.FAILED else "",
            url=job.get_absolute_url(),
            email=False,
        )


@transaction.atomic
def job_cancel(*, actor: User | None, job_id: int, now: dt.datetime) -> Job:
    """Cancel a waiting job at once, or ask a running one to stop (it rolls back what it was
    doing; a job already saving its result finishes)."""
    job = _job_of(actor, job_id, for_update=True)
    if job.status == Job.Status.QUEUED:
        job.status, job.finished_at = Job.Status.CANCELLED, now
        job.save(update_fields=["status", "finished_at", "updated_at"])
    elif job.status == Job.Status.RUNNING:
        if job.cancel_requested_at is None:
            job.cancel_requested_at = now
            job.save(update_fields=["cancel_requested_at", "updated_at"])
    else:
        raise JobNotCancellable()
    return job


def _job_of(actor: User | None, job_id: int, *, for_update: bool = False) -> Job:
    """The actor's own job (the system may act on any)."""
    jobs = Job.objects.select_related("owner")
    if for_update:
        jobs = jobs.select_for_update(of=("self",))
    if actor is not None:
        jobs = jobs.filter(owner=actor)
    job = jobs.filter(pk=job_id).first()
    if job is None:
        raise JobNotFound(job_id)
    return job


def job_result_open(
    *, actor: User | None, job_id: int, ip: str | None = None
) -> tuple[IO[bytes], Job]:
    """Open a job's result file for its owner, who must still hold the kind's permission;
    every download is audited (results hold customer data)."""
    job = _job_of(actor, job_id)
    kind = job_kind_get(job.kind)
    if kind is not None:
        require_perm(actor, kind.permission)
    if job.status != Job.Status.SUCCEEDED:
        raise JobNotFinished()
    if not job.has_result_file:
        raise JobResultGone()
    try:
        handle = (job_dir(job.pk) / job.result_file).open("rb")
    except FileNotFoundError:
        raise JobResultGone() from None
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="job.result_downloaded",
            target=job,
            changes={
                "kind": job.kind,
                "file": job.result_name,
                "rows": job.summary.get("rows"),
            },
            ip=ip,
        )
    return handle, job


# --- Recovery -----------------------------------------------------------------------------------


def _last_sign_of_life(job: Job) -> dt.datetime | None:
    seen = job.heartbeat_at
    live = progress_file_read(job.pk)
    if live and live.get("claim") == job.claimed_by:
        try:
            at = dt.datetime.fromisoformat(live["at"])
        except (KeyError, TypeError, ValueError):
            at = None
        if at is not None and (seen is None or at > seen):
            seen = at
    return seen


def _claim_dead(job: Job, *, stale_before: dt.datetime) -> bool:
    claim = Claim.parse(job.claimed_by)
    if claim is not None and claim.is_local:
        return not claim.process_alive()
    seen = _last_sign_of_life(job)
    return seen is None or seen < stale_before


def jobs_recover(*, now: dt.datetime) -> dict[str, int]:
    """Find jobs whose worker died and run them again from the start (or, after MAX_ATTEMPTS
    runs, or for a job a command ran, end them as failed); hand queued jobs that no worker
    took to the worker again.

    Run by every worker as it starts (a claim of a dead process on the same machine is
    recovered at once) and every minute (claims of other machines: once their last sign of life
    is older than KEFU_JOB_STALE_SECONDS). A job's work is all-or-nothing, so running it again
    from the start is safe.
    """
    stale_before = now - dt.timedelta(seconds=settings.JOB_STALE_SECONDS)
    counts = {"requeued": 0, "ended": 0, "handed_again": 0}
    running = Job.objects.filter(status=Job.Status.RUNNING).select_related("owner")
    for job in running:
        if not _claim_dead(job, stale_before=stale_before):
            continue
        kind = job_kind_get(job.kind)
        held = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, claimed_by=job.claimed_by)
        retry = kind is not None and kind.retry and not job.in_process
        if retry and job.attempts < MAX_ATTEMPTS and job.cancel_requested_at is None:
            with transaction.atomic():
                if held.update(
                    status=Job.Status.QUEUED,
                    claimed_by="",
                    enqueued_at=now,
                    phase="",
                    done=0,
                    total=None,
                ):
                    counts["requeued"] += 1
                    logger.warning("Job %s lost its worker; it runs again.", job.pk)
                    transaction.on_commit(lambda job_id=job.pk: _enqueue(job_id))
            continue
        if job.cancel_requested_at is not None:
            status, code = Job.Status.CANCELLED, ""
        else:
            status, code = Job.Status.FAILED, "interrupted" if job.in_process else "worker_lost"
        with transaction.atomic():
            if held.update(
                status=status, error_code=code, finished_at=now, phase="", claimed_by=""
            ):
                counts["ended"] += 1
                logger.warning("Job %s lost its worker; it ends as %s.", job.pk, status)
                job.status, job.error_code, job.finished_at = status, code, now
                job_finished_notify(job, now=now)
    forgotten = Job.objects.filter(
        status=Job.Status.QUEUED, in_process=False, enqueued_at__lt=stale_before
    )
    for job_id in forgotten.values_list("pk", flat=True):
        if Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(enqueued_at=now):
            counts["handed_again"] += 1
            _enqueue(job_id)
    return counts


# --- Files --------------------------------------------------------------------------------------


def jobs_files_prune(*, now: dt.datetime) -> int:
    """Delete the files of jobs that ended more than KEFU_JOB_KEEP_DAYS ago (uploads and
    results hold customer data), and folders no job owns; returns how many jobs lost files."""
    cutoff = now - dt.timedelta(days=settings.JOB_KEEP_DAYS)
    expired = Job.objects.finished().filter(finished_at__lt=cutoff, files_deleted_at__isnull=True)
    pruned = 0
    for job_id in expired.values_list("pk", flat=True):
        shutil.rmtree(jobs_root() / str(job_id), ignore_errors=True)
        pruned += Job.objects.filter(pk=job_id).update(files_deleted_at=now)
    root = jobs_root()
    day_ago = (now - dt.timedelta(days=1)).timestamp()
    # Folders of jobs whose creation rolled back, and uploads of the import page before jobs.
    for folder in [*_old_entries(root, day_ago), *_old_entries(root.parent / "imports", day_ago)]:
        owned = folder.parent == root and folder.name.isdigit()
        if owned and Job.objects.filter(pk=int(folder.name)).exists():
            continue
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        else:
            folder.unlink(missing_ok=True)
    return pruned


def _old_entries(folder: Path, before: float) -> list[Path]:
    if not folder.is_dir():
        return []
    old = []
    for entry in folder.iterdir():
        try:
            if entry.stat().st_mtime < before:
                old.append(entry)
        except OSError:
            continue
    return old


def job_files_delete(job: Job, *names: str) -> None:
    """Delete some files of a job that are no longer needed (an import's copy of the rows)."""
    folder = jobs_root() / str(job.pk)
    for name in names:
        (folder / Path(name).name).unlink(missing_ok=True)
