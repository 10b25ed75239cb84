"""`kefu demo` tickets: the pharmacy's ticket configuration and tickets worked through the
ticket workflow, reproducible from the seed."""

from collections import Counter
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.db import transaction

from kefu.accounts.models import User
from kefu.accounts.roles import Role
from kefu.businesstime.selectors import work_calendar_get
from kefu.customers.models import Customer
from kefu.demo import tickets as demo_tickets
from kefu.followups.models import FollowUp
from kefu.notifications.models import Notification
from kefu.tickets.models import (
    Category,
    Department,
    ExternalEscalation,
    Queue,
    QueueMember,
    RootCause,
    SlaPolicy,
    Ticket,
    TicketConfig,
    TicketEvent,
    TicketHandoff,
)
from kefu.tickets.tests.fixtures import at

pytestmark = pytest.mark.django_db

# A Tuesday afternoon: the outcome of a load up to a fixed moment does not depend on the day.
NOW = at(2026, 11, 24, 16, 20)


def demo(**options) -> str:
    out = StringIO()
    call_command("demo", stdout=out, **options)
    return out.getvalue()


def configuration_counts() -> dict[str, int]:
    return {
        "categories": Category.objects.count(),
        "root_causes": RootCause.objects.count(),
        "departments": Department.objects.count(),
        "handlers": User.objects.filter(role=Role.DEPARTMENT_HANDLER).count(),
        "queues": Queue.objects.count(),
        "queue_members": QueueMember.objects.count(),
        "sla_policies": SlaPolicy.objects.count(),
        "ticket_config": TicketConfig.objects.count(),
    }


@pytest.fixture
def department_with_customers():
    """The demo department and 300 customers, without tickets."""
    demo(customers=300, tickets=0)


@pytest.fixture(scope="module")
def loaded(django_db_setup, django_db_blocker):
    """90 tickets of the demo worked up to NOW, loaded once for the tests below that read them
    (about ten seconds) and rolled back after the last of them. Tests that load data of their
    own come first in this file, before this fixture's transaction is open."""
    with django_db_blocker.unblock(), transaction.atomic():
        demo(customers=300, tickets=0)
        yield demo_tickets.tickets_load(seed=1, count=90, now=NOW)
        transaction.set_rollback(True)


def test_demo_command_loads_tickets_with_their_configuration():
    """By default one ticket per ten customers; the handlers of each department log in with
    the demo password."""
    out = demo(customers=200, seed=2)

    assert Ticket.objects.count() == 20
    assert "20 tickets" in out
    assert "quality" in out
    for department in Department.objects.prefetch_related("handlers"):
        handlers = list(department.handlers.all())
        assert handlers, department.name
        assert all(h.role == Role.DEPARTMENT_HANDLER for h in handlers)
    assert authenticate(username="quality", password="kefu-demo") is not None
    assert User.objects.values("password").distinct().count() == 1


def test_tickets_zero_loads_no_ticket_configuration():
    demo(customers=20, tickets=0)

    assert not Ticket.objects.exists()
    assert not Queue.objects.exists()
    assert not User.objects.filter(role=Role.DEPARTMENT_HANDLER).exists()


def test_configuration_is_created_once(department_with_customers):
    """Loading again (configuration, then more tickets) adds no category, queue or policy twice."""
    demo_tickets.config_create()
    first = configuration_counts()

    demo_tickets.config_create()
    demo_tickets.tickets_load(seed=3, count=5, now=NOW)

    assert configuration_counts() == first
    assert first["handlers"] == len(demo_tickets.DEPARTMENTS)
    assert first["ticket_config"] == 1
    assert first["sla_policies"] == len(demo_tickets.SLA_POLICIES)
    paths = {c.path for c in Category.objects.select_related("parent__parent")}
    assert "药品质量 › 疑似假药" in paths
    assert "医保 › 医保结算异常" in paths
    assert not any("物业" in p for p in paths)  # a second example, loaded on request
    complaints = Queue.objects.get(name="投诉组")
    assert complaints.ticket_types == ["complaint"]
    assert [m.user.username for m in complaints.memberships.select_related("user")] == [
        "complaints"
    ]
    service = Queue.objects.get(name="客服组")
    assert service.max_open_per_agent == 20
    assert service.memberships.count() == 10
    major = SlaPolicy.objects.get(ticket_type="complaint", severity="major")
    assert (major.first_response_minutes, major.business_hours) == (30, False)


