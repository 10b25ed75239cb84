"""The follow-up page: one's own calls by due time, everyone's for supervisors, and recording the
outcome (only the assignee or a supervisor)."""

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from kefu.customers.tests.factories import make_customer
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
    later = owed(make_customer(name="李四"), agent, hours=72, note="三天后的回访")
    others = owed(make_customer(name="王五"), supervisor, hours=1, note="主管的回访")
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
    other = owed(make_customer(name="王五"), supervisor, hours=1, note="主管的回访")
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
    """HTMX: the row goes; the line in its place says when the retry (by the rule) is due."""
    followup = owed(customer, agent, hours=1)
    response = client_for(supervisor).post(
        complete_url(followup), {"outcome": "not_reached", "scope": "all"}, headers=HX
    )
    assert response.status_code == 200
    followup.refresh_from_db()
    assert followup.status == FollowUp.Status.DONE
    retry = FollowUp.objects.get(previous=followup)
    assert retry.assignee == agent
    html = response.content.decode()
    assert f'<tr id="followup-{followup.pk}" class="done"' in html
    assert f'data-next="{retry.pk}"' in html
    assert timezone.localtime(retry.due_at).strftime("%Y-%m-%d %H:%M") in html


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


# --- The agent's day ----------------------------------------------------------------------------


def _section(html: str, group: str) -> str:
    return html.split(f'data-group="{group}"')[1].split("</section>")[0]


def test_each_group_is_ordered_by_priority_then_due_time(agent, customer):
    """High priority first, then the soonest due: a normal call due earlier comes after."""
    # given three upcoming calls
    normal_soon = owed(customer, agent, hours=30, note="普通-早")
    high_late = owed(make_customer(name="李四"), agent, hours=50, note="高-晚")
    high_soon = owed(make_customer(name="王五"), agent, hours=40, note="高-早")
    FollowUp.objects.filter(pk__in=[high_late.pk, high_soon.pk]).update(priority=1)
    # when
    html = client_for(agent).get(reverse(LIST)).content.decode()
    # then
    upcoming = _section(html, "upcoming")
    order = [upcoming.index(f'id="followup-{f.pk}"') for f in (high_soon, high_late, normal_soon)]
    assert order == sorted(order)


def test_rows_show_purpose_attempt_note_ticket_and_a_booking_link(agent, customer):
    from kefu.tickets import services as ticket_services

    ticket = ticket_services.ticket_create(
        actor=agent,
        data={
            "type": "complaint",
            "channel": "phone",
            "subject": "买到过期的维生素",
            "description": "顾客称维生素已过期。",
            "customer": customer.pk,
        },
    )
    followup = followup_create(
        actor=agent,
        customer=customer,
        purpose=FollowUp.Purpose.COMPLAINT_AFTERCARE,
        due_at=timezone.now() + dt.timedelta(days=3),
        assignee=agent,
        ticket=ticket,
        note="回访退款是否到账",
    )
    FollowUp.objects.filter(pk=followup.pk).update(attempt=2)
    html = client_for(agent).get(reverse(LIST)).content.decode()
    row = html.split(f'id="followup-{followup.pk}"')[1].split("</tr>")[0]
    assert "Complaint aftercare" in row
    assert "attempt 2" in row
    assert "回访退款是否到账" in row
    assert f'href="{ticket.get_absolute_url()}"' in row
    assert f"/appointments/book/?customer={customer.pk}&amp;source=phone" in row


def test_phones_stay_masked_on_the_list_for_every_role(agent, supervisor, customer):
    """The list shows 138****1234 to agents and supervisors alike, and a call button; no full
    number and no tel: link is in the page before someone presses it."""
    mine = owed(customer, agent, hours=2)
    theirs = owed(make_customer(name="李四", phone="13900005678"), supervisor, hours=2)
    agent_html = client_for(agent).get(reverse(LIST)).content.decode()
    supervisor_html = client_for(supervisor).get(reverse(LIST), {"scope": "all"}).content.decode()
    for html in (agent_html, supervisor_html):
        assert "138****1234" in html
        assert "13812341234" not in html
        assert 'href="tel:' not in html
        assert reverse("followups:followup_call", args=[mine.pk]) in html
    assert "139****5678" in supervisor_html
    assert "13900005678" not in supervisor_html
    assert reverse("followups:followup_call", args=[theirs.pk]) in supervisor_html


def call_url(followup: FollowUp) -> str:
    return reverse("followups:followup_call", args=[followup.pk])


