"""The follow-up page: one's own calls by due time, everyone's for supervisors, and recording the
outcome (only the assignee or a supervisor)."""

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from kefu.followups.models import FollowUp
from kefu.followups.services import followup_create

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
LIST = "followups:followup_list"


def client_for(user) -> Client:
    client = Client(headers={"accept-language": "en"})
    if user is not None:
        client.force_login(user)
    return client


def owed(customer, assignee, *, hours: float, note: str = "回访") -> FollowUp:
    return followup_create(
        actor=None,
        customer=customer,
        purpose=FollowUp.Purpose.PROMISED_CALLBACK,
        due_at=timezone.now() + dt.timedelta(hours=hours),
        assignee=assignee,
        note=note,
    )


def complete_url(followup: FollowUp) -> str:
    return reverse("followups:followup_complete", args=[followup.pk])


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("anonymous", 302),
        ("agent", 200),
        ("complaint_specialist", 200),
        ("records_officer", 200),
        ("handler", 403),
        ("store_manager", 403),
        ("administrator", 403),
    ],
)
def test_followup_page_permission_matrix(request, role, status):
    user = None if role == "anonymous" else request.getfixturevalue(role)
    response = client_for(user).get(reverse(LIST))
    assert response.status_code == status
    if role == "anonymous":
        assert response["Location"].startswith(reverse("accounts:login"))


def test_agent_sees_own_followups_grouped_by_due(agent, supervisor, customer):
    late = owed(customer, agent, hours=-2, note="逾期的回访")
    later = owed(customer, agent, hours=72, note="三天后的回访")
    others = owed(customer, supervisor, hours=1, note="主管的回访")
    html = client_for(agent).get(reverse(LIST)).content.decode()
    assert f'id="followup-{late.pk}"' in html
    assert f'id="followup-{later.pk}"' in html
    assert f'id="followup-{others.pk}"' not in html
    overdue_section = html.split('data-group="overdue"')[1].split('data-group="today"')[0]
    assert "逾期的回访" in overdue_section
    upcoming_section = html.split('data-group="upcoming"')[1]
    assert "三天后的回访" in upcoming_section


def test_supervisor_switches_to_everyones_and_agent_cannot(agent, supervisor, customer):
    agents = owed(customer, agent, hours=1, note="专员的回访")
    html = client_for(supervisor).get(reverse(LIST), {"scope": "all"}).content.decode()
    assert f'id="followup-{agents.pk}"' in html
    html = client_for(agent).get(reverse(LIST), {"scope": "all"}).content.decode()
    assert f'id="followup-{agents.pk}"' in html  # their own, shown as "mine"
    other = owed(customer, supervisor, hours=1, note="主管的回访")
    html = client_for(agent).get(reverse(LIST), {"scope": "all"}).content.decode()
    assert f'id="followup-{other.pk}"' not in html


def test_assignee_records_the_outcome(agent, customer):
    followup = owed(customer, agent, hours=-1)
    response = client_for(agent).post(
        complete_url(followup), {"outcome": "reached", "outcome_note": "顾客满意"}
    )
    assert response.status_code == 302
    followup.refresh_from_db()
    assert followup.status == FollowUp.Status.DONE
    assert followup.outcome == FollowUp.Outcome.REACHED
    assert followup.completed_by == agent


def test_someone_elses_followup_is_not_found(agent, complaint_specialist, customer):
    followup = owed(customer, complaint_specialist, hours=1)
    response = client_for(agent).post(complete_url(followup), {"outcome": "reached"})
    assert response.status_code == 404
    followup.refresh_from_db()
    assert followup.status == FollowUp.Status.OPEN


def test_supervisor_records_anyones_outcome(supervisor, agent, customer):
    followup = owed(customer, agent, hours=1)
    response = client_for(supervisor).post(
        complete_url(followup), {"outcome": "not_reached", "scope": "all"}, headers=HX
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse(LIST) + "?scope=all"
    followup.refresh_from_db()
    assert followup.status == FollowUp.Status.DONE


def test_read_only_role_cannot_record(records_officer, customer):
    followup = owed(customer, records_officer, hours=1)
    response = client_for(records_officer).post(complete_url(followup), {"outcome": "reached"})
    assert response.status_code == 403
    followup.refresh_from_db()
    assert followup.status == FollowUp.Status.OPEN


def test_anonymous_cannot_record(agent, customer):
    followup = owed(customer, agent, hours=1)
    response = client_for(None).post(complete_url(followup), {"outcome": "reached"})
    assert response.status_code == 302
    followup.refresh_from_db()
    assert followup.status == FollowUp.Status.OPEN


def test_missing_outcome_rerenders_the_row_with_the_error(agent, customer):
    """HTMX: the row comes back with the error inline (200) and the follow-up stays open."""
    followup = owed(customer, agent, hours=1)
    response = client_for(agent).post(complete_url(followup), {"outcome": ""}, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<tr id="followup-{followup.pk}"')
    assert "Choose an outcome." in html
    followup.refresh_from_db()
    assert followup.status == FollowUp.Status.OPEN


def test_done_followup_cannot_be_recorded_twice(agent, customer):
    followup = owed(customer, agent, hours=1)
    client = client_for(agent)
    client.post(complete_url(followup), {"outcome": "reached"})
    response = client.post(complete_url(followup), {"outcome": "refused"}, headers=HX)
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    followup.refresh_from_db()
    assert followup.outcome == FollowUp.Outcome.REACHED