def test_same_seed_gives_the_same_tickets(department_with_customers):
    """The plan (customers, subjects, steps and their moments) comes from the seed alone."""
    config = demo_tickets.config_create()
    customers = list(Customer.objects.order_by("number").values_list("pk", "store_id"))
    inputs = {
        "count": 40,
        "now": NOW,
        "calendar": work_calendar_get(),
        "customers": customers,
        "stores": {1: "人民路店", 2: "解放路店"},
        "store_managers": {},
        "config": config,
    }

    def story(plans):
        return [
            (p.customer_id, p.data["subject"], [(s.action, s.at) for s in p.steps]) for p in plans
        ]

    first = story(demo_tickets.plan_tickets(seed=5, **inputs))
    assert story(demo_tickets.plan_tickets(seed=5, **inputs)) == first
    assert story(demo_tickets.plan_tickets(seed=6, **inputs)) != first
    assert all(at_ <= NOW for _c, _s, steps in first for _a, at_ in steps)


def test_tickets_have_a_mix_of_types_and_statuses(loaded):
    """Mostly consultations and complaints, in every stage of the workflow."""
    assert Ticket.objects.count() == 90
    types = Counter(Ticket.objects.values_list("type", flat=True))
    assert types["consultation"] + types["complaint"] > 45
    assert set(types) == set(Ticket.Type.values)
    statuses = Counter(Ticket.objects.values_list("status", flat=True))
    assert statuses["closed"] > 40
    assert len(statuses) >= 5
    assert statuses["waiting_department"] >= 1
    assert statuses["waiting_customer"] >= 1
    assert not Ticket.objects.filter(created_at__gt=NOW).exists()
    assert Ticket.objects.order_by("created_at").first().created_at > at(2026, 9, 24)
    # Every ticket has an SLA policy and its timeline starts with its opening.
    assert not Ticket.objects.filter(sla_policy=None).exists()
    created = TicketEvent.objects.filter(kind=TicketEvent.Kind.CREATED)
    assert created.values("ticket").distinct().count() == 90


def test_closed_complaints_have_resolution_and_acceptance(loaded):
    closed = Ticket.objects.filter(type="complaint", status="closed")
    assert closed.count() > 10
    for ticket in closed:
        assert ticket.resolution_type
        assert ticket.resolution_summary
        assert ticket.resolution_cost is not None
        assert ticket.root_cause_id is not None
        assert ticket.acceptance == Ticket.Acceptance.ACCEPTED
        assert ticket.resolved_at <= ticket.closed_at <= NOW
    # Closing a complaint schedules its aftercare.
    assert FollowUp.objects.filter(purpose=FollowUp.Purpose.COMPLAINT_AFTERCARE).count() >= (
        closed.count()
    )


def test_timers_urge_departments_and_fire_sla_events(loaded):
    """The timer pass ran during the load: hand-offs were urged and escalated, SLA warnings and
    breaches were recorded, and the people concerned were notified."""
    kinds = Counter(TicketEvent.objects.values_list("kind", flat=True))
    assert kinds[TicketEvent.Kind.HANDED_OFF] > 5
    assert kinds[TicketEvent.Kind.HANDOFF_ANSWERED] > 5
    assert kinds[TicketEvent.Kind.URGED] >= 1
    assert kinds[TicketEvent.Kind.ESCALATED] >= 1
    assert kinds[TicketEvent.Kind.SLA_BREACHED] + kinds[TicketEvent.Kind.SLA_WARNING] >= 1
    assert TicketHandoff.objects.filter(status=TicketHandoff.Status.OPEN).exists()
    assert Notification.objects.filter(recipient__username="quality").exists()


def test_major_complaint_taken_to_the_consumer_association(loaded):
    escalation = ExternalEscalation.objects.select_related("ticket").get()
    assert escalation.body == ExternalEscalation.Body.CONSUMER_ASSOCIATION
    assert escalation.ticket.severity == Ticket.Severity.MAJOR
    assert escalation.ticket.is_impact_watched
    assert Ticket.objects.filter(severity="major").count() >= 2


def test_rows_the_services_stamp_are_dated_when_their_step_happened(loaded):
    """Notifications, customer events and hand-offs carry the step's moment, not the load's;
    what staff would have read by now is read."""
    assert not Notification.objects.filter(created_at__gt=NOW).exists()
    assert not TicketHandoff.objects.filter(created_at__gt=NOW).exists()
    assert not Ticket.objects.filter(updated_at__gt=NOW).exists()
    assert Notification.objects.filter(created_at__lt=at(2026, 11, 1)).exists()
    unread = Notification.objects.filter(read_at=None)
    assert unread.exists()
    assert unread.count() < Notification.objects.count() / 2
