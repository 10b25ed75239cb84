import datetime as dt
import os
import subprocess
import sys

import pytest
from django.utils import timezone, translation

from kefu.accounts.models import User
from kefu.audit.models import AuditEntry
from kefu.core.exceptions import Forbidden
from kefu.jobs import services
from kefu.jobs.exceptions import JobNotCancellable, JobNotFinished, JobNotFound
from kefu.jobs.models import Job
from kefu.jobs.runs import Claim, claim_token, job_dir
from kefu.jobs.services import MAX_ATTEMPTS, job_create, job_run, jobs_files_prune, jobs_recover
from kefu.jobs.tests.fixtures import COUNTING, observed
from kefu.notifications.models import Notification

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def start(owner, run_jobs, **params) -> Job:
    with run_jobs():
        job = job_create(
            kind=COUNTING, actor=owner, title="Count", params=params, now=timezone.now()
        )
    job.refresh_from_db()
    return job


def dead_claim() -> str:
    """The claim of a process of this machine that has ended."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    pid = int(child.stdout)
    host, _pid, started, nonce = claim_token().split(":")
    return f"{host}:{pid}:{started}:{nonce}"


# --- Running ------------------------------------------------------------------------------------


def test_a_job_runs_through_its_phases_once_and_keeps_its_result(records_officer, media, run_jobs):
    job = start(records_officer, run_jobs, rows=1200)

    assert (job.status, job.attempts, job.claimed_by != "") == ("succeeded", 1, True)
    assert (job.done, job.total, job.phase) == (2, 2, "")
    assert job.summary == {"rows": 1200}
    assert (job.result_name, job.result_type, job.result_size) == ("counted.txt", "text/plain", 10)
    assert (job_dir(job.pk) / "result.txt").read_text() == "1200 rows\n"
    assert job.started_at <= job.finished_at
    assert AuditEntry.objects.filter(action="test.counted").count() == 1
    # a second run of the same job (a duplicate message to the worker) does nothing
    assert job_run(job_id=job.pk) == "skipped"
    assert AuditEntry.objects.filter(action="test.counted").count() == 1


def test_progress_goes_to_the_row_and_inside_the_runs_transaction_to_the_progress_file(
    records_officer, media, run_jobs
):
    """Inside its own transaction a run's row updates would not be seen by anyone: its progress
    is written to the progress file instead, with its claim."""
    job = start(records_officer, run_jobs, rows=5)

    (seen,) = observed
    assert seen["db"] == {"phase": "counting", "done": 5}  # the last flush before the transaction
    assert seen["file"]["phase"] == "writing"
    assert (seen["file"]["done"], seen["file"]["total"]) == (1, 2)
    assert seen["file"]["claim"] == job.claimed_by


def test_starting_a_job_needs_the_permission_of_its_kind(agent, media):
    with pytest.raises(Forbidden):
        job_create(kind=COUNTING, actor=agent, title="Count", now=timezone.now())
    assert not Job.objects.exists()


def test_a_refused_job_fails_with_the_reason_and_writes_nothing(records_officer, media, run_jobs):
    job = start(records_officer, run_jobs, fail="domain")

    assert (job.status, job.error_code) == ("failed", "invalid")
    assert job.error_display == "The rows are not right."
    assert job.finished_at is not None
    assert not AuditEntry.objects.filter(action="test.counted").exists()


def test_a_crash_fails_the_job_with_a_message_for_people(records_officer, media, run_jobs, caplog):
    job = start(records_officer, run_jobs, fail="crash")

    assert (job.status, job.error_code, job.error_message) == ("failed", "internal", "")
    assert "nothing was saved" in job.error_display
    assert "disk on fire" in caplog.text  # the details are in the worker's log
    with translation.override("zh-hans"):
        assert "没有保存" in job.error_display  # in the reader's language


def test_a_run_that_lost_its_claim_commits_nothing(records_officer, media, run_jobs):
    """The sweep handed the job to another worker while this run was writing: its final
    "done" matches no row, so its transaction, with the work in it, rolls back."""
    job = start(records_officer, run_jobs, fail="steal")

    assert job.status == "running"
    assert not AuditEntry.objects.filter(action="test.counted").exists()


def test_a_job_of_a_deleted_user_does_not_run_as_the_system(records_officer, media, run_jobs):
    job = job_create(kind=COUNTING, actor=records_officer, title="Count", now=timezone.now())
    Job.objects.filter(pk=job.pk).update(owner=None)  # the account was deleted

    job_run(job_id=job.pk)

    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "job_owner_gone")
    assert not AuditEntry.objects.filter(action="test.counted").exists()


# --- Cancelling ---------------------------------------------------------------------------------


def test_a_waiting_job_is_cancelled_at_once(records_officer, make_job):
    job = make_job(records_officer)

    services.job_cancel(actor=records_officer, job_id=job.pk, now=timezone.now())

    job.refresh_from_db()
    assert job.status == "cancelled"
    assert job_run(job_id=job.pk) == "skipped"


def test_a_running_job_stops_at_its_next_report_and_writes_nothing(
    records_officer, media, run_jobs
):
    job = start(records_officer, run_jobs, rows=10, cancel_at=3)

    assert job.status == "cancelled"
    assert job.done < 10
    assert not AuditEntry.objects.filter(action="test.counted").exists()


def test_only_the_owner_cancels_and_only_an_unfinished_job(records_officer, manager, make_job):
    running = make_job(records_officer, status=Job.Status.RUNNING)
    done = make_job(records_officer, status=Job.Status.SUCCEEDED)

    with pytest.raises(JobNotFound):
        services.job_cancel(actor=manager, job_id=running.pk, now=timezone.now())
    with pytest.raises(JobNotCancellable):
        services.job_cancel(actor=records_officer, job_id=done.pk, now=timezone.now())
    running.refresh_from_db()
    assert running.cancel_requested_at is None


# --- Recovering ---------------------------------------------------------------------------------


def test_a_job_of_a_dead_worker_on_this_machine_runs_again_at_once(
    records_officer, make_job, run_jobs
):
    job = make_job(records_officer, status=Job.Status.RUNNING, attempts=1, claimed_by=dead_claim())

    with run_jobs():
        counts = jobs_recover(now=timezone.now())

    job.refresh_from_db()
    assert counts["requeued"] == 1
    assert (job.status, job.attempts) == ("succeeded", 2)
    assert AuditEntry.objects.filter(action="test.counted").count() == 1


def test_after_its_last_attempt_a_job_fails_clearly(records_officer, make_job, run_jobs):
    job = make_job(
        records_officer, status=Job.Status.RUNNING, attempts=MAX_ATTEMPTS, claimed_by=dead_claim()
    )

    with run_jobs():
        counts = jobs_recover(now=timezone.now())

    job.refresh_from_db()
    assert counts["ended"] == 1
    assert (job.status, job.error_code) == ("failed", "worker_lost")
    assert "Nothing was saved" in job.error_display
    note = Notification.objects.get(recipient=records_officer)
    assert (note.kind, note.url) == ("job_failed", job.get_absolute_url())
    assert not AuditEntry.objects.filter(action="test.counted").exists()


def test_a_job_of_a_dead_command_is_not_handed_to_the_worker(records_officer, make_job, run_jobs):
    job = make_job(
        records_officer,
        status=Job.Status.RUNNING,
        attempts=1,
        claimed_by=dead_claim(),
        in_process=True,
    )

    with run_jobs():
        jobs_recover(now=timezone.now())

    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "interrupted")


@pytest.mark.parametrize("attempts", [1, MAX_ATTEMPTS])
def test_a_cancelled_job_of_a_dead_worker_ends_cancelled_not_run_again(
    records_officer, make_job, run_jobs, attempts
):
    job = make_job(
        records_officer,
        status=Job.Status.RUNNING,
        attempts=attempts,
        claimed_by=dead_claim(),
        cancel_requested_at=timezone.now(),
    )

    with run_jobs():
        jobs_recover(now=timezone.now())

    job.refresh_from_db()
    assert job.status == "cancelled"
    assert not AuditEntry.objects.filter(action="test.counted").exists()


def test_a_live_worker_on_this_machine_keeps_its_job_however_quiet(records_officer, make_job):
    long_ago = timezone.now() - dt.timedelta(hours=2)
    job = make_job(
        records_officer, status=Job.Status.RUNNING, claimed_by=claim_token(), heartbeat_at=long_ago
    )

    assert jobs_recover(now=timezone.now()) == {"requeued": 0, "ended": 0, "handed_again": 0}
    job.refresh_from_db()
    assert job.status == "running"


@pytest.mark.parametrize(
    ("row_seconds_ago", "file_seconds_ago", "recovered"),
    [(5, None, False), (600, None, True), (600, 5, False), (600, 300, True)],
)
def test_a_worker_of_another_machine_is_judged_by_its_last_sign_of_life(
    records_officer, make_job, run_jobs, settings, row_seconds_ago, file_seconds_ago, recovered
):
    """The row's heartbeat, or the progress file's while the run is inside its transaction."""
    settings.JOB_STALE_SECONDS = 120
    now = timezone.now()
    claim = "another-host:4242:1:beef"
    job = make_job(
        records_officer,
        status=Job.Status.RUNNING,
        attempts=1,
        claimed_by=claim,
        heartbeat_at=now - dt.timedelta(seconds=row_seconds_ago),
    )
    if file_seconds_ago is not None:
        at = (now - dt.timedelta(seconds=file_seconds_ago)).isoformat()
        (job_dir(job.pk) / "progress.json").write_text(
            f'{{"claim": "{claim}", "phase": "writing", "done": 1, "total": 2, "at": "{at}"}}'
        )

    with run_jobs():
        counts = jobs_recover(now=now)

    job.refresh_from_db()
    assert counts["requeued"] == int(recovered)
    assert job.status == ("succeeded" if recovered else "running")


def test_a_waiting_job_no_worker_took_is_handed_over_again(records_officer, make_job, run_jobs):
    job = make_job(records_officer, enqueued_at=timezone.now() - dt.timedelta(minutes=30))

    with run_jobs():
        counts = jobs_recover(now=timezone.now())

    job.refresh_from_db()
    assert counts["handed_again"] == 1
    assert job.status == "succeeded"


def test_a_reused_pid_is_not_taken_for_the_claiming_process():
    host, pid, started, nonce = claim_token().split(":")
    assert Claim.parse(f"{host}:{pid}:{started}:{nonce}").process_alive()
    if started:  # /proc is there: a process of that pid started at another time is another one
        assert not Claim.parse(f"{host}:{pid}:{int(started) + 1}:{nonce}").process_alive()
    assert Claim.parse("garbage") is None


# --- Results, notes and files -------------------------------------------------------------------


def test_the_result_opens_for_its_owner_only_and_every_download_is_audited(
    records_officer, manager, agent, media, run_jobs
):
    job = start(records_officer, run_jobs)

    handle, _job = services.job_result_open(actor=records_officer, job_id=job.pk, ip="10.1.1.1")
    with handle:
        assert handle.read() == b"10 rows\n"
    entry = AuditEntry.objects.get(action="job.result_downloaded")
    assert (entry.actor, entry.target_id, entry.ip) == (records_officer, str(job.pk), "10.1.1.1")
    assert entry.changes == {"kind": COUNTING, "file": "counted.txt", "rows": 10}
    with pytest.raises(JobNotFound):
        services.job_result_open(actor=manager, job_id=job.pk)
    # an owner who has lost the right to what the job produced
    records_officer.groups.clear()
    with pytest.raises(Forbidden):
        services.job_result_open(actor=User.objects.get(pk=records_officer.pk), job_id=job.pk)
    assert AuditEntry.objects.filter(action="job.result_downloaded").count() == 1


def test_an_unfinished_job_has_no_result_yet(records_officer, make_job):
    job = make_job(records_officer, status=Job.Status.RUNNING)
    with pytest.raises(JobNotFinished):
        services.job_result_open(actor=records_officer, job_id=job.pk)


@pytest.mark.parametrize(
    ("status", "took", "told"),
    [
        ("succeeded", 2, False),
        ("succeeded", 30, True),
        ("failed", 2, True),
        ("cancelled", 30, False),
    ],
)
def test_a_long_or_failed_job_tells_its_owner_how_it_ended(
    records_officer, make_job, status, took, told
):
    """Whoever closed the tab learns the outcome; short jobs they watched end do not nag."""
    now = timezone.now()
    job = make_job(records_officer, status=status, started_at=now - dt.timedelta(seconds=took))

    services.job_finished_notify(job, now=now)

    notes = list(Notification.objects.filter(recipient=records_officer))
    assert len(notes) == int(told)
    if told:
        assert notes[0].kind == f"job_{status}"
        assert notes[0].url == job.get_absolute_url()
        assert job.title in notes[0].title


def test_files_of_old_jobs_and_orphan_folders_are_pruned(
    records_officer, make_job, media, settings
):
    settings.JOB_KEEP_DAYS = 7
    now = timezone.now()
    old = make_job(
        records_officer, status=Job.Status.SUCCEEDED, finished_at=now - dt.timedelta(days=8)
    )
    recent = make_job(
        records_officer, status=Job.Status.SUCCEEDED, finished_at=now - dt.timedelta(days=1)
    )
    running = make_job(records_officer, status=Job.Status.RUNNING)
    for job in (old, recent, running):
        (job_dir(job.pk) / "result.txt").write_text("x")
    orphan = media / "jobs" / "999999"
    orphan.mkdir()
    legacy = media / "imports"
    legacy.mkdir()
    (legacy / "abc.jsonl").write_text("{}")
    two_days_ago = (now - dt.timedelta(days=2)).timestamp()
    for path in (orphan, legacy / "abc.jsonl"):
        os.utime(path, (two_days_ago, two_days_ago))

    assert jobs_files_prune(now=now) == 1

    old.refresh_from_db()
    assert old.files_deleted_at == now
    assert not old.has_result_file
    assert not (media / "jobs" / str(old.pk)).exists()
    assert (job_dir(recent.pk) / "result.txt").exists()
    assert (job_dir(running.pk) / "result.txt").exists()
    assert not orphan.exists()
    assert not (legacy / "abc.jsonl").exists()
