"""The ticket workflow against the database, on a frozen clock (every service takes `now`)."""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from kefu.accounts.tests.factories import UserFactory
from kefu.audit.models import AuditEntry
from kefu.core.exceptions import Conflict, Forbidden, ValidationFailed
from kefu.customers.models import CustomerEvent
from kefu.followups.models import FollowUp
from kefu.notifications.models import Notification
from kefu.tickets import services, sla
from kefu.tickets.exceptions import (
    HandoffNotOpen,
    TicketReopenWindowPassed,
    TicketTransitionNotAllowed,
)
from kefu.tickets.models import (
    Category,
    ExternalEscalation,
    Queue,
    QueueMember,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketHandoff,
)
from kefu.tickets.tests.fixtures import at

pytestmark = pytest.mark.django_db


def kinds(ticket):
    return list(ticket.events.values_list("kind", flat=True))


def open_complaint(actor, customer, now, **extra):
    data = {
        "type": "complaint",
        "channel": "phone",
        "subject": "买到过期的维生素",
        "description": "顾客称在人民路店买到的维生素C已过期。",
        "customer": customer.pk,
        **extra,
    }
    return services.ticket_create(actor=actor, data=data, now=now)


def test_whole_complaint_lifecycle_with_urging_and_escalation(
    agent,
    customer,
    complaint_specialist,
    supervisor,
    manager,
    handler,
    quality_department,
    root_cause,
    sla_policies,
):
    """An agent opens a complaint, hands it to the quality department; unanswered, it is urged
    every two working hours, escalates to the supervisor and then the manager; the handler
    resolves it, the customer accepts and the complaint specialist closes it."""
    # given: Tuesday 24 November 2026, 10:00
    opened = at(2026, 11, 24, 10)
    ticket = open_complaint(agent, customer, opened)
    assert ticket.number.startswith("GD")
    assert ticket.assignee == complaint_specialist  # complaints go to the complaint specialists
    assert ticket.status == Ticket.Status.ASSIGNED
    assert ticket.first_response_due_at == at(2026, 11, 24, 12)
    # 16 working hours: 6.5 on Tuesday, 7.5 on Wednesday, 2 on Thursday
    assert ticket.resolution_due_at == at(2026, 11, 26, 11)

    # when: the agent hands it to the quality department at 10:30
    handoff = services.ticket_hand_off(
        actor=agent,
        ticket_id=ticket.pk,
        department_id=quality_department.pk,
        instructions="请核查该批次维生素C的效期",
        now=at(2026, 11, 24, 10, 30),
    )
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.WAITING_DEPARTMENT
    assert handoff.next_urge_at == at(2026, 11, 24, 14)  # two working hours, lunch skipped
    assert Notification.objects.filter(recipient=handler, kind="handoff_received").exists()

    # then: nothing is due before 11:36, when 80 % of the first response time is used
    assert services.ticket_timers_run(now=at(2026, 11, 24, 11, 35)) == {
        "sla": 0,
        "urged": 0,
        "callbacks": 0,
    }
    assert services.ticket_timers_run(now=at(2026, 11, 24, 11, 36))["sla"] == 1  # warning
    # the first response is missed at 12:00: breach, escalated to the supervisor
    assert services.ticket_timers_run(now=at(2026, 11, 24, 12))["sla"] == 1
    # first urge at 14:00; a second pass at the same moment does nothing more
    assert services.ticket_timers_run(now=at(2026, 11, 24, 14))["urged"] == 1
    assert services.ticket_timers_run(now=at(2026, 11, 24, 14))["urged"] == 0
    # second urge at 16:00 escalates to the supervisor, third (18:00) to the manager
    assert services.ticket_timers_run(now=at(2026, 11, 24, 16))["urged"] == 1
    assert services.ticket_timers_run(now=at(2026, 11, 24, 18))["urged"] == 1
    ticket.refresh_from_db()
    assert ticket.escalation_level == 2
    urges = ticket.events.filter(kind=TicketEvent.Kind.URGED)
    assert [e.data["count"] for e in urges] == [1, 2, 3]
    escalations = ticket.events.filter(kind=TicketEvent.Kind.ESCALATED)
    assert [(e.data["level"], e.data["reason"]) for e in escalations] == [
        (1, "sla"),
        (1, "handoff"),
        (2, "handoff"),
    ]
    assert Notification.objects.filter(recipient=supervisor, kind="ticket_escalated").count() == 2
    assert Notification.objects.filter(recipient=manager, kind="ticket_escalated").count() == 1
    assert Notification.objects.filter(recipient=handler, kind="handoff_urged").count() == 3

    # when: the handler answers with the resolution the next morning
    services.handoff_answer(
        actor=handler,
        ticket_id=ticket.pk,
        answer="该批次已下架，为顾客退款并赠送代金券",
        resolution={
            "resolution_type": "refund",
            "resolution_summary": "退款并赠送50元代金券",
            "resolution_cost": "78.50",
            "root_cause": root_cause.pk,
        },
        now=at(2026, 11, 25, 9, 30),
    )
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.RESOLVED
    assert ticket.resolved_at == at(2026, 11, 25, 9, 30)
    # no more urges once answered
    assert services.ticket_timers_run(now=at(2026, 11, 25, 18))["urged"] == 0

    # the complaint cannot close before the customer accepts
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_close(
            actor=complaint_specialist, ticket_id=ticket.pk, now=at(2026, 11, 25, 10)
        )
    assert "acceptance" in refused.value.errors

    # when: the customer accepts on the status page, the specialist closes
    services.ticket_record_acceptance(
        actor=None,
        ticket_id=ticket.pk,
        accepted=True,
        note="满意",
        via="status_page",
        now=at(2026, 11, 25, 11),
    )
    services.ticket_close(actor=complaint_specialist, ticket_id=ticket.pk, now=at(2026, 11, 25, 14))
    ticket.refresh_from_db()

    # then
    assert ticket.status == Ticket.Status.CLOSED
    assert sla.state(ticket, now=at(2026, 11, 25, 14)).state == sla.MET
    aftercare = FollowUp.objects.get(ticket=ticket)
    assert aftercare.purpose == FollowUp.Purpose.COMPLAINT_AFTERCARE
    assert aftercare.due_at == at(2026, 12, 25, 9, 30)  # one month after resolution
    assert aftercare.assignee == complaint_specialist
    assert list(
        CustomerEvent.objects.filter(customer=customer, kind__startswith="ticket_")
        .order_by("id")
        .values_list("kind", flat=True)
    ) == ["ticket_opened", "ticket_resolved", "ticket_closed"]
    assert kinds(ticket)[-3:] == ["acceptance", "status_changed", "closed"]


def test_sla_across_national_day_2026_with_make_up_workdays(agent, customer, sla_policies):
    """24 working hours from 17:00 on 30 September: 1 hour that day, nothing from 1 to 7
    October, 7.5 hours each on 8 and 9 October and on Saturday 10 October (a make-up
    workday), and the last half hour on Monday 12 October."""
    sla_policies[0].resolution_minutes = 24 * 60
    sla_policies[0].save()
    ticket = open_complaint(agent, customer, at(2026, 9, 30, 17))
    assert ticket.resolution_due_at == at(2026, 10, 12, 9, 30)
    # first response (2 working hours): 1 hour on the 30th, the second on 8 October
    assert ticket.first_response_due_at == at(2026, 10, 8, 10)
    # then: nothing fires during the holiday; the first response warns and breaches on the 8th
    assert services.ticket_timers_run(now=at(2026, 10, 7, 23))["sla"] == 0
    assert services.ticket_timers_run(now=at(2026, 10, 8, 9, 40))["sla"] == 1  # 80 % used
    assert services.ticket_timers_run(now=at(2026, 10, 8, 10))["sla"] == 1
    ticket.refresh_from_db()
    assert sla.state(ticket, now=at(2026, 10, 8, 10)).state == sla.BREACHED