def test_agent_calls_the_customer_of_her_follow_up(agent, customer):
    """The call button: the row comes back with the full number as a tel: link and the "log
    the call" form open; the reveal is audited with the follow-up it was for."""
    from kefu.audit.models import AuditEntry

    followup = owed(customer, agent, hours=-1)
    response = client_for(agent).post(call_url(followup), {"scope": "mine"}, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.strip().startswith(f'<tr id="followup-{followup.pk}"')
    assert 'href="tel:+8613812341234"' in html
    assert '<details data-testid="log-call" open>' in html
    entry = AuditEntry.objects.get(action="customer.contact_revealed")
    assert (entry.actor, entry.action, entry.target_id) == (
        agent,
        "customer.contact_revealed",
        str(customer.pk),
    )
    assert entry.changes == {
        "contact": "138****1234",
        "kind": "phone",
        "call_for": {"type": "followup", "id": followup.pk},
    }
    assert entry.ip == "127.0.0.1"
    # the list itself stays masked
    assert "13812341234" not in client_for(agent).get(reverse(LIST)).content.decode()


def test_call_without_htmx_shows_the_number_on_its_own_page(agent, customer):
    followup = owed(customer, agent, hours=1)
    response = client_for(agent).post(call_url(followup))
    assert response.status_code == 200
    assert 'href="tel:+8613812341234"' in response.content.decode()


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("anonymous", 302),
        ("other_agent", 404),
        ("records_officer", 403),
        ("store_manager", 403),
        ("supervisor", 200),
    ],
)
def test_who_may_call_the_customer_of_a_follow_up(request, agent, customer, role, status):
    """Only the assignee, or a supervisor: another agent does not even see it; a read-only role
    may not call. Nothing is revealed or audited for a refusal."""
    from kefu.accounts.tests.factories import UserFactory
    from kefu.audit.models import AuditEntry

    followup = owed(customer, agent, hours=1)
    if role == "anonymous":
        user = None
    elif role == "other_agent":
        user = UserFactory(username="other-agent", role="agent")
    else:
        user = request.getfixturevalue(role)
    response = client_for(user).post(call_url(followup), headers=HX)
    assert response.status_code == status
    assert ("13812341234" in response.content.decode()) == (status == 200)
    assert AuditEntry.objects.filter(action="customer.contact_revealed").count() == (
        1 if status == 200 else 0
    )


def test_a_done_follow_up_or_a_customer_without_phone_reveals_nothing(agent, customer):
    from kefu.audit.models import AuditEntry

    done = owed(customer, agent, hours=1)
    FollowUp.objects.filter(pk=done.pk).update(status=FollowUp.Status.DONE)
    no_phone = owed(make_customer(name="无电话", phone=None), agent, hours=1)
    client = client_for(agent)
    late = client.post(call_url(done), headers=HX).content.decode()
    none = client.post(call_url(no_phone), headers=HX).content.decode()
    assert "This follow-up is already done." in late
    assert "tel:" not in late
    assert "The customer has no phone number." in none
    assert not AuditEntry.objects.filter(action="customer.contact_revealed").exists()


def test_logging_a_reached_call_removes_the_row(agent, customer):
    """HTMX: nothing comes back in the row's place when no follow-up comes after."""
    followup = followup_create(
        actor=None,
        customer=customer,
        purpose=FollowUp.Purpose.MEMBER_CARE,
        due_at=timezone.now() + dt.timedelta(hours=1),
        assignee=agent,
    )
    response = client_for(agent).post(
        complete_url(followup), {"outcome": "reached", "outcome_note": "生日礼已领取"}, headers=HX
    )
    assert response.status_code == 200
    assert response.content.decode().strip() == ""
    assert "followup-completed" in response["HX-Trigger"]
    followup.refresh_from_db()
    assert followup.outcome_note == "生日礼已领取"
    assert not FollowUp.objects.filter(previous=followup).exists()


def test_next_follow_up_at_schedules_the_next_call(agent, customer):
    """ "Call me back on Friday": the next follow-up is due when asked, not by the rule."""
    followup = owed(customer, agent, hours=-1)
    when = timezone.localtime() + dt.timedelta(days=3)
    response = client_for(agent).post(
        complete_url(followup),
        {"outcome": "reached", "next_due_at": when.strftime("%Y-%m-%dT%H:%M")},
        headers=HX,
    )
    following = FollowUp.objects.get(previous=followup)
    assert following.due_at == when.replace(second=0, microsecond=0)
    assert following.purpose == FollowUp.Purpose.PROMISED_CALLBACK
    assert "upcoming" in response.content.decode()


