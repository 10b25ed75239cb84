import datetime as dt
import json

import pytest
from django.utils import timezone

from kefu.jobs.exceptions import JobNotFound
from kefu.jobs.models import Job
from kefu.jobs.runs import job_dir
from kefu.jobs.selectors import job_get_for_user, job_list_visible_to, job_progress

pytestmark = pytest.mark.django_db


@pytest.fixture
def jobs(make_job, agent, records_officer, manager):
    return {
        "agent": make_job(agent),
        "records_officer": make_job(records_officer),
        "manager": make_job(manager),
        "system": make_job(None),
    }


@pytest.mark.parametrize(
    ("role", "everyone", "sees"),
    [
        ("agent", False, {"agent"}),
        ("agent", True, {"agent"}),  # asking for everyone's needs view_all_jobs
        ("records_officer", True, {"records_officer"}),
        ("manager", False, {"manager"}),
        ("manager", True, {"agent", "records_officer", "manager", "system"}),
    ],
)
def test_each_user_sees_their_own_jobs_and_overseers_everyones(
    jobs, users_by_role, role, everyone, sees
):
    visible = job_list_visible_to(user=users_by_role[role], everyone=everyone)

    assert set(visible) == {jobs[name] for name in sees}


def test_one_job_opens_for_its_owner_and_overseers_only(jobs, agent, records_officer, manager):
    job = jobs["records_officer"]

    assert job_get_for_user(user=records_officer, job_id=job.pk) == job
    assert job_get_for_user(user=manager, job_id=job.pk) == job
    with pytest.raises(JobNotFound):
        job_get_for_user(user=agent, job_id=job.pk)


def test_the_list_reads_in_a_constant_number_of_queries(
    make_job, records_officer, django_assert_num_queries
):
    for _ in range(5):
        make_job(records_officer, status=Job.Status.SUCCEEDED)
    with django_assert_num_queries(1):
        assert [j.owner.username for j in job_list_visible_to(user=records_officer)] == [
            "records"
        ] * 5


def running(make_job, owner, *, phase, done, total, seconds):
    now = timezone.now()
    return make_job(
        owner,
        status=Job.Status.RUNNING,
        phase=phase,
        done=done,
        total=total,
        claimed_by="host:1:1:aaaa",
        started_at=now - dt.timedelta(seconds=seconds),
        heartbeat_at=now - dt.timedelta(seconds=1),
    )


def test_progress_weighs_the_steps_and_estimates_the_time_left(make_job, records_officer):
    """The test kind's steps weigh 3 (counting) and 1 (writing): half the counting is 3/8 of
    the job; 10 s for 3/8 leaves about 10 × 5/3 = 17 s."""
    job = running(make_job, records_officer, phase="counting", done=50, total=100, seconds=10)

    progress = job_progress(job, now=timezone.now())

    assert (progress.step, progress.steps, progress.phase_label) == (1, 2, "Counting rows")
    assert (progress.done, progress.total, progress.percent) == (50, 100, 37)
    assert progress.seconds_left == 17


def test_the_second_step_starts_where_the_first_ends(make_job, records_officer):
    job = running(make_job, records_officer, phase="writing", done=1, total=2, seconds=35)

    progress = job_progress(job, now=timezone.now())

    assert (progress.step, progress.percent, progress.seconds_left) == (2, 87, 5)


@pytest.mark.parametrize(
    ("fields", "percent", "left"),
    [
        ({"status": Job.Status.QUEUED}, None, None),
        ({"phase": "counting", "done": 0, "total": None}, None, None),  # nothing to measure yet
        ({"phase": "counting", "done": 1, "total": 1000}, 0, None),  # too early to tell
        ({"status": Job.Status.SUCCEEDED}, 100, 0),
        ({"status": Job.Status.FAILED, "phase": "counting", "done": 5, "total": 10}, 37, None),
    ],
)
def test_progress_before_during_and_after(make_job, records_officer, fields, percent, left):
    job = make_job(records_officer, **{"status": Job.Status.RUNNING, **fields})

    progress = job_progress(job, now=timezone.now())

    assert (progress.percent, progress.seconds_left) == (percent, left)


def test_the_progress_file_of_the_current_claim_is_read_inside_a_transaction(
    make_job, records_officer
):
    job = running(make_job, records_officer, phase="counting", done=100, total=100, seconds=20)
    live = {
        "claim": job.claimed_by,
        "phase": "writing",
        "done": 1,
        "total": 2,
        "at": timezone.now().isoformat(),
    }
    path = job_dir(job.pk) / "progress.json"
    path.write_text(json.dumps(live))

    assert job_progress(job, now=timezone.now()).phase == "writing"

    # a file left by an earlier claim (a worker that died) is not this run's progress
    path.write_text(json.dumps({**live, "claim": "host:2:2:bbbb"}))
    assert job_progress(job, now=timezone.now()).phase == "counting"
