import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from kefu.audit.models import AuditEntry
from kefu.jobs.models import Job
from kefu.jobs.runs import job_dir
from kefu.jobs.services import job_create
from kefu.jobs.tests.fixtures import COUNTING

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client(headers={"accept-language": "en"})
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def finished(records_officer, media, run_jobs) -> Job:
    with run_jobs():
        job = job_create(
            kind=COUNTING, actor=records_officer, title="Count the rows", now=timezone.now()
        )
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    return job


@pytest.mark.parametrize(
    ("role", "detail", "download", "cancel"),
    [
        ("anonymous", 302, 302, 302),
        ("agent", 404, 404, 404),
        ("manager", 200, 404, 404),  # sees everyone's jobs, but not their files
        ("records_officer", 200, 200, 302),  # the owner (cancelling a finished job: a message)
    ],
)
def test_job_pages_permission_matrix(users_by_role, finished, role, detail, download, cancel):
    client = client_for(users_by_role[role])

    assert client.get(reverse("jobs:job_list")).status_code == (302 if role == "anonymous" else 200)
    assert client.get(reverse("jobs:job_detail", args=[finished.pk])).status_code == detail
    assert client.get(reverse("jobs:job_download", args=[finished.pk])).status_code == download
    assert client.post(reverse("jobs:job_cancel", args=[finished.pk])).status_code == cancel
    downloads = AuditEntry.objects.filter(action="job.result_downloaded").count()
    assert downloads == (1 if download == 200 else 0)


def test_the_owner_downloads_the_result_as_an_attachment(records_officer, finished):
    response = client_for(records_officer).get(reverse("jobs:job_download", args=[finished.pk]))

    assert response["Content-Type"] == "text/plain"
    assert response["Content-Disposition"] == 'attachment; filename="counted.txt"'
    assert b"".join(response.streaming_content) == b"10 rows\n"


def test_a_result_no_longer_kept_says_so(records_officer, finished):
    (job_dir(finished.pk) / "result.txt").unlink()
    Job.objects.filter(pk=finished.pk).update(files_deleted_at=timezone.now())
    client = client_for(records_officer)

    page = client.get(reverse("jobs:job_detail", args=[finished.pk])).content.decode()
    response = client.get(reverse("jobs:job_download", args=[finished.pk]))

    assert "no longer kept" in page
    assert reverse("jobs:job_download", args=[finished.pk]) not in page
    assert response.status_code == 404


def test_a_running_job_page_polls_its_panel_and_a_finished_one_stops(
    records_officer, make_job, finished
):
    running = make_job(
        records_officer,
        status=Job.Status.RUNNING,
        phase="counting",
        done=4500,
        total=10000,
        claimed_by="host:1:1:aaaa",
    )
    client = client_for(records_officer)

    page = client.get(reverse("jobs:job_detail", args=[running.pk])).content.decode()
    panel = client.get(
        reverse("jobs:job_detail", args=[running.pk]), headers={"HX-Request": "true"}
    ).content.decode()
    done_panel = client.get(
        reverse("jobs:job_detail", args=[finished.pk]), headers={"HX-Request": "true"}
    ).content.decode()

    assert 'hx-trigger="every 1s"' in page
    assert panel.lstrip().startswith('<div id="job-panel"')
    assert "<html" not in panel
    assert "Step 1 of 2: Counting rows" in panel
    assert "4,500 of 10,000" in panel
    assert 'value="33"' in panel  # counting weighs 3 of 4: 0.45 × 3/4 of the whole job
    assert re.search(r"about \d+ s left", panel)
    assert reverse("jobs:job_cancel", args=[running.pk]) in panel
    assert "hx-trigger" not in done_panel
    assert 'data-status="succeeded"' in done_panel


def test_cancelling_a_running_job_from_its_page(records_officer, make_job):
    job = make_job(records_officer, status=Job.Status.RUNNING, claimed_by="host:1:1:aaaa")

    panel = client_for(records_officer).post(
        reverse("jobs:job_cancel", args=[job.pk]), headers={"HX-Request": "true"}
    )

    job.refresh_from_db()
    assert job.cancel_requested_at is not None
    assert "stopping" in panel.content.decode()


def test_the_list_shows_my_jobs_with_progress_and_results(
    records_officer, manager, make_job, finished
):
    make_job(manager, title="Manager's export")
    make_job(records_officer, status=Job.Status.RUNNING, phase="counting", done=1, total=4)
    failed = make_job(records_officer, status=Job.Status.FAILED, error_code="worker_lost")
    client = client_for(records_officer)

    html = client.get(reverse("jobs:job_list")).content.decode()
    table = client.get(reverse("jobs:job_list"), headers={"HX-Request": "true"}).content.decode()

    assert "Count the rows" in html
    assert "10 rows counted" in html  # the kind's one-line outcome
    assert reverse("jobs:job_download", args=[finished.pk]) in html
    assert "worker running this job stopped" in html
    assert f'data-testid="job-{failed.pk}"' in html
    assert "Manager&#x27;s export" not in html
    assert 'hx-trigger="every 3s"' in html  # a job is running: the list keeps itself current
    assert table.lstrip().startswith('<div id="job-table"')


def test_overseers_may_list_everyones_jobs(records_officer, manager, agent, make_job):
    make_job(records_officer, title="Officer's import")

    mine = client_for(manager).get(reverse("jobs:job_list")).content.decode()
    everyone = client_for(manager).get(reverse("jobs:job_list"), {"all": "1"}).content.decode()
    agent_all = client_for(agent).get(reverse("jobs:job_list"), {"all": "1"}).content.decode()

    assert "Officer&#x27;s import" not in mine
    assert "Officer&#x27;s import" in everyone
    assert "Officer&#x27;s import" not in agent_all


def test_the_navigation_leads_to_the_jobs_of_those_who_may_run_some(records_officer, handler):
    page = reverse("notifications:notification_list")
    assert 'href="/jobs/"' in client_for(records_officer).get(page).content.decode()
    assert 'href="/jobs/"' not in client_for(handler).get(page).content.decode()
