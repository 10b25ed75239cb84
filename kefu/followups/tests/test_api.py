"""The follow-up API: everyone their own list, supervisors everyone's, and recording outcomes."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from kefu.accounts.services import api_token_create
from kefu.followups.models import FollowUp
from kefu.followups.services import followup_create

pytestmark = pytest.mark.django_db

BASE = "/api/v1/followups"


def api_client(user) -> Client:
    if user is None:
        return Client()
    _token, key = api_token_create(user=user, name="test", actor=None)
    return Client(headers={"authorization": f"Bearer {key}"})


@pytest.fixture
def followups(agent, complaint_specialist, customer):
    """The agent owes a callback that is overdue and an aftercare call next month; the
    specialist owes one more; one of the agent's is already done."""
    from kefu.customers.tests.factories import make_customer

    now = timezone.now()

    def make(assignee, purpose, due, status=FollowUp.Status.OPEN, who=customer):
        followup = followup_create(
            actor=None, customer=who, purpose=purpose, due_at=due, assignee=assignee
        )
        if status != FollowUp.Status.OPEN:
            FollowUp.objects.filter(pk=followup.pk).update(status=status)
        return followup

    return {
        "overdue": make(agent, "promised_callback", now - dt.timedelta(hours=2)),
        "aftercare": make(agent, "complaint_aftercare", now + dt.timedelta(days=30)),
        "specialist": make(
            complaint_specialist,
            "promised_callback",
            now + dt.timedelta(hours=3),
            who=make_customer(name="李四"),
        ),
        "done": make(agent, "satisfaction", now - dt.timedelta(days=1), FollowUp.Status.DONE),
    }


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.mark.parametrize(
    ("role", "mine", "everyone"),
    [
        ("anonymous", 401, 401),
        ("agent", 200, 403),
        ("records_officer", 200, 403),
        ("handler", 403, 403),
        ("store_manager", 403, 403),
        ("complaint_specialist", 200, 200),
    ],
)
def test_list_permission_matrix(request, followups, role, mine, everyone):
    user = None if role == "anonymous" else request.getfixturevalue(role)
    client = api_client(user)
    assert client.get(BASE).status_code == mine
    response = client.get(BASE, {"scope": "all"})
    assert response.status_code == everyone
    if everyone >= 400:
        assert response.json()["code"] in ("not_authenticated", "permission_denied")


def test_list_shows_my_open_followups_soonest_first(agent, followups, customer):
    client = api_client(agent)

    assert _ids(client.get(BASE)) == [followups["overdue"].pk, followups["aftercare"].pk]
    row = client.get(BASE).json()["results"][0]
    assert row["is_overdue"] is True
    assert row["purpose"] == "promised_callback"
    assert row["customer"] == {"id": customer.pk, "number": customer.number, "name": "张三"}
    assert row["assignee"]["id"] == agent.pk
    assert _ids(client.get(BASE, {"overdue": "true"})) == [followups["overdue"].pk]
    assert _ids(client.get(BASE, {"overdue": "false"})) == [followups["aftercare"].pk]
    assert _ids(client.get(BASE, {"purpose": "complaint_aftercare"})) == [followups["aftercare"].pk]
    response = client.get(BASE, {"purpose": "gossip"})
    assert response.status_code == 422
    assert "purpose" in response.json()["errors"]


def test_supervisors_see_everyones_and_page_through(complaint_specialist, followups):
    client = api_client(complaint_specialist)
    assert _ids(client.get(BASE)) == [followups["specialist"].pk]

    first = client.get(BASE, {"scope": "all", "limit": 2}).json()
    second = client.get(BASE, {"scope": "all", "limit": 2, "offset": first["next"]}).json()

    assert first["has_more"] is True
    assert second["has_more"] is False
    assert second["next"] is None
    assert [r["id"] for r in first["results"] + second["results"]] == [
        followups["overdue"].pk,
        followups["specialist"].pk,
        followups["aftercare"].pk,
    ]