def test_major_complaint_runs_around_the_clock(agent, customer, sla_policies, supervisor, manager):
    ticket = open_complaint(agent, customer, at(2026, 9, 30, 17), severity="major")
    assert ticket.sla_policy.name == "重大投诉"
    assert ticket.resolution_due_at == at(2026, 10, 1, 17)
    assert ticket.is_impact_watched
    # supervisors and managers hear of a major complaint at once
    assert Notification.objects.filter(recipient=manager, kind="ticket_major").exists()


def test_waiting_on_the_customer_pauses_the_clocks(agent, customer, sla_policies):
    """Opened Monday 09:00 with 16 working hours to resolve; on hold from Monday 11:00 to
    Tuesday 11:00 (2 hours used), the remaining 14 run to Thursday 10:00."""
    ticket = open_complaint(agent, customer, at(2026, 11, 23, 9))
    assert ticket.resolution_due_at == at(2026, 11, 25, 10)  # Mon 7.5 + Tue 7.5 + Wed 1
    services.ticket_reply(
        actor=agent, ticket_id=ticket.pk, body="已记录，请提供购药小票", now=at(2026, 11, 23, 10)
    )
    services.ticket_wait_customer(
        actor=agent, ticket_id=ticket.pk, reason="等顾客提供小票", now=at(2026, 11, 23, 11)
    )
    ticket.refresh_from_db()
    assert sla.state(ticket, now=at(2026, 11, 24, 11)).state == sla.PAUSED
    # nothing fires while paused, even past the old due time
    assert services.ticket_timers_run(now=at(2026, 11, 24, 10, 30))["sla"] == 0
    # the customer sends the receipt on the status page: the ticket resumes
    services.ticket_customer_message(
        ticket_id=ticket.pk, body="小票照片已补充", now=at(2026, 11, 24, 11)
    )
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.IN_PROGRESS
    assert ticket.sla_paused_at is None
    assert ticket.resolution_due_at == at(2026, 11, 26, 10)
    # a reply is due within 4 working hours of the customer's message
    assert ticket.next_response_due_at == at(2026, 11, 24, 16, 30)
    assert sla.state(ticket, now=at(2026, 11, 24, 11)).state == sla.OK


@pytest.mark.parametrize(
    ("action", "status"),
    [
        ("close", "new"),
        ("resolve", "closed"),
        ("reopen", "in_progress"),
        ("resume", "in_progress"),
        ("wait_customer", "resolved"),
        ("start", "waiting_department"),
    ],
)
def test_illegal_transitions_are_refused(agent, customer, action, status):
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    Ticket.objects.filter(pk=ticket.pk).update(status=status, resolved_at=at(2026, 11, 24, 11))
    calls = {
        "close": lambda: services.ticket_close(actor=agent, ticket_id=ticket.pk),
        "resolve": lambda: services.ticket_resolve(actor=agent, ticket_id=ticket.pk, data={}),
        "reopen": lambda: services.ticket_reopen(actor=agent, ticket_id=ticket.pk, reason="x"),
        "resume": lambda: services.ticket_resume(actor=agent, ticket_id=ticket.pk),
        "wait_customer": lambda: services.ticket_wait_customer(actor=agent, ticket_id=ticket.pk),
        "start": lambda: services.ticket_start(actor=agent, ticket_id=ticket.pk),
    }
    with pytest.raises(TicketTransitionNotAllowed) as refused:
        calls[action]()
    assert refused.value.status == 409
    assert refused.value.code == "transition_not_allowed"
    ticket.refresh_from_db()
    assert ticket.status == status  # nothing written


def test_rejection_within_the_window_reopens_and_after_it_is_refused(
    agent, customer, complaint_specialist, root_cause, sla_policies
):
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    resolution = {
        "resolution_type": "explanation",
        "resolution_summary": "已解释效期标注",
        "resolution_cost": "0",
        "root_cause": root_cause.pk,
    }
    services.ticket_start(
        actor=complaint_specialist, ticket_id=ticket.pk, now=at(2026, 11, 24, 10, 5)
    )
    services.ticket_resolve(
        actor=complaint_specialist, ticket_id=ticket.pk, data=resolution, now=at(2026, 11, 24, 11)
    )
    services.ticket_record_acceptance(
        actor=None, ticket_id=ticket.pk, accepted=False, note="不接受解释", now=at(2026, 11, 25, 9)
    )
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.IN_PROGRESS
    assert ticket.reopened_count == 1
    assert ticket.next_response_due_at is not None
    services.ticket_resolve(
        actor=complaint_specialist, ticket_id=ticket.pk, data=resolution, now=at(2026, 11, 25, 10)
    )
    with pytest.raises(TicketReopenWindowPassed):
        services.ticket_reopen(
            actor=agent, ticket_id=ticket.pk, reason="又来电", now=at(2026, 12, 10, 10)
        )


def test_complaint_resolution_needs_every_field_and_only_specialists_close(
    agent, customer, complaint_specialist
):
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    services.ticket_start(
        actor=complaint_specialist, ticket_id=ticket.pk, now=at(2026, 11, 24, 10, 5)
    )
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_resolve(
            actor=complaint_specialist,
            ticket_id=ticket.pk,
            data={"resolution_type": "refund", "resolution_cost": "abc"},
            now=at(2026, 11, 24, 11),
        )
    assert set(refused.value.errors) == {"resolution_summary", "resolution_cost", "root_cause"}
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.IN_PROGRESS


def test_agent_cannot_close_a_complaint(agent, customer, complaint_specialist, root_cause):
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    services.ticket_start(
        actor=complaint_specialist, ticket_id=ticket.pk, now=at(2026, 11, 24, 10, 5)
    )
    services.ticket_resolve(
        actor=complaint_specialist,
        ticket_id=ticket.pk,
        now=at(2026, 11, 24, 11),
        data={
            "resolution_type": "refund",
            "resolution_summary": "退款",
            "resolution_cost": "10",
            "root_cause": root_cause.pk,
        },
    )
    services.ticket_record_acceptance(
        actor=agent, ticket_id=ticket.pk, accepted=True, note="电话确认", now=at(2026, 11, 24, 12)
    )
    with pytest.raises(Forbidden):
        services.ticket_close(actor=agent, ticket_id=ticket.pk, now=at(2026, 11, 24, 13))


def test_unknown_caller_becomes_a_prospect(agent):
    ticket = services.ticket_create(
        actor=agent,
        data={"type": "consultation", "subject": "咨询营业时间", "phone": "139 0000 1111"},
        now=at(2026, 11, 24, 10),
    )
    assert ticket.customer.status == "prospect"
    assert ticket.customer.contacts.get().value == "+8613900001111"
    # the same caller again is the same customer
    again = services.ticket_create(
        actor=agent,
        data={"type": "consultation", "subject": "再次咨询", "phone": "13900001111"},
        now=at(2026, 11, 24, 11),
    )
    assert again.customer_id == ticket.customer_id


