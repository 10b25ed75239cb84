"""Store appointments: slots from opening hours, a full slot refusing, the visit and its
outcome, the reminder the day before."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection

from kefu.accounts.tests.factories import UserFactory
from kefu.appointments import services
from kefu.appointments.models import Appointment, OpeningHours, StoreSchedule
from kefu.campaigns.models import OutboxMessage
from kefu.core.exceptions import Conflict, ValidationFailed
from kefu.customers.models import Customer, CustomerEvent
from kefu.customers.tests.factories import make_customer
from kefu.notifications.models import Notification
from kefu.tickets.tests.fixtures import at

MONDAY_10 = at(2026, 11, 30, 10)
TUESDAY_15 = at(2026, 12, 1, 15)


@pytest.fixture
def open_store(store):
    """Open every day 09:00–12:00 and 14:00–18:00, hour slots, two customers each."""
    StoreSchedule.objects.create(store=store, slot_minutes=60, capacity=2)
    for weekday in range(7):
        OpeningHours.objects.create(
            store=store, weekday=weekday, opens_at=dt.time(9), closes_at=dt.time(12)
        )
        OpeningHours.objects.create(
            store=store, weekday=weekday, opens_at=dt.time(14), closes_at=dt.time(18)
        )
    return store


def _book(actor, customer, store, when=TUESDAY_15, **extra):
    return services.appointment_book(
        actor=actor,
        data={"customer": customer.pk, "store": store.pk, "starts_at": when, **extra},
        now=MONDAY_10,
    )


@pytest.mark.django_db
def test_slots_follow_the_opening_hours(open_store):
    starts = services.slot_starts(open_store, dt.date(2026, 12, 1))
    assert [s.hour for s in starts] == [9, 10, 11, 14, 15, 16, 17]


@pytest.mark.django_db
def test_booking_tells_the_store_manager_and_a_full_slot_refuses(agent, open_store, store_manager):
    # given
    first, second, third = (make_customer(name=n) for n in ("甲", "乙", "丙"))
    # when
    appointment = _book(agent, first, open_store, purpose="验光配镜")
    _book(agent, second, open_store)
    # then
    assert appointment.status == Appointment.Status.BOOKED
    assert (
        Notification.objects.filter(recipient=store_manager, kind="appointment_booked").count() == 2
    )
    assert CustomerEvent.objects.filter(customer=first, kind="appointment_booked").exists()
    with pytest.raises(Conflict) as exc:
        _book(agent, third, open_store)
    assert exc.value.code == "slot_full"
    assert services.slots_free(open_store, dt.date(2026, 12, 1), now=MONDAY_10)[4] == (
        TUESDAY_15,
        0,
    )
    # a cancellation frees the place
    services.appointment_cancel(actor=agent, appointment_id=appointment.pk)
    _book(agent, third, open_store)


@pytest.mark.django_db
def test_bad_bookings_name_the_field(agent, open_store):
    customer = make_customer()
    with pytest.raises(ValidationFailed) as exc:
        _book(agent, customer, open_store, when=at(2026, 12, 1, 12, 30))
    assert set(exc.value.errors) == {"starts_at"}
    with pytest.raises(ValidationFailed) as exc:
        _book(agent, customer, open_store, when=at(2026, 11, 30, 9))
    assert "starts_at" in exc.value.errors
    with pytest.raises(ValidationFailed) as exc:
        services.appointment_book(actor=agent, data={"starts_at": "x"}, now=MONDAY_10)
    assert set(exc.value.errors) == {"customer", "store", "starts_at"}


@pytest.mark.django_db
def test_visit_with_purchase_counts_for_the_funnel_and_the_purchase_rhythm(
    agent, open_store, store_manager
):
    customer = make_customer()
    appointment = _book(agent, customer, open_store)
    services.appointment_record_visit(
        actor=store_manager,
        appointment_id=appointment.pk,
        arrived=True,
        purchase_amount="268.50",
        order_no="SO-1001",
        now=TUESDAY_15,
    )
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.ARRIVED
    assert appointment.purchase_amount == Decimal("268.50")
    customer.refresh_from_db()
    assert customer.last_purchase_on == dt.date(2026, 12, 1)
    with pytest.raises(Conflict):
        services.appointment_record_visit(
            actor=store_manager, appointment_id=appointment.pk, arrived=False
        )


@pytest.mark.django_db
def test_no_show_has_no_purchase(agent, open_store, store_manager):
    appointment = _book(agent, make_customer(), open_store)
    with pytest.raises(ValidationFailed) as exc:
        services.appointment_record_visit(
            actor=store_manager, appointment_id=appointment.pk, arrived=False, purchase_amount="10"
        )
    assert "purchase_amount" in exc.value.errors
    services.appointment_record_visit(
        actor=store_manager, appointment_id=appointment.pk, arrived=False, now=TUESDAY_15
    )


@pytest.mark.django_db
def test_reminder_sent_once_the_day_before(agent, open_store):
    customer = make_customer(name="王女士", phone="13812345678")
    appointment = _book(agent, customer, open_store)
    # not yet on Monday morning; due Monday 10:00 (the day before), sent once
    assert services.appointment_reminders_run(now=at(2026, 11, 30, 9)) == 0
    assert services.appointment_reminders_run(now=at(2026, 11, 30, 10, 5)) == 1
    assert services.appointment_reminders_run(now=at(2026, 11, 30, 11)) == 0
    message = OutboxMessage.objects.get()
    assert message.to == "+8613812345678"
    assert "王女士" in message.body
    appointment.refresh_from_db()
    assert appointment.reminder_sent_at is not None


@pytest.mark.django_db(transaction=True)
def test_concurrent_bookings_never_overfill_a_slot(open_store):
    """Six agents book six customers into one two-place slot at the same moment."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks under real concurrency are a PostgreSQL matter (SQLite serializes)")
    agents = [UserFactory(username=f"a{i}", role="agent") for i in range(6)]
    customers = [make_customer(name=f"客户{i}") for i in range(6)]
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def book(index: int) -> None:
        try:
            barrier.wait()
            _book(agents[index], customers[index], open_store)
            outcomes.append("booked")
        except Conflict as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=book, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["booked"] * 2 + ["slot_full"] * 4
    assert Appointment.objects.filter(starts_at=TUESDAY_15).count() == 2
    assert Customer.objects.count() == 6