def test_assignee_completes_their_followup(agent, followups):
    followup = followups["overdue"]

    response = api_client(agent).post(
        f"{BASE}/{followup.pk}/complete",
        {"outcome": "reached", "outcome_note": "顾客已收到退款"},
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "done"
    assert body["outcome"] == "reached"
    assert body["is_overdue"] is False
    followup.refresh_from_db()
    assert followup.completed_by == agent
    assert followup.outcome_note == "顾客已收到退款"
    # done: no longer on the list, and it cannot be completed twice
    assert followup.pk not in _ids(api_client(agent).get(BASE))
    again = api_client(agent).post(
        f"{BASE}/{followup.pk}/complete", {"outcome": "reached"}, content_type="application/json"
    )
    assert again.status_code == 409
    assert again.json()["code"] == "followup_not_open"


@pytest.mark.parametrize(
    ("role", "status", "code"),
    [
        ("anonymous", 401, "not_authenticated"),
        ("agent", 404, "followup_not_found"),  # someone else's
        ("records_officer", 404, "followup_not_found"),
        ("handler", 403, "permission_denied"),
        ("store_manager", 403, "permission_denied"),
        ("complaint_specialist", 200, None),  # holds tickets.assign_ticket
    ],
)
def test_complete_someone_elses_followup(request, followups, role, status, code):
    followup = followups["specialist"] if role == "agent" else followups["overdue"]
    user = None if role == "anonymous" else request.getfixturevalue(role)

    response = api_client(user).post(
        f"{BASE}/{followup.pk}/complete",
        {"outcome": "not_reached"},
        content_type="application/json",
    )

    assert response.status_code == status, response.content
    followup.refresh_from_db()
    if code:
        assert response.json()["code"] == code
        assert followup.status == FollowUp.Status.OPEN
    else:
        assert followup.status == FollowUp.Status.DONE


def test_complete_needs_a_known_outcome(agent, followups):
    followup = followups["overdue"]
    response = api_client(agent).post(
        f"{BASE}/{followup.pk}/complete", {"outcome": "maybe"}, content_type="application/json"
    )
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["outcome"]
    followup.refresh_from_db()
    assert followup.status == FollowUp.Status.OPEN


def test_unknown_followup_is_404(agent):
    response = api_client(agent).post(
        f"{BASE}/999999/complete", {"outcome": "reached"}, content_type="application/json"
    )
    assert response.status_code == 404
    assert response.json()["code"] == "followup_not_found"


# --- Completing with the next follow-up ---------------------------------------------------------


def test_complete_reports_the_retry_scheduled_by_the_rule(agent, followups):
    """A promised callback not reached is tried again two hours later (the default rule)."""
    followup = followups["overdue"]
    before = timezone.now()
    response = api_client(agent).post(
        f"{BASE}/{followup.pk}/complete",
        {"outcome": "not_reached"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    following = response.json()["following"]
    retry = FollowUp.objects.get(previous=followup)
    assert following["id"] == retry.pk
    assert following["attempt"] == 2
    assert retry.due_at - before >= dt.timedelta(hours=2)
    assert retry.pk in _ids(api_client(agent).get(BASE))


def test_complete_with_next_due_at(agent, followups):
    followup = followups["aftercare"]
    when = (timezone.now() + dt.timedelta(days=2)).replace(microsecond=0)
    response = api_client(agent).post(
        f"{BASE}/{followup.pk}/complete",
        {"outcome": "reached", "next_due_at": when.isoformat()},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert dt.datetime.fromisoformat(response.json()["following"]["due_at"]) == when


def test_complete_without_a_next_one(agent, followups):
    response = api_client(agent).post(
        f"{BASE}/{followups['aftercare'].pk}/complete",
        {"outcome": "reached"},
        content_type="application/json",
    )
    assert response.json()["following"] is None


def test_next_due_at_in_the_past_names_the_field(agent, followups):
    followup = followups["overdue"]
    response = api_client(agent).post(
        f"{BASE}/{followup.pk}/complete",
        {"outcome": "reached", "next_due_at": "2020-01-01T10:00:00+08:00"},
        content_type="application/json",
    )
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["next_due_at"]


def test_rows_carry_priority_and_attempt_and_filter_by_assignee(
    complaint_specialist, agent, followups
):
    client = api_client(complaint_specialist)
    rows = client.get(BASE, {"scope": "all", "assignee": agent.pk}).json()["results"]
    assert [r["id"] for r in rows] == [followups["overdue"].pk, followups["aftercare"].pk]
    assert (rows[0]["priority"], rows[0]["attempt"]) == (2, 1)


# --- Messages -----------------------------------------------------------------------------------


def test_message_the_customer(agent, followups):
    from kefu.campaigns.models import OutboxMessage

    followup = followups["overdue"]
    response = api_client(agent).post(
        f"{BASE}/{followup.pk}/message", {"body": "请回电"}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    message = OutboxMessage.objects.get()
    assert response.json()["message_id"] == f"outbox-{message.pk}"
    assert message.to == "+8613812341234"


@pytest.mark.parametrize(
    ("role", "body", "status", "code"),
    [
        ("agent", {"body": ""}, 422, "invalid"),
        ("records_officer", {"body": "您好"}, 403, "permission_denied"),
        ("handler", {"body": "您好"}, 403, "permission_denied"),
        ("anonymous", {"body": "您好"}, 401, "not_authenticated"),
    ],
)
def test_message_refusals(request, followups, role, body, status, code):
    user = None if role == "anonymous" else request.getfixturevalue(role)
    response = api_client(user).post(
        f"{BASE}/{followups['overdue'].pk}/message", body, content_type="application/json"
    )
    assert response.status_code == status
    assert response.json()["code"] == code


def test_message_to_a_done_follow_up_is_refused(agent, followups):
    response = api_client(agent).post(
        f"{BASE}/{followups['done'].pk}/message", {"body": "您好"}, content_type="application/json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "followup_not_open"


# --- The records officer's lists ----------------------------------------------------------------


def test_build_and_list_the_customer_lists(records_officer, customer):
    from kefu.customers.models import Customer

    Customer.objects.filter(pk=customer.pk).update(
        churn_due_on=timezone.localdate() - dt.timedelta(days=3)
    )
    client = api_client(records_officer)
    built = client.post(f"{BASE}/lists", {"kind": "churn_risk"}, content_type="application/json")
    assert built.status_code == 201, built.content
    body = built.json()
    assert (body["kind"], body["customers"], body["built_by"]["id"]) == (
        "churn_risk",
        1,
        records_officer.pk,
    )
    listed = client.get(f"{BASE}/lists").json()
    assert [row["id"] for row in listed["results"]] == [body["id"]]
    assert listed["has_more"] is False


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"kind": "gossip"}, "kind"), ({"kind": "birthdays", "days": 0}, "days")],
)
def test_build_errors_name_the_field(records_officer, payload, field):
    response = api_client(records_officer).post(
        f"{BASE}/lists", payload, content_type="application/json"
    )
    assert response.status_code == 422
    assert list(response.json()["errors"]) == [field]


@pytest.mark.parametrize(
    ("role", "read", "build"),
    [
        ("anonymous", 401, 401),
        ("agent", 403, 403),
        ("complaint_specialist", 403, 403),
        ("manager", 200, 201),
    ],
)
def test_lists_permission_matrix(request, role, read, build):
    user = None if role == "anonymous" else request.getfixturevalue(role)
    client = api_client(user)
    assert client.get(f"{BASE}/lists").status_code == read
    response = client.post(
        f"{BASE}/lists", {"kind": "birthdays", "days": 7}, content_type="application/json"
    )
    assert response.status_code == build


def test_call_gives_the_assignee_the_number_and_audits_it(agent, followups, customer):
    from kefu.audit.models import AuditEntry

    followup = followups["overdue"]
    response = api_client(agent).post(f"{BASE}/{followup.pk}/call")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "followup_id": followup.pk,
        "phone": "+8613812341234",
        "display": response.json()["display"],
        "tel": "tel:+8613812341234",
    }
    assert "1234" in response.json()["display"]
    entry = AuditEntry.objects.get(action="customer.contact_revealed")
    assert entry.actor == agent
    assert entry.changes["call_for"] == {"type": "followup", "id": followup.pk}
    # the list stays masked
    assert "13812341234" not in api_client(agent).get(BASE).content.decode()


@pytest.mark.parametrize(
    ("role", "status", "code"),
    [
        ("anonymous", 401, "not_authenticated"),
        ("agent", 404, "followup_not_found"),
        ("records_officer", 403, "permission_denied"),
        ("complaint_specialist", 200, None),
    ],
)
def test_who_may_call_through_the_api(request, followups, role, status, code):
    """The specialist's follow-up: another agent gets not found; one who sees everyone's may."""
    from kefu.audit.models import AuditEntry

    followup = followups["specialist"]
    user = None if role == "anonymous" else request.getfixturevalue(role)
    response = api_client(user).post(f"{BASE}/{followup.pk}/call")
    assert response.status_code == status, response.content
    if code:
        assert response.json()["code"] == code
        assert not AuditEntry.objects.filter(action="customer.contact_revealed").exists()


def test_call_on_a_done_follow_up_is_a_conflict(agent, followups):
    response = api_client(agent).post(f"{BASE}/{followups['done'].pk}/call")
    assert response.status_code == 409
    assert response.json()["code"] == "followup_not_open"
