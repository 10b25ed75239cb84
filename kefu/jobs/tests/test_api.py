import pytest
from django.test import Client
from django.utils import timezone

from kefu.accounts.services import api_token_create
from kefu.audit.models import AuditEntry
from kefu.jobs.models import Job
from kefu.jobs.services import job_create
from kefu.jobs.tests.fixtures import COUNTING

pytestmark = pytest.mark.django_db

BASE = "/api/v1/jobs"


def api_client(user) -> Client:
    if user is None:
        return Client()
    _token, key = api_token_create(user=user, name="test", actor=None)
    return Client(headers={"authorization": f"Bearer {key}", "accept-language": "en"})


@pytest.fixture
def finished(records_officer, media, run_jobs) -> Job:
    with run_jobs():
        job = job_create(kind=COUNTING, actor=records_officer, title="Count", now=timezone.now())
    job.refresh_from_db()
    return job


@pytest.mark.parametrize(
    ("role", "listed", "one", "result", "cancel"),
    [
        ("anonymous", 401, 401, 401, 401),
        ("agent", 200, 404, 404, 404),
        ("manager", 200, 200, 404, 404),
        ("records_officer", 200, 200, 200, 409),
    ],
)
def test_jobs_api_permission_matrix(users_by_role, finished, role, listed, one, result, cancel):
    client = api_client(users_by_role[role])

    listing = client.get(BASE)
    assert listing.status_code == listed
    if listed == 200:
        assert [j["id"] for j in listing.json()["results"]] == (
            [finished.pk] if role == "records_officer" else []
        )
    assert client.get(f"{BASE}/{finished.pk}").status_code == one
    assert client.get(f"{BASE}/{finished.pk}/result").status_code == result
    assert client.post(f"{BASE}/{finished.pk}/cancel").status_code == cancel
    assert AuditEntry.objects.filter(action="job.result_downloaded").count() == int(result == 200)


def test_one_job_with_its_progress_summary_and_result(records_officer, manager, finished):
    body = api_client(records_officer).get(f"{BASE}/{finished.pk}").json()

    assert body["kind"] == COUNTING
    assert (body["status"], body["status_label"]) == ("succeeded", "Done")
    assert body["owner"] == "records"
    assert body["progress"]["percent"] == 100
    assert body["summary"] == {"rows": 10}
    assert body["error"] is None
    assert body["result"] == {
        "name": "counted.txt",
        "content_type": "text/plain",
        "size": 8,
        "url": f"{BASE}/{finished.pk}/result",
    }
    # an overseer sees how it went, not what it found or produced
    seen = api_client(manager).get(f"{BASE}/{finished.pk}").json()
    assert (seen["status"], seen["summary"], seen["result"]) == ("succeeded", {}, None)


def test_the_list_filters_and_pages(records_officer, manager, make_job):
    for _ in range(3):
        make_job(records_officer, status=Job.Status.FAILED, error_code="internal")
    make_job(records_officer)
    make_job(manager)
    client = api_client(records_officer)

    failed = client.get(BASE, {"status": "failed", "page_size": 2}).json()
    assert (failed["count"], len(failed["results"])) == (3, 2)
    assert failed["results"][0]["error"]["code"] == "internal"
    assert client.get(BASE, {"kind": "nothing"}).json()["count"] == 0
    everyone = api_client(manager).get(BASE, {"everyone": "true"}).json()
    assert everyone["count"] == 5


def test_cancelling_a_waiting_job(records_officer, make_job):
    job = make_job(records_officer)

    response = api_client(records_officer).post(f"{BASE}/{job.pk}/cancel")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


@pytest.mark.parametrize(
    "url",
    [
        f"{BASE}/99999999999999999999",
        f"{BASE}/0",
        f"{BASE}?page=100000000000000000000",
        f"{BASE}?page=1e20",
        f"{BASE}?status=exploded",
        f"{BASE}?page_size=100000",
    ],
)
def test_bad_ids_and_pages_are_refused_not_crashed(records_officer, url):
    response = api_client(records_officer).get(url)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid"