def test_bad_input_names_every_field(agent):
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_create(
            actor=agent,
            data={"type": "nonsense", "severity": "x", "phone": "123"},
            now=at(2026, 11, 24, 10),
        )
    assert {"type", "subject", "severity"} <= set(refused.value.errors)
    assert not Ticket.objects.exists()


def test_overdue_promised_callback_escalates_once(agent, customer, supervisor):
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    services.ticket_promise_callback(
        actor=agent,
        ticket_id=ticket.pk,
        due_at=at(2026, 11, 24, 15),
        note="回电告知核查结果",
        now=at(2026, 11, 24, 10, 10),
    )
    assert services.ticket_timers_run(now=at(2026, 11, 24, 15, 20))["callbacks"] == 0
    assert services.ticket_timers_run(now=at(2026, 11, 24, 15, 31))["callbacks"] == 1
    assert services.ticket_timers_run(now=at(2026, 11, 24, 16))["callbacks"] == 0
    assert Notification.objects.filter(recipient=supervisor, kind="callback_overdue").count() == 1
    ticket.refresh_from_db()
    assert ticket.escalation_level == 1


def test_tickets_follow_a_merged_customer(agent, records_officer, customer, duplicate):
    from kefu.customers.services import customer_merge

    ticket = open_complaint(agent, duplicate, at(2026, 11, 24, 10))
    customer_merge(actor=records_officer, target_id=customer.pk, duplicate_id=duplicate.pk)
    ticket.refresh_from_db()
    assert ticket.customer_id == customer.pk


def test_a_replayed_acceptance_is_refused(agent, customer, complaint_specialist, root_cause):
    from kefu.tickets.exceptions import AcceptanceAlreadyRecorded

    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    services.ticket_start(
        actor=complaint_specialist, ticket_id=ticket.pk, now=at(2026, 11, 24, 10, 5)
    )
    services.ticket_resolve(
        actor=complaint_specialist,
        ticket_id=ticket.pk,
        now=at(2026, 11, 24, 11),
        data={
            "resolution_type": "refund",
            "resolution_summary": "退款",
            "resolution_cost": "10",
            "root_cause": root_cause.pk,
        },
    )
    accept = {"actor": None, "ticket_id": ticket.pk, "accepted": True, "now": at(2026, 11, 24, 12)}
    services.ticket_record_acceptance(**accept)
    with pytest.raises(AcceptanceAlreadyRecorded):
        services.ticket_record_acceptance(**accept)
    assert ticket.events.filter(kind=TicketEvent.Kind.ACCEPTANCE).count() == 1


def test_reopening_clears_the_rejected_resolution(
    agent, customer, complaint_specialist, root_cause
):
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    services.ticket_start(
        actor=complaint_specialist, ticket_id=ticket.pk, now=at(2026, 11, 24, 10, 5)
    )
    services.ticket_resolve(
        actor=complaint_specialist,
        ticket_id=ticket.pk,
        now=at(2026, 11, 24, 11),
        data={
            "resolution_type": "refund",
            "resolution_summary": "退款",
            "resolution_cost": "10",
            "root_cause": root_cause.pk,
        },
    )
    services.ticket_reopen(
        actor=agent, ticket_id=ticket.pk, reason="金额不对", now=at(2026, 11, 24, 12)
    )
    ticket.refresh_from_db()
    assert (ticket.resolution_type, ticket.resolution_cost, ticket.root_cause) == ("", None, None)
    resolved = ticket.events.get(kind=TicketEvent.Kind.RESOLVED)
    assert resolved.data["cost"] == "10.00"


def test_round_robin_skips_agents_off_duty_and_at_their_cap(agent, customer, db):
    from kefu.accounts.tests.factories import UserFactory
    from kefu.tickets.models import Queue, QueueMember

    # given a queue of three agents, one off duty, with at most one open ticket each
    queue = Queue.objects.create(name="客服组", ticket_types=["consultation"], max_open_per_agent=1)
    a, b, c = (UserFactory(username=f"a{i}", role="agent") for i in range(3))
    for user in (a, b, c):
        QueueMember.objects.create(queue=queue, user=user)
    assert services.queue_duty_set(actor=c, on_duty=False) == 1

    def consult(n):
        return services.ticket_create(
            actor=agent,
            data={"type": "consultation", "subject": f"咨询{n}", "customer": customer.pk},
            now=at(2026, 11, 24, 10, n),
        )

    # when four consultations arrive
    tickets = [consult(n) for n in range(4)]
    # then a and b take one each, in turn; the rest wait unassigned in the queue
    assert [t.assignee for t in tickets] == [a, b, None, None]
    assert all(t.queue == queue for t in tickets)
    assert tickets[2].status == Ticket.Status.NEW


def test_notes_by_workers_and_handlers_only(
    agent, customer, handler, records_officer, quality_department
):
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    services.ticket_note(
        actor=agent, ticket_id=ticket.pk, body="已致电顾客", now=at(2026, 11, 24, 10, 1)
    )
    with pytest.raises(Forbidden):
        services.ticket_note(actor=records_officer, ticket_id=ticket.pk, body="x")
    services.ticket_hand_off(
        actor=agent,
        ticket_id=ticket.pk,
        department_id=quality_department.pk,
        instructions="请核查",
        now=at(2026, 11, 24, 10, 2),
    )
    services.ticket_note(
        actor=handler, ticket_id=ticket.pk, body="正在核查批次", now=at(2026, 11, 24, 11)
    )
    assert ticket.events.filter(kind=TicketEvent.Kind.NOTE).count() == 2


# --- Every service on its own: the write, its timeline entry, the refusal paths ------------------


def consultation(actor, customer, now, **extra):
    """A consultation: no queue and no complaint specialist take it, so it waits unassigned."""
    data = {"type": "consultation", "subject": "咨询会员积分", "customer": customer.pk, **extra}
    return services.ticket_create(actor=actor, data=data, now=now)


def status_changes(ticket):
    events = ticket.events.filter(kind=TicketEvent.Kind.STATUS_CHANGED)
    return [(e.data["from"], e.data["to"]) for e in events]


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def test_tickets_are_numbered_gd_and_eight_digits_in_sequence(agent, customer):
    """Ticket numbers are GD and eight digits, one more for each ticket opened."""
    # given
    assert services.ticket_number_format(42) == "GD00000042"
    # when
    first = consultation(agent, customer, at(2026, 11, 24, 10))
    second = consultation(agent, customer, at(2026, 11, 24, 10, 1))
    # then
    n = int(first.number.removeprefix("GD"))
    assert first.number == services.ticket_number_format(n)
    assert second.number == services.ticket_number_format(n + 1)