@pytest.mark.parametrize(
    ("value", "message"),
    [("2020-01-01T10:00", "Choose a time in the future."), ("someday", "Enter a valid date/time.")],
)
def test_next_follow_up_errors_name_the_field(agent, customer, value, message):
    followup = owed(customer, agent, hours=1)
    response = client_for(agent).post(
        complete_url(followup), {"outcome": "reached", "next_due_at": value}, headers=HX
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert f"Next follow-up at: {message}" in html
    assert '<details data-testid="log-call" open>' in html
    followup.refresh_from_db()
    assert followup.status == FollowUp.Status.OPEN


def test_supervisor_filters_everyones_by_assignee(
    supervisor, agent, complaint_specialist, customer
):
    agents = owed(customer, agent, hours=1)
    specialists = owed(make_customer(name="李四"), complaint_specialist, hours=1)
    client = client_for(supervisor)
    html = client.get(reverse(LIST), {"scope": "all", "assignee": agent.pk}).content.decode()
    assert f'id="followup-{agents.pk}"' in html
    assert f'id="followup-{specialists.pk}"' not in html
    assert f'<option value="{complaint_specialist.pk}"' in html
    # an agent's assignee filter is ignored: their own list
    mine = client_for(agent).get(reverse(LIST), {"assignee": complaint_specialist.pk})
    assert f'id="followup-{agents.pk}"' in mine.content.decode()


def test_team_followups_without_an_assignee_are_shown_to_the_team(agent, customer):
    from kefu.accounts.tests.factories import TeamFactory, UserFactory

    team = TeamFactory(name="热线组")
    agent.team = team
    agent.save(update_fields=["team"])
    outsider = UserFactory(username="outsider", role="agent")
    unassigned = FollowUp.objects.create(
        customer=customer,
        purpose=FollowUp.Purpose.PROMISED_CALLBACK,
        due_at=timezone.now() + dt.timedelta(hours=1),
        team=team,
        note="组内回电",
    )
    html = client_for(agent).get(reverse(LIST)).content.decode()
    assert f'id="team-followup-{unassigned.pk}"' in _section(html, "team")
    assert 'data-group="team"' not in client_for(outsider).get(reverse(LIST)).content.decode()


def test_follow_up_list_runs_a_constant_number_of_queries(agent, customer):
    from kefu.customers.tests.factories import make_customer

    client = client_for(agent)
    owed(customer, agent, hours=-1)
    client.get(reverse(LIST))
    with CaptureQueriesContext(connection) as one:
        client.get(reverse(LIST))
    for index in range(5):
        owed(make_customer(name=f"顾客{index}"), agent, hours=index * 20 - 10)
    with CaptureQueriesContext(connection) as six:
        html = client.get(reverse(LIST)).content.decode()
    assert html.count('<tr id="followup-') == 6
    assert len(six) == len(one)


def _many(assignee, count: int, *, hours_from: float) -> list[FollowUp]:
    """`count` follow-ups of as many customers, an hour apart from `hours_from`."""
    from kefu.customers.models import Customer

    customers = Customer.objects.bulk_create(
        Customer(number=f"KH9{i:07d}", name=f"顾客{i}") for i in range(count)
    )
    now = timezone.now()
    return FollowUp.objects.bulk_create(
        FollowUp(
            customer=c,
            purpose=FollowUp.Purpose.MEMBER_CARE,
            due_at=now + dt.timedelta(hours=hours_from + i),
            assignee=assignee,
        )
        for i, c in enumerate(customers)
    )


def test_everyones_follow_ups_come_a_page_at_a_time(supervisor, agent):
    """Six hundred open follow-ups: a page of 25 rows, the groups' counts over all of them, a
    pager; the last page is reachable (no cut at 500) and a wrong page number is no error."""
    import re

    from kefu.followups.views import PAGE_SIZE

    # given 10 overdue and 590 due later
    rows = _many(agent, 600, hours_from=-9.5)
    client = client_for(supervisor)
    # when
    first = client.get(reverse(LIST), {"scope": "all"}).content.decode()
    last = client.get(reverse(LIST), {"scope": "all", "page": 24}).content.decode()
    beyond = client.get(reverse(LIST), {"scope": "all", "page": "99999999999"})
    junk = client.get(reverse(LIST), {"scope": "all", "page": "abc"})
    # then
    assert first.count('<tr id="followup-') == PAGE_SIZE
    assert f'id="followup-{rows[0].pk}"' in first
    counts = [int(n) for n in re.findall(r'data-testid="group-count">(\d+)<', first)]
    assert counts[0] == 10
    assert sum(counts) == 600
    assert "Page 1 of 24" in first
    assert 'href="?scope=all&amp;page=2" rel="next"' in first
    assert last.count('<tr id="followup-') == 600 - 23 * PAGE_SIZE
    assert f'id="followup-{rows[-1].pk}"' in last
    assert 'rel="next"' not in last
    assert "On the other pages." in last  # the overdue ones are on page 1
    assert beyond.status_code == junk.status_code == 200
    assert "Page 24 of 24" in beyond.content.decode()
    assert "Page 1 of 24" in junk.content.decode()


def test_the_pager_keeps_the_assignee_filter(supervisor, agent):
    _many(agent, 30, hours_from=1)
    html = (
        client_for(supervisor)
        .get(reverse(LIST), {"scope": "all", "assignee": agent.pk})
        .content.decode()
    )
    assert f'href="?scope=all&amp;assignee={agent.pk}&amp;page=2" rel="next"' in html


def test_a_page_orders_by_group_then_priority_across_the_whole_list(agent):
    """A high-priority call due next week comes before normal ones due sooner, on page 1."""
    rows = _many(agent, 40, hours_from=24)
    FollowUp.objects.filter(pk=rows[-1].pk).update(priority=FollowUp.Priority.HIGH)
    html = client_for(agent).get(reverse(LIST)).content.decode()
    upcoming = _section(html, "upcoming")
    assert upcoming.index(f'id="followup-{rows[-1].pk}"') < upcoming.index(
        f'id="followup-{rows[0].pk}"'
    )


# --- Sending a message --------------------------------------------------------------------------


def message_url(followup: FollowUp) -> str:
    return reverse("followups:followup_message", args=[followup.pk])


def test_send_a_message_to_the_customer(agent, customer):
    """The SMS goes through the gateway (the local outbox here) to the full number."""
    from kefu.campaigns.models import OutboxMessage

    followup = owed(customer, agent, hours=-1)
    response = client_for(agent).post(
        message_url(followup), {"body": "您好，刚才未能接通，请回电。"}, headers=HX
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.strip().startswith(f'<form id="followup-message-{followup.pk}"')
    assert "Sent to 138****1234." in html
    message = OutboxMessage.objects.get()
    assert message.gateway == "sms"
    assert message.to == "+8613812341234"
    assert message.body == "您好，刚才未能接通，请回电。"
    assert message.customer == customer
    assert message.reference.startswith(f"followup-{followup.pk}-")


def test_message_errors_come_back_on_the_form(agent, customer):
    from kefu.campaigns.models import OutboxMessage
    from kefu.customers.tests.factories import make_customer

    followup = owed(customer, agent, hours=1)
    no_phone = owed(make_customer(name="无电话", phone=None), agent, hours=1)
    client = client_for(agent)
    empty = client.post(message_url(followup), {"body": "  "}, headers=HX)
    unreachable = client.post(message_url(no_phone), {"body": "您好"}, headers=HX)
    assert empty.status_code == 200
    assert "Write the message." in empty.content.decode()
    assert unreachable.status_code == 200
    assert "The customer has no phone number." in unreachable.content.decode()
    assert not OutboxMessage.objects.exists()


@pytest.mark.parametrize(
    ("role", "status"),
    [("complaint_specialist", 200), ("records_officer", 403), ("store_manager", 403)],
)
def test_who_may_send_a_message(request, agent, customer, role, status):
    """Supervisors (who see everyone's) may; a read-only role may not."""
    followup = owed(customer, agent, hours=1)
    user = request.getfixturevalue(role)
    response = client_for(user).post(message_url(followup), {"body": "您好"}, headers=HX)
    assert response.status_code == status


def test_another_agents_follow_up_cannot_be_messaged(agent, customer):
    from kefu.accounts.tests.factories import UserFactory

    other = UserFactory(username="other-agent", role="agent")
    followup = owed(customer, other, hours=1)
    assert client_for(agent).post(message_url(followup), {"body": "您好"}).status_code == 404


# --- The records officer's lists ----------------------------------------------------------------

LISTS = "followups:care_list_index"
BUILD = "followups:care_list_build"


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("anonymous", 302),
        ("records_officer", 200),
        ("manager", 200),
        ("agent", 403),
        ("store_manager", 403),
    ],
)
def test_lists_page_permission_matrix(request, role, status):
    user = None if role == "anonymous" else request.getfixturevalue(role)
    assert client_for(user).get(reverse(LISTS)).status_code == status


