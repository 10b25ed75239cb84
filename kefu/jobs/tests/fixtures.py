"""A job kind of the tests' own, so the jobs app is tested without the apps that use it.

`counting` goes through two phases (counting rows, then writing an audit entry in a transaction
that also marks the job done) and can be told to fail, crash, lose its claim or be cancelled
half-way; `observed` collects what it saw while running.
"""

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from kefu.audit.services import audit_record
from kefu.core.exceptions import ValidationFailed
from kefu.jobs.kinds import JobKind, Phase, job_kind_register
from kefu.jobs.models import Job
from kefu.jobs.runs import JobResult, JobRun, progress_file_read
from kefu.jobs.services import job_cancel

COUNTING = "test_counting"
observed: list[dict] = []


def _counting_run(run: JobRun) -> None:
    params = run.job.params
    rows = params.get("rows", 10)
    for done in range(rows + 1):
        run.progress("counting", done, rows)
        if params.get("cancel_at") == done:
            job_cancel(actor=run.job.owner, job_id=run.job.pk, now=timezone.now())
    if params.get("fail") == "domain":
        raise ValidationFailed({"rows": ["Too many rows."]}, message="The rows are not right.")
    if params.get("fail") == "crash":
        raise RuntimeError("disk on fire")
    run.path("result.txt").write_text(f"{rows} rows\n")
    with transaction.atomic():
        audit_record(actor=run.actor, action="test.counted", changes={"rows": rows})
        run.progress("writing", 1, 2)
        observed.append(
            {
                "db": Job.objects.values("phase", "done").get(pk=run.job.pk),
                "file": progress_file_read(run.job.pk),
            }
        )
        if params.get("fail") == "steal":
            # Meanwhile the sweep gave the job to another worker.
            Job.objects.filter(pk=run.job.pk).update(claimed_by="elsewhere:1:1:abcd")
        run.complete(
            summary={"rows": rows},
            result=JobResult(file="result.txt", name="counted.txt", content_type="text/plain"),
        )


job_kind_register(
    JobKind(
        name=COUNTING,
        label="Count rows",
        permission="customers.export_customer",
        run=_counting_run,
        phases=(Phase("counting", "Counting rows", 3), Phase("writing", "Writing", 1)),
        outcome=lambda job: f"{job.summary.get('rows')} rows counted",
    )
)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def run_jobs(django_capture_on_commit_callbacks):
    """Jobs started inside the block run (in-process, as the worker would) when it ends."""
    observed.clear()
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def make_job(media):
    """A job row in any state, without running it."""

    def make(owner, *, status=Job.Status.QUEUED, kind=COUNTING, **fields) -> Job:
        now = timezone.now()
        defaults = {"title": "Count rows", "params": {}, "enqueued_at": now}
        if status != Job.Status.QUEUED:
            defaults.update(started_at=now - dt.timedelta(seconds=10), heartbeat_at=now)
        if status in (Job.Status.SUCCEEDED, Job.Status.FAILED, Job.Status.CANCELLED):
            defaults["finished_at"] = now
        return Job.objects.create(kind=kind, owner=owner, status=status, **{**defaults, **fields})

    return make