def test_ticket_clean_returns_clean_values_and_names_every_bad_field(store):
    """Text is trimmed, tags split on either comma and deduplicated; an inactive category, an
    unknown store, a bad choice, an over-long subject and an unknown field are each named."""
    # given
    active = Category.objects.create(name="药品质量")
    retired = Category.objects.create(name="旧分类", is_active=False)
    # when
    cleaned = services.ticket_clean(
        {
            "type": "complaint",
            "subject": "  过期药品 ",
            "category": active.pk,
            "store": store.pk,
            "order_ref": " JD-1 ",
            "tags": "慢病，会员, 慢病",
        }
    )
    # then
    assert cleaned == {
        "type": "complaint",
        "subject": "过期药品",
        "category": active,
        "store": store,
        "order_ref": "JD-1",
        "tags": ["会员", "慢病"],
    }
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_clean(
            {
                "type": "bug",
                "subject": "长" * 201,
                "category": retired.pk,
                "store": 99999,
                "colour": "red",
            }
        )
    assert set(refused.value.errors) == {"type", "subject", "category", "store", "colour"}
    with pytest.raises(ValidationFailed) as missing:
        services.ticket_clean({})
    assert set(missing.value.errors) == {"type", "subject"}
    # an edit names only what it changes
    assert services.ticket_clean({"severity": "urgent"}, partial=True) == {"severity": "urgent"}


def test_ticket_update_changes_the_fields_and_records_which(agent, customer):
    """An edit saves the new values and one UPDATED entry naming the changed fields, at the
    service's `now`; the same values again record nothing."""
    # given
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    data = {"subject": "买到过期的维生素C", "order_ref": "JD-1", "tags": ["过期"]}
    # when
    services.ticket_update(actor=agent, ticket_id=ticket.pk, data=data, now=at(2026, 11, 24, 11))
    # then
    ticket.refresh_from_db()
    assert (ticket.subject, ticket.order_ref) == ("买到过期的维生素C", "JD-1")
    assert [t.name for t in ticket.tags.all()] == ["过期"]
    updated = ticket.events.get(kind=TicketEvent.Kind.UPDATED)
    assert sorted(updated.data["fields"]) == ["order_ref", "subject", "tags"]
    assert (updated.actor, updated.created_at) == (agent, at(2026, 11, 24, 11))
    # the same values again change nothing and record nothing
    services.ticket_update(actor=agent, ticket_id=ticket.pk, data=data, now=at(2026, 11, 24, 12))
    assert ticket.events.filter(kind=TicketEvent.Kind.UPDATED).count() == 1


def test_ticket_update_to_major_repicks_the_policy_counted_from_the_opening(
    agent, customer, sla_policies
):
    """A complaint opened Monday 09:00 (16 working hours) becomes major at 10:00: the major
    policy's 24 hours around the clock count from the opening, so it is due Tuesday 09:00."""
    # given
    ticket = open_complaint(agent, customer, at(2026, 11, 23, 9))
    assert ticket.sla_policy.name == "投诉"
    # when
    services.ticket_update(
        actor=agent, ticket_id=ticket.pk, data={"severity": "major"}, now=at(2026, 11, 23, 10)
    )
    # then
    ticket.refresh_from_db()
    assert ticket.sla_policy.name == "重大投诉"
    assert ticket.resolution_due_at == at(2026, 11, 24, 9)
    assert ticket.first_response_due_at == at(2026, 11, 23, 9, 30)
    assert ticket.is_impact_watched
    assert ticket.events.get(kind=TicketEvent.Kind.UPDATED).data["fields"] == ["severity"]


def test_ticket_update_refused_or_invalid_writes_nothing(agent, customer, records_officer):
    """A read-only role, one bad field or a closed ticket refuses the whole edit: nothing changes,
    no entry."""
    # given
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    # then: the records officer reads tickets but does not edit them
    with pytest.raises(Forbidden):
        services.ticket_update(actor=records_officer, ticket_id=ticket.pk, data={"subject": "改"})
    # a bad severity refuses the whole edit, the good subject too
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_update(
            actor=agent, ticket_id=ticket.pk, data={"subject": "新主题", "severity": "extreme"}
        )
    assert set(refused.value.errors) == {"severity"}
    # a closed ticket is not edited
    Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.CLOSED)
    with pytest.raises(TicketTransitionNotAllowed):
        services.ticket_update(actor=agent, ticket_id=ticket.pk, data={"subject": "新主题"})
    ticket.refresh_from_db()
    assert ticket.subject == "买到过期的维生素"
    assert not ticket.events.filter(kind=TicketEvent.Kind.UPDATED).exists()


def test_a_supervisor_assigns_a_ticket_and_the_agent_is_told(agent, customer, supervisor):
    """A supervisor's assignment moves a new ticket to assigned, records who gave it to whom with
    the note, and tells the agent."""
    # given
    ticket = consultation(supervisor, customer, at(2026, 11, 24, 10))
    assert (ticket.assignee, ticket.status) == (None, Ticket.Status.NEW)
    # when
    services.ticket_assign(
        actor=supervisor,
        ticket_id=ticket.pk,
        assignee_id=agent.pk,
        note="请今天回电",
        now=at(2026, 11, 24, 10, 5),
    )
    # then
    ticket.refresh_from_db()
    assert (ticket.assignee, ticket.status) == (agent, Ticket.Status.ASSIGNED)
    assigned = ticket.events.get(kind=TicketEvent.Kind.ASSIGNED)
    assert (assigned.data["to_id"], assigned.data["from_id"], assigned.data["note"]) == (
        agent.pk,
        None,
        "请今天回电",
    )
    assert (assigned.actor, assigned.created_at) == (supervisor, at(2026, 11, 24, 10, 5))
    assert status_changes(ticket) == [("new", "assigned")]
    assert Notification.objects.get(recipient=agent, kind="ticket_assigned").body == "请今天回电"


def test_an_agent_takes_a_ticket_but_does_not_give_it_to_a_colleague(
    agent, customer, records_officer
):
    """Agents take tickets themselves; giving one to a colleague, to someone who does not work
    tickets, or to nobody is refused without a write."""
    # given
    colleague = UserFactory(username="colleague", role="agent")
    ticket = consultation(agent, customer, at(2026, 11, 24, 10))
    # then: refused, nothing written
    with pytest.raises(Forbidden):
        services.ticket_assign(actor=agent, ticket_id=ticket.pk, assignee_id=colleague.pk)
    with pytest.raises(ValidationFailed) as not_a_worker:
        services.ticket_assign(actor=agent, ticket_id=ticket.pk, assignee_id=records_officer.pk)
    assert "assignee" in not_a_worker.value.errors
    with pytest.raises(ValidationFailed) as nobody:
        services.ticket_assign(actor=agent, ticket_id=ticket.pk)
    assert "assignee" in nobody.value.errors
    ticket.refresh_from_db()
    assert ticket.assignee is None
    assert not ticket.events.filter(kind=TicketEvent.Kind.ASSIGNED).exists()
    # when: the agent takes it
    services.ticket_assign(
        actor=agent, ticket_id=ticket.pk, assignee_id=agent.pk, now=at(2026, 11, 24, 10, 5)
    )
    # then: theirs, and nobody is notified of their own choice
    ticket.refresh_from_db()
    assert ticket.assignee == agent
    assert not Notification.objects.filter(kind="ticket_assigned").exists()


