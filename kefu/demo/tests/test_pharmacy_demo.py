"""The demo is one pharmacy chain: its ticket categories, what customers come to the stores for,
and a funnel with visits. The property-management categories stay a second example."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from kefu.appointments.models import Appointment
from kefu.appointments.selectors import appointment_funnel
from kefu.demo import tickets as demo_tickets
from kefu.demo import visits as demo_visits
from kefu.tickets.models import Category, Ticket

pytestmark = pytest.mark.django_db


def _paths(tree, prefix=""):
    for node in tree:
        name, children = (node, []) if isinstance(node, str) else node
        path = f"{prefix} › {name}" if prefix else name
        yield path
        yield from _paths(children, path)


def test_the_ticket_categories_are_a_pharmacy_s():
    paths = set(_paths(demo_tickets.CATEGORY_TREE))
    roots = {name for name, _children in demo_tickets.CATEGORY_TREE}
    assert {"药品质量", "配送", "医保", "会员积分", "门店服务"} <= roots
    assert not any("物业" in p for p in paths)
    # every kind of call of the demo files its ticket under one of them
    for matter in demo_tickets.MATTERS + demo_tickets.MAJOR_MATTERS:
        assert matter.category is None or matter.category in paths, matter.category


@pytest.fixture(scope="module")
def loaded(django_db_setup, django_db_blocker):
    """The demo department with its activity, loaded once for the tests that read it."""
    from django.db import transaction

    with django_db_blocker.unblock(), transaction.atomic():
        out = StringIO()
        call_command("demo", customers=2000, tickets=30, seed=4, stdout=out)
        yield out.getvalue()
        transaction.set_rollback(True)


def test_the_demo_files_its_tickets_under_pharmacy_categories(loaded):
    assert Ticket.objects.exclude(category=None).exists()
    assert not Category.objects.filter(name__contains="物业").exists()
    assert not Ticket.objects.filter(category__parent__name__contains="物业").exists()


def test_store_visits_are_what_a_pharmacy_s_customers_come_for(loaded):
    purposes = set(Appointment.objects.values_list("purpose", flat=True))
    known = {k.purpose for k in demo_visits.VISIT_KINDS}
    assert purposes <= known, purposes - known
    assert not any("验光" in p or "配镜" in p for p in purposes)
    # a chronic-disease check is for customers with a chronic disease
    checks = Appointment.objects.filter(purpose__startswith="慢病复查").prefetch_related(
        "customer__tags"
    )
    assert checks.exists()
    for appointment in checks:
        assert {t.name for t in appointment.customer.tags.all()} & demo_visits.CHRONIC


def test_the_funnel_of_the_last_30_days_shows_visits_and_orders(loaded):
    """Consultation → appointment → visit → order, as the funnel page shows it by default."""
    today = timezone.localdate()
    funnel = appointment_funnel(today - dt.timedelta(days=29), today)
    assert funnel.conversations > 0
    assert funnel.appointments > funnel.visits > funnel.orders > 0
    assert 0.5 < funnel.visit_rate < 1
    booked_from_chats = Appointment.objects.filter(
        source=Appointment.Source.CONVERSATION, conversation__isnull=False
    )
    assert booked_from_chats.exists()
    assert Appointment.objects.filter(source=Appointment.Source.PHONE).exists()
    for appointment in booked_from_chats:
        assert appointment.created_at >= appointment.conversation.created_at
    # visits are recorded after their time, bookings made before it; some are still ahead
    past = Appointment.objects.exclude(status=Appointment.Status.BOOKED)
    assert all(a.created_at < a.starts_at for a in past)
    assert all(a.visited_at >= a.starts_at for a in past.exclude(visited_at=None))
    assert Appointment.objects.filter(
        status=Appointment.Status.BOOKED, starts_at__gt=timezone.now()
    ).exists()
    assert not Appointment.objects.filter(
        status=Appointment.Status.BOOKED, starts_at__lt=timezone.now()
    ).exists()
    assert "with a purchase" in loaded


def test_the_property_categories_load_as_a_second_example(loaded):
    out = StringIO()
    call_command("demo", categories="property", stdout=out)
    paths = {c.path for c in Category.objects.select_related("parent__parent")}
    assert "物业服务（示例） › 维修 › 电梯" in paths
    assert "物业服务（示例） › 收费 › 物业费争议" in paths
    count = Category.objects.count()
    call_command("demo", categories="property", stdout=StringIO())
    assert Category.objects.count() == count  # loading again adds nothing
    assert "property" in out.getvalue()