def test_records_officer_builds_the_key_accounts_list(records_officer, customer):
    """Key accounts go to the VIP specialists; the history shows the list and links to it."""
    from kefu.accounts.tests.factories import UserFactory
    from kefu.customers.models import Customer
    from kefu.followups.models import CareList

    specialist = UserFactory(username="vip", role="vip_specialist")
    Customer.objects.filter(pk=customer.pk).update(level=Customer.Level.KEY_ACCOUNT)
    client = client_for(records_officer)
    response = client.post(reverse(BUILD), {"kind": "key_accounts"})
    assert response.status_code == 302
    care_list = CareList.objects.get()
    assert (care_list.kind, care_list.customers, care_list.handed_over) == ("key_accounts", 1, 1)
    assert care_list.built_by == records_officer
    assert FollowUp.objects.get(care_list=care_list).assignee == specialist
    html = client.get(reverse(LISTS)).content.decode()
    detail = reverse("followups:care_list_detail", args=[care_list.pk])
    assert f'href="{detail}"' in html
    detail_html = client.get(detail).content.decode()
    assert "张三" in detail_html
    assert str(specialist) in detail_html


def test_birthday_list_needs_a_sensible_number_of_days(records_officer):
    """A bad number of days: the form comes back with the error on the field (HTMX, 200)."""
    from kefu.followups.models import CareList

    client = client_for(records_officer)
    response = client.post(reverse(BUILD), {"kind": "birthdays", "days": "90"}, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.strip().startswith('<form id="build-birthdays"')
    assert "Days ahead: " in html
    page = client.post(reverse(BUILD), {"kind": "gossip"})
    assert page.status_code == 200
    assert "List: " in page.content.decode()
    assert not CareList.objects.exists()


def test_htmx_build_redirects_to_the_lists(records_officer):
    response = client_for(records_officer).post(
        reverse(BUILD), {"kind": "birthdays", "days": "7"}, headers=HX
    )
    assert response["HX-Redirect"] == reverse(LISTS)


@pytest.mark.parametrize("role", ["agent", "complaint_specialist"])
def test_only_list_keepers_build_lists(request, role):
    user = request.getfixturevalue(role)
    assert client_for(user).post(reverse(BUILD), {"kind": "churn_risk"}).status_code == 403


def test_unknown_list_is_not_found(records_officer):
    response = client_for(records_officer).get(reverse("followups:care_list_detail", args=[9999]))
    assert response.status_code == 404


def test_a_team_member_takes_an_unassigned_team_follow_up(client, agent):
    """The team's unassigned follow-ups are listed with a button that makes one mine."""
    from kefu.accounts.models import Team
    from kefu.customers.tests.factories import make_customer
    from kefu.followups.models import FollowUp
    from kefu.tickets.tests.fixtures import at

    # given
    team = Team.objects.create(name="回访组")
    agent.team = team
    agent.save()
    followup = FollowUp.objects.create(
        customer=make_customer(name="团队客户"),
        purpose="member_care",
        due_at=at(2026, 11, 30, 9),
        team=team,
    )
    client.force_login(agent)
    assert f'id="take-{followup.pk}"' in client.get("/followups/").content.decode()
    # when
    response = client.post(f"/followups/{followup.pk}/take/")
    # then
    assert response.status_code == 302
    followup.refresh_from_db()
    assert followup.assignee == agent


def test_a_lists_follow_ups_come_a_page_at_a_time(records_officer, agent):
    """A list of 600 calls: 25 a page, all reachable (no cut at 500)."""
    from django.utils import timezone as tz

    from kefu.followups.models import CareList
    from kefu.followups.views import PAGE_SIZE

    care_list = CareList.objects.create(kind="birthdays", built_at=tz.now(), customers=600)
    rows = _many(agent, 600, hours_from=1)
    FollowUp.objects.filter(pk__in=[f.pk for f in rows]).update(care_list=care_list)
    url = reverse("followups:care_list_detail", args=[care_list.pk])
    client = client_for(records_officer)
    first = client.get(url).content.decode()
    last = client.get(url, {"page": 24}).content.decode()
    assert first.count('<tr id="followup-') == PAGE_SIZE
    assert "Page 1 of 24" in first
    assert f'id="followup-{rows[-1].pk}"' in last
    assert client.get(url, {"page": "x"}).status_code == 200