def test_moving_a_ticket_to_a_queue_hands_it_to_an_agent_on_duty_there(agent, customer, supervisor):
    """A supervisor moves a ticket to a round-robin queue and its agent on duty takes it; agents
    may not move it, an unknown queue is named."""
    # given: the ticket waits unassigned; then an after-sales queue is set up
    ticket = consultation(supervisor, customer, at(2026, 11, 24, 10))
    queue = Queue.objects.create(name="售后组", mode=Queue.Mode.ROUND_ROBIN)
    member = UserFactory(username="aftersales", role="agent")
    QueueMember.objects.create(queue=queue, user=member)
    # then: agents do not move tickets between queues; an unknown queue is named
    with pytest.raises(Forbidden):
        services.ticket_assign(actor=agent, ticket_id=ticket.pk, queue_id=queue.pk)
    with pytest.raises(ValidationFailed) as unknown:
        services.ticket_assign(actor=supervisor, ticket_id=ticket.pk, queue_id=99999)
    assert "queue" in unknown.value.errors
    # when
    services.ticket_assign(
        actor=supervisor, ticket_id=ticket.pk, queue_id=queue.pk, now=at(2026, 11, 24, 10, 5)
    )
    # then
    ticket.refresh_from_db()
    assert (ticket.queue, ticket.assignee) == (queue, member)
    assert ticket.events.get(kind=TicketEvent.Kind.ASSIGNED).data["to_id"] == member.pk


def test_starting_an_unassigned_ticket_makes_it_the_starters(agent, customer, records_officer):
    """Starting an unassigned ticket assigns it to whoever starts it and moves it new → assigned →
    in progress; a read-only role is refused."""
    # given
    ticket = consultation(agent, customer, at(2026, 11, 24, 10))
    with pytest.raises(Forbidden):
        services.ticket_start(actor=records_officer, ticket_id=ticket.pk)
    # when
    services.ticket_start(actor=agent, ticket_id=ticket.pk, now=at(2026, 11, 24, 10, 5))
    # then
    ticket.refresh_from_db()
    assert (ticket.assignee, ticket.status) == (agent, Ticket.Status.IN_PROGRESS)
    assert status_changes(ticket) == [("new", "assigned"), ("assigned", "in_progress")]
    assert ticket.events.get(kind=TicketEvent.Kind.ASSIGNED).created_at == at(2026, 11, 24, 10, 5)


def test_the_first_reply_meets_the_first_response_target(agent, customer, sla_policies):
    """Opened 10:00 with two working hours to answer; told at 11:00. The reply is public (the
    status page shows it) and a later reply keeps the first response time."""
    # given
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    # when
    event = services.ticket_reply(
        actor=agent, ticket_id=ticket.pk, body=" 已登记，两日内答复 ", now=at(2026, 11, 24, 11)
    )
    # then
    assert (event.kind, event.is_public, event.created_at) == (
        TicketEvent.Kind.REPLIED,
        True,
        at(2026, 11, 24, 11),
    )
    assert event.data == {"body": "已登记，两日内答复", "channel": "phone"}
    ticket.refresh_from_db()
    assert ticket.first_responded_at == at(2026, 11, 24, 11)
    assert (ticket.assignee, ticket.status) == (agent, Ticket.Status.IN_PROGRESS)
    assert sla.metric_state(ticket, sla.FIRST_RESPONSE, now=at(2026, 11, 24, 15)) == sla.MET
    services.ticket_reply(
        actor=agent, ticket_id=ticket.pk, body="核查中", channel="wechat", now=at(2026, 11, 24, 14)
    )
    ticket.refresh_from_db()
    assert ticket.first_responded_at == at(2026, 11, 24, 11)


def test_an_empty_reply_or_an_unknown_channel_is_refused(agent, customer, records_officer):
    """An empty reply, an unknown channel or a read-only role is refused; the first response clock
    keeps running."""
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    with pytest.raises(ValidationFailed) as empty:
        services.ticket_reply(actor=agent, ticket_id=ticket.pk, body="  ")
    assert "body" in empty.value.errors
    with pytest.raises(ValidationFailed) as channel:
        services.ticket_reply(actor=agent, ticket_id=ticket.pk, body="好的", channel="fax")
    assert "channel" in channel.value.errors
    with pytest.raises(Forbidden):
        services.ticket_reply(actor=records_officer, ticket_id=ticket.pk, body="好的")
    ticket.refresh_from_db()
    assert ticket.first_responded_at is None
    assert not ticket.events.filter(kind=TicketEvent.Kind.REPLIED).exists()


def test_resuming_moves_the_clocks_by_the_working_time_on_hold(agent, customer, sla_policies):
    """Opened Monday 09:00 (resolution due Wednesday 10:00), on hold from Monday 11:00 to
    Tuesday 11:00: 14 working hours were left, so it is due Thursday 10:00."""
    # given
    ticket = open_complaint(agent, customer, at(2026, 11, 23, 9))
    services.ticket_reply(
        actor=agent, ticket_id=ticket.pk, body="请提供小票", now=at(2026, 11, 23, 10)
    )
    services.ticket_wait_customer(
        actor=agent, ticket_id=ticket.pk, reason="等小票", now=at(2026, 11, 23, 11)
    )
    # when
    services.ticket_resume(actor=agent, ticket_id=ticket.pk, now=at(2026, 11, 24, 11))
    # then
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.IN_PROGRESS
    assert ticket.sla_paused_at is None
    assert ticket.resolution_due_at == at(2026, 11, 26, 10)
    assert status_changes(ticket)[-2:] == [
        ("in_progress", "waiting_customer"),
        ("waiting_customer", "in_progress"),
    ]
    resumed = ticket.events.filter(kind=TicketEvent.Kind.STATUS_CHANGED).last()
    assert (resumed.actor, resumed.created_at) == (agent, at(2026, 11, 24, 11))


def test_withdrawing_a_hand_off_stops_the_urging_and_returns_to_work(
    agent, customer, handler, quality_department
):
    """Withdrawing a hand-off cancels it, stops the urges and puts the ticket back in progress with
    the reason on the timeline; handlers may not withdraw it, and a second withdrawal finds none
    open."""
    # given
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    handoff = services.ticket_hand_off(
        actor=agent,
        ticket_id=ticket.pk,
        department_id=quality_department.pk,
        instructions="请核查批次",
        now=at(2026, 11, 24, 10, 5),
    )
    # then: the department's handler answers it but does not withdraw it
    with pytest.raises(Forbidden):
        services.handoff_cancel(actor=handler, ticket_id=ticket.pk, reason="不是我们的事")
    # when
    services.handoff_cancel(
        actor=agent, ticket_id=ticket.pk, reason="顾客已自行解决", now=at(2026, 11, 24, 10, 30)
    )
    # then
    handoff.refresh_from_db()
    assert (handoff.status, handoff.next_urge_at) == (TicketHandoff.Status.CANCELLED, None)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.department) == (Ticket.Status.IN_PROGRESS, None)
    cancelled = ticket.events.get(kind=TicketEvent.Kind.HANDOFF_CANCELLED)
    assert cancelled.data == {
        "handoff_id": handoff.pk,
        "department": "质量管理部",
        "reason": "顾客已自行解决",
    }
    assert (cancelled.actor, cancelled.created_at) == (agent, at(2026, 11, 24, 10, 30))
    assert status_changes(ticket)[-1] == ("waiting_department", "in_progress")
    assert services.ticket_timers_run(now=at(2026, 11, 25, 18))["urged"] == 0
    # nothing is left to withdraw
    with pytest.raises(HandoffNotOpen):
        services.handoff_cancel(actor=agent, ticket_id=ticket.pk)


