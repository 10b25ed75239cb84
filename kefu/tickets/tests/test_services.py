"""The ticket workflow against the database, on a frozen clock (every service takes `now`)."""

import pytest

from kefu.core.exceptions import Forbidden, ValidationFailed
from kefu.customers.models import CustomerEvent
from kefu.followups.models import FollowUp
from kefu.notifications.models import Notification
from kefu.tickets import services, sla
from kefu.tickets.exceptions import TicketReopenWindowPassed, TicketTransitionNotAllowed
from kefu.tickets.models import Ticket, TicketEvent
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