def test_handoff_urge_urges_once_per_moment_and_escalates_after_the_threshold(
    agent, customer, handler, quality_department, supervisor
):
    """Handed off at 10:30 to a department urged every two working hours (escalating to the
    supervisor at the second urge): urged at 14:00 and 16:00, never twice for one moment and
    never once answered."""
    # given
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    handoff = services.ticket_hand_off(
        actor=agent,
        ticket_id=ticket.pk,
        department_id=quality_department.pk,
        instructions="请核查批次",
        now=at(2026, 11, 24, 10, 30),
    )
    assert handoff.due_at == at(2026, 11, 25, 11)  # one working day
    # when / then
    assert services.handoff_urge(handoff_id=handoff.pk, now=at(2026, 11, 24, 13, 59)) is False
    assert services.handoff_urge(handoff_id=handoff.pk, now=at(2026, 11, 24, 14)) is True
    assert services.handoff_urge(handoff_id=handoff.pk, now=at(2026, 11, 24, 14)) is False
    handoff.refresh_from_db()
    assert (handoff.urge_count, handoff.next_urge_at) == (1, at(2026, 11, 24, 16))
    urged = ticket.events.get(kind=TicketEvent.Kind.URGED)
    assert (urged.data["count"], urged.data["overdue"], urged.actor, urged.created_at) == (
        1,
        False,
        None,
        at(2026, 11, 24, 14),
    )
    assert Notification.objects.filter(recipient=handler, kind="handoff_urged").count() == 1
    assert not ticket.events.filter(kind=TicketEvent.Kind.ESCALATED).exists()
    # the second urge escalates to the supervisor
    assert services.handoff_urge(handoff_id=handoff.pk, now=at(2026, 11, 24, 16)) is True
    ticket.refresh_from_db()
    assert ticket.escalation_level == 1
    escalated = ticket.events.get(kind=TicketEvent.Kind.ESCALATED)
    assert (escalated.data["level"], escalated.data["reason"]) == (1, "handoff")
    assert Notification.objects.filter(recipient=supervisor, kind="ticket_escalated").exists()
    # once answered, it is never urged again
    services.handoff_answer(
        actor=handler, ticket_id=ticket.pk, answer="已核查", now=at(2026, 11, 24, 17)
    )
    assert services.handoff_urge(handoff_id=handoff.pk, now=at(2026, 11, 25, 18)) is False


def test_sla_check_warns_the_assignee_and_escalates_breaches(
    agent, customer, sla_policies, complaint_specialist, supervisor, manager
):
    """A major complaint opened Tuesday 10:00 answers within 30 minutes and resolves within 24
    hours around the clock. The warning goes to the assignee; the first response breach to the
    supervisor; the resolution breach of a major complaint to the manager as well."""
    # given
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10), severity="major")
    assert ticket.assignee == complaint_specialist
    check = services.ticket_sla_check
    # when / then
    assert check(ticket_id=ticket.pk, now=at(2026, 11, 24, 10, 23)) == []
    assert check(ticket_id=ticket.pk, now=at(2026, 11, 24, 10, 24)) == [
        (sla.FIRST_RESPONSE, sla.WARNING)
    ]
    assert check(ticket_id=ticket.pk, now=at(2026, 11, 24, 10, 24)) == []  # once
    warning = ticket.events.get(kind=TicketEvent.Kind.SLA_WARNING)
    assert warning.data["metric"] == sla.FIRST_RESPONSE
    assert dt.datetime.fromisoformat(warning.data["due_at"]) == at(2026, 11, 24, 10, 30)
    assert warning.created_at == at(2026, 11, 24, 10, 24)
    assert Notification.objects.filter(recipient=complaint_specialist, kind="sla_warning").exists()
    assert check(ticket_id=ticket.pk, now=at(2026, 11, 24, 10, 30)) == [
        (sla.FIRST_RESPONSE, sla.BREACHED)
    ]
    ticket.refresh_from_db()
    assert ticket.escalation_level == 1
    assert not Notification.objects.filter(recipient=manager, kind="ticket_escalated").exists()
    # the resolution breach, found the next morning, reaches the manager
    assert check(ticket_id=ticket.pk, now=at(2026, 11, 25, 10)) == [(sla.RESOLUTION, sla.BREACHED)]
    ticket.refresh_from_db()
    assert ticket.escalation_level == 2
    escalations = ticket.events.filter(kind=TicketEvent.Kind.ESCALATED)
    assert [(e.data["level"], e.data["reason"]) for e in escalations] == [
        (1, "sla"),
        (1, "sla"),
        (2, "sla"),
    ]
    assert Notification.objects.filter(recipient=manager, kind="ticket_escalated").exists()
    assert (
        Notification.objects.filter(recipient=complaint_specialist, kind="sla_breached").count()
        == 2
    )
    # an unknown ticket has nothing due
    assert check(ticket_id=99999, now=at(2026, 11, 25, 10)) == []


def test_the_assignee_gets_the_customers_number_to_call_and_the_reveal_is_audited(
    agent, customer, supervisor
):
    """The assignee (or a supervisor) gets the full number, audited as a reveal for this ticket;
    another agent is refused and nothing is revealed."""
    # given
    ticket = consultation(agent, customer, at(2026, 11, 24, 10))
    services.ticket_start(actor=agent, ticket_id=ticket.pk, now=at(2026, 11, 24, 10, 1))
    colleague = UserFactory(username="colleague", role="agent")
    reveals = AuditEntry.objects.filter(action="customer.contact_revealed")
    # when
    phone = services.ticket_call(actor=agent, ticket_id=ticket.pk, ip="127.0.0.1")
    # then
    assert phone.value == "+8613812341234"
    entry = reveals.get()
    assert entry.actor == agent
    assert entry.changes["call_for"] == {"type": "ticket", "id": ticket.pk, "number": ticket.number}
    # another agent is refused and nothing is revealed; the supervisor may call
    with pytest.raises(Forbidden):
        services.ticket_call(actor=colleague, ticket_id=ticket.pk)
    assert reveals.count() == 1
    services.ticket_call(actor=supervisor, ticket_id=ticket.pk)
    assert reveals.count() == 2


def test_a_customer_without_a_phone_cannot_be_called(agent):
    """Calling a customer with no phone number is a conflict, and no reveal is recorded."""
    from kefu.customers.tests.factories import make_customer

    walk_in = make_customer(name="李四", phone=None)
    ticket = consultation(agent, walk_in, at(2026, 11, 24, 10))
    services.ticket_start(actor=agent, ticket_id=ticket.pk, now=at(2026, 11, 24, 10, 1))
    with pytest.raises(Conflict):
        services.ticket_call(actor=agent, ticket_id=ticket.pk)
    assert not AuditEntry.objects.filter(action="customer.contact_revealed").exists()


def test_an_agent_keeps_a_file_on_the_ticket_as_an_internal_entry(agent, customer, media):
    """An agent's file is stored with its name, size and type, and an internal (not public) entry
    records it."""
    # given
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    upload = SimpleUploadedFile("小票.jpg", b"\xff\xd8\xff", content_type="image/jpeg")
    # when
    attachment = services.ticket_attach(
        actor=agent, ticket_id=ticket.pk, upload=upload, now=at(2026, 11, 24, 10, 10)
    )
    # then
    assert (attachment.name, attachment.size, attachment.content_type) == (
        "小票.jpg",
        3,
        "image/jpeg",
    )
    assert (attachment.uploaded_by, attachment.is_from_customer) == (agent, False)
    assert (media / attachment.file.name).read_bytes() == b"\xff\xd8\xff"
    added = ticket.events.get(kind=TicketEvent.Kind.ATTACHMENT_ADDED)
    assert added.data == {"attachment_id": attachment.pk, "name": "小票.jpg", "size": 3}
    assert (added.is_public, added.created_at) == (False, at(2026, 11, 24, 10, 10))


def test_a_refused_file_leaves_no_attachment_entry_or_stored_file(
    agent, customer, records_officer, media
):
    """A file of a refused type, or from a read-only role, leaves no attachment row, no entry and
    no file on disk."""
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_attach(
            actor=agent, ticket_id=ticket.pk, upload=SimpleUploadedFile("invoice.exe", b"MZ")
        )
    assert "file" in refused.value.errors
    with pytest.raises(Forbidden):
        services.ticket_attach(
            actor=records_officer,
            ticket_id=ticket.pk,
            upload=SimpleUploadedFile("photo.jpg", b"\xff\xd8\xff"),
        )
    assert not TicketAttachment.objects.exists()
    assert not ticket.events.filter(kind=TicketEvent.Kind.ATTACHMENT_ADDED).exists()
    assert not [p for p in media.rglob("*") if p.is_file()]


def test_a_file_from_the_customer_resumes_a_ticket_waiting_on_them(
    agent, customer, sla_policies, media
):
    """Like a message from them: work resumes (14 working hours left of the resolution) and a
    reply is due within four working hours; the entry shows on the status page."""
    # given
    ticket = open_complaint(agent, customer, at(2026, 11, 23, 9))
    services.ticket_reply(
        actor=agent, ticket_id=ticket.pk, body="请提供小票", now=at(2026, 11, 23, 10)
    )
    services.ticket_wait_customer(actor=agent, ticket_id=ticket.pk, now=at(2026, 11, 23, 11))
    # when
    services.ticket_attach(
        actor=None,
        ticket_id=ticket.pk,
        upload=SimpleUploadedFile("小票.jpg", b"\xff\xd8\xff"),
        from_customer=True,
        now=at(2026, 11, 24, 11),
    )
    # then
    ticket.refresh_from_db()
    assert (ticket.status, ticket.sla_paused_at) == (Ticket.Status.IN_PROGRESS, None)
    assert ticket.resolution_due_at == at(2026, 11, 26, 10)
    assert ticket.next_response_due_at == at(2026, 11, 24, 16, 30)
    assert ticket.events.get(kind=TicketEvent.Kind.ATTACHMENT_ADDED).is_public
    assert Notification.objects.filter(recipient=agent, kind="customer_message").exists()
    # a closed ticket takes no more files from the customer
    Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.CLOSED)
    with pytest.raises(TicketTransitionNotAllowed):
        services.ticket_attach(
            actor=None,
            ticket_id=ticket.pk,
            upload=SimpleUploadedFile("又一张.jpg", b"\xff\xd8\xff"),
            from_customer=True,
        )
    assert TicketAttachment.objects.count() == 1


def test_a_complaint_taken_outside_is_watched_and_the_leads_are_told(
    agent, customer, supervisor, manager
):
    """An external escalation is stored, the ticket is watched for negative impact, the timeline
    records it and supervisors and managers are told."""
    # given
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    assert not ticket.is_impact_watched
    # when
    escalation = services.ticket_escalate_external(
        actor=agent,
        ticket_id=ticket.pk,
        body=ExternalEscalation.Body.CONSUMER_ASSOCIATION,
        reported_on="2026-11-23",
        reference=" XH-2026-118 ",
        notes="顾客已向区消协投诉",
        now=at(2026, 11, 24, 11),
    )
    # then
    assert (escalation.reported_on, escalation.reference) == (dt.date(2026, 11, 23), "XH-2026-118")
    ticket.refresh_from_db()
    assert ticket.is_impact_watched
    event = ticket.events.get(kind=TicketEvent.Kind.EXTERNAL_ESCALATION)
    assert event.data == {
        "body": "consumer_association",
        "reference": "XH-2026-118",
        "notes": "顾客已向区消协投诉",
    }
    assert (event.actor, event.created_at) == (agent, at(2026, 11, 24, 11))
    for lead in (supervisor, manager):
        assert Notification.objects.filter(recipient=lead, kind="external_escalation").exists()


def test_an_external_escalation_refused_writes_nothing(agent, customer, records_officer):
    """An unknown body, a future or unreadable date, or a read-only role is refused, each field
    named, and nothing is written."""
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    escalate = services.ticket_escalate_external
    with pytest.raises(ValidationFailed) as refused:
        escalate(
            actor=agent,
            ticket_id=ticket.pk,
            body="tv",
            reported_on="2026-11-25",  # tomorrow
            now=at(2026, 11, 24, 11),
        )
    assert set(refused.value.errors) == {"body", "reported_on"}
    with pytest.raises(ValidationFailed) as not_a_date:
        escalate(actor=agent, ticket_id=ticket.pk, body="media", reported_on="昨天")
    assert set(not_a_date.value.errors) == {"reported_on"}
    with pytest.raises(Forbidden):
        escalate(actor=records_officer, ticket_id=ticket.pk, body="media", reported_on="2026-11-23")
    assert not ExternalEscalation.objects.exists()
    ticket.refresh_from_db()
    assert not ticket.is_impact_watched
    assert not ticket.events.filter(kind=TicketEvent.Kind.EXTERNAL_ESCALATION).exists()


def test_a_policy_change_while_waiting_on_the_customer_keeps_the_time_used_before(
    agent, customer, sla_policies
):
    """Opened Monday 09:00, on hold for the customer from 11:00, made major at 12:00: the major
    policy's 24 hours count from the opening, the two hours before the hold are used, so on
    resuming at 15:00 the resolution is due Tuesday 13:00."""
    # given
    ticket = open_complaint(agent, customer, at(2026, 11, 23, 9))
    services.ticket_reply(
        actor=agent, ticket_id=ticket.pk, body="请提供小票", now=at(2026, 11, 23, 10)
    )
    services.ticket_wait_customer(actor=agent, ticket_id=ticket.pk, now=at(2026, 11, 23, 11))
    # when
    services.ticket_update(
        actor=agent, ticket_id=ticket.pk, data={"severity": "major"}, now=at(2026, 11, 23, 12)
    )
    services.ticket_resume(actor=agent, ticket_id=ticket.pk, now=at(2026, 11, 23, 15))
    # then
    ticket.refresh_from_db()
    assert ticket.sla_policy.name == "重大投诉"
    assert ticket.resolution_due_at == at(2026, 11, 24, 13)


def test_opening_a_ticket_needs_add_ticket_and_a_refusal_writes_nothing(handler):
    """A department handler answers hand-offs but opens no tickets; the unknown caller does not
    become a prospect either."""
    from kefu.customers.models import Customer

    with pytest.raises(Forbidden):
        services.ticket_create(
            actor=handler,
            data={"type": "consultation", "subject": "咨询", "phone": "13900002222"},
            now=at(2026, 11, 24, 10),
        )
    assert not Ticket.objects.exists()
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    "action",
    [
        "wait_customer",
        "resume",
        "hand_off",
        "resolve",
        "record_acceptance",
        "close",
        "reopen",
        "promise_callback",
        "duty",
    ],
)
def test_who_only_reads_tickets_is_refused_every_working_action(
    agent, customer, records_officer, quality_department, action
):
    """The records officer sees tickets but works none: each action is refused before it
    writes, whatever the ticket's status."""
    # given
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    before = ticket.events.count()
    now = at(2026, 11, 24, 11)
    calls = {
        "wait_customer": lambda: services.ticket_wait_customer(
            actor=records_officer, ticket_id=ticket.pk, now=now
        ),
        "resume": lambda: services.ticket_resume(
            actor=records_officer, ticket_id=ticket.pk, now=now
        ),
        "hand_off": lambda: services.ticket_hand_off(
            actor=records_officer,
            ticket_id=ticket.pk,
            department_id=quality_department.pk,
            instructions="请核查",
            now=now,
        ),
        "resolve": lambda: services.ticket_resolve(
            actor=records_officer,
            ticket_id=ticket.pk,
            data={"resolution_type": "explanation", "resolution_summary": "已解释"},
            now=now,
        ),
        "record_acceptance": lambda: services.ticket_record_acceptance(
            actor=records_officer, ticket_id=ticket.pk, accepted=True, now=now
        ),
        "close": lambda: services.ticket_close(actor=records_officer, ticket_id=ticket.pk, now=now),
        "reopen": lambda: services.ticket_reopen(
            actor=records_officer, ticket_id=ticket.pk, reason="不满意", now=now
        ),
        "promise_callback": lambda: services.ticket_promise_callback(
            actor=records_officer, ticket_id=ticket.pk, due_at=at(2026, 11, 24, 15), now=now
        ),
        "duty": lambda: services.queue_duty_set(actor=records_officer, on_duty=False),
    }
    # when / then
    with pytest.raises(Forbidden):
        calls[action]()
    assert ticket.events.count() == before
    assert not TicketHandoff.objects.exists()
    assert not FollowUp.objects.exists()


def test_a_hand_off_with_bad_input_names_every_field_and_writes_nothing(agent, customer, db):
    """An inactive department, empty instructions and a past due time are named together; no
    hand-off is stored and the ticket stays as it was."""
    from kefu.tickets.models import Department

    # given
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    closed_department = Department.objects.create(name="旧物流部", is_active=False)
    # when
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_hand_off(
            actor=agent,
            ticket_id=ticket.pk,
            department_id=closed_department.pk,
            instructions="  ",
            due_at=at(2026, 11, 24, 9),  # already past
            now=at(2026, 11, 24, 10, 5),
        )
    # then
    assert set(refused.value.errors) == {"department", "instructions", "due_at"}
    assert not TicketHandoff.objects.exists()
    ticket.refresh_from_db()
    assert (ticket.status, ticket.department) == (Ticket.Status.NEW, None)
    assert not ticket.events.filter(kind=TicketEvent.Kind.HANDED_OFF).exists()


def test_the_departments_answer_goes_back_to_the_agent(
    agent, customer, handler, quality_department
):
    """Answered without a resolution, the ticket returns to its agent in progress, and the
    agent is told. A handler of another department may not answer, nor with an empty text."""
    from kefu.tickets.models import Department

    # given
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    handoff = services.ticket_hand_off(
        actor=agent,
        ticket_id=ticket.pk,
        department_id=quality_department.pk,
        instructions="请核查批次",
        now=at(2026, 11, 24, 10, 5),
    )
    stranger = UserFactory(username="logistics", role="department_handler")
    Department.objects.create(name="物流部").handlers.add(stranger)
    TicketHandoff.objects.create(  # so the ticket is visible to the stranger
        ticket=ticket,
        department=Department.objects.get(name="物流部"),
        instructions="旧的转派",
        due_at=at(2026, 11, 20, 10),
        status=TicketHandoff.Status.ANSWERED,
    )
    # then
    with pytest.raises(Forbidden):
        services.handoff_answer(actor=stranger, ticket_id=ticket.pk, answer="不归我们")
    with pytest.raises(ValidationFailed) as empty:
        services.handoff_answer(actor=handler, ticket_id=ticket.pk, answer=" ")
    assert "answer" in empty.value.errors
    handoff.refresh_from_db()
    assert handoff.status == TicketHandoff.Status.OPEN
    # when
    services.handoff_answer(
        actor=handler, ticket_id=ticket.pk, answer="该批次合格", now=at(2026, 11, 24, 15)
    )
    # then
    handoff.refresh_from_db()
    assert (handoff.status, handoff.answered_by, handoff.answered_at) == (
        TicketHandoff.Status.ANSWERED,
        handler,
        at(2026, 11, 24, 15),
    )
    ticket.refresh_from_db()
    assert (ticket.status, ticket.department) == (Ticket.Status.IN_PROGRESS, None)
    answered = ticket.events.get(kind=TicketEvent.Kind.HANDOFF_ANSWERED)
    assert (answered.data["answer"], answered.actor) == ("该批次合格", handler)
    assert Notification.objects.filter(recipient=agent, kind="handoff_answered").exists()


def test_a_promised_callback_is_a_follow_up_on_the_timeline_and_must_be_ahead(agent, customer):
    """A promised callback is a follow-up for the assignee with a public entry on the timeline; a
    time already past is refused without a follow-up."""
    # given
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    services.ticket_start(actor=agent, ticket_id=ticket.pk, now=at(2026, 11, 24, 10, 1))
    # then: a time already past is refused
    with pytest.raises(ValidationFailed) as past:
        services.ticket_promise_callback(
            actor=agent, ticket_id=ticket.pk, due_at=at(2026, 11, 24, 9), now=at(2026, 11, 24, 10)
        )
    assert "due_at" in past.value.errors
    assert not FollowUp.objects.exists()
    # when
    followup = services.ticket_promise_callback(
        actor=agent,
        ticket_id=ticket.pk,
        due_at="2026-11-24T15:00:00+08:00",
        note=" 告知核查结果 ",
        now=at(2026, 11, 24, 10, 5),
    )
    # then
    assert (followup.purpose, followup.due_at, followup.assignee, followup.ticket_id) == (
        FollowUp.Purpose.PROMISED_CALLBACK,
        at(2026, 11, 24, 15),
        agent,
        ticket.pk,
    )
    promised = ticket.events.get(kind=TicketEvent.Kind.CALLBACK_PROMISED)
    assert promised.is_public
    assert (promised.data["followup_id"], promised.data["note"]) == (followup.pk, "告知核查结果")
    assert promised.created_at == at(2026, 11, 24, 10, 5)


def test_a_customer_message_must_say_something_and_the_ticket_must_be_open(agent, customer):
    """An empty or over-long message, or one on a closed ticket, is refused and leaves no entry."""
    ticket = open_complaint(agent, customer, at(2026, 11, 24, 10))
    with pytest.raises(ValidationFailed) as empty:
        services.ticket_customer_message(ticket_id=ticket.pk, body="  ")
    assert "body" in empty.value.errors
    with pytest.raises(ValidationFailed) as too_long:
        services.ticket_customer_message(ticket_id=ticket.pk, body="长" * 5001)
    assert "body" in too_long.value.errors
    Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.CLOSED)
    with pytest.raises(TicketTransitionNotAllowed):
        services.ticket_customer_message(ticket_id=ticket.pk, body="还有问题")
    assert not ticket.events.filter(kind=TicketEvent.Kind.CUSTOMER_MESSAGE).exists()
