"""Appointment reads: who sees which (store managers their own store's) and the funnel from
consultation to order over a date range, in total and per store."""

import datetime as dt

import pytest

from kefu.accounts.tests.factories import UserFactory
from kefu.appointments import services
from kefu.appointments.models import Appointment, OpeningHours, StoreSchedule
from kefu.appointments.selectors import (
    appointment_funnel,
    appointment_funnel_by_store,
    appointment_list_visible_to,
    booking_origin,
)
from kefu.conversations import services as conversation_services
from kefu.conversations.adapters import Inbound, Sender
from kefu.conversations.models import Conversation
from kefu.core.exceptions import Forbidden, NotFound
from kefu.customers.tests.factories import make_customer
from kefu.tickets.tests.fixtures import at

pytestmark = pytest.mark.django_db

MONDAY_10 = at(2026, 11, 30, 10)


@pytest.fixture
def stores(store, other_store):
    for s in (store, other_store):
        StoreSchedule.objects.create(store=s, slot_minutes=60, capacity=5)
        for weekday in range(7):
            OpeningHours.objects.create(
                store=s, weekday=weekday, opens_at=dt.time(9), closes_at=dt.time(18)
            )
    return store, other_store


def book(customer, store, when, *, booked_at=MONDAY_10) -> Appointment:
    appointment = services.appointment_book(
        actor=None,
        data={"customer": customer.pk, "store": store.pk, "starts_at": when},
        now=booked_at,
    )
    Appointment.objects.filter(pk=appointment.pk).update(created_at=booked_at)
    return appointment


def visit(appointment, **outcome) -> None:
    services.appointment_record_visit(
        actor=None, appointment_id=appointment.pk, arrived=True, now=MONDAY_10, **outcome
    )


def consult(web_chat, customer_name: str, key: str, when: dt.datetime, store=None):
    conversation = conversation_services.message_receive(
        channel=web_chat,
        inbound=Inbound(sender=Sender(key=key, name=customer_name), body="咨询"),
        now=when,
    ).conversation
    Conversation.objects.filter(pk=conversation.pk).update(created_at=when)
    if store is not None:
        conversation.customer.store = store
        conversation.customer.save(update_fields=["store"])
    return conversation


def test_funnel_counts_each_step_with_rates(stores, web_chat):
    """Four consultations, three bookings, two visits, one with an order: 75%, 67%, 50%."""
    store, other = stores
    for index in range(4):
        consult(web_chat, f"顾客{index}", f"v:{index}", MONDAY_10, store=store)
    consult(web_chat, "上个月", "v:old", at(2026, 10, 15, 10), store=store)  # out of range
    tuesday = at(2026, 12, 1, 10)
    first, second, _third = (book(make_customer(name=n), store, tuesday) for n in "甲乙丙")
    visit(first, order_no="SO-1")
    visit(second, note="只是看看")
    book(make_customer(name="外店"), other, tuesday)

    funnel = appointment_funnel(dt.date(2026, 11, 1), dt.date(2026, 11, 30), store=store)

    assert (funnel.conversations, funnel.appointments, funnel.visits, funnel.orders) == (
        4,
        3,
        2,
        1,
    )
    assert funnel.appointment_rate == 0.75
    assert funnel.visit_rate == 0.6667
    assert funnel.order_rate == 0.5
    assert funnel.overall_rate == 0.25


def test_funnel_of_every_store_and_per_store(stores, web_chat):
    store, other = stores
    consult(web_chat, "甲", "v:1", MONDAY_10, store=store)
    consult(web_chat, "乙", "v:2", MONDAY_10)  # a customer of no store
    tuesday = at(2026, 12, 1, 10)
    visit(book(make_customer(name="丙"), other, tuesday), purchase_amount="99.50")
    book(make_customer(name="丁"), store, tuesday)
    cancelled = book(make_customer(name="戊"), store, tuesday)
    services.appointment_cancel(actor=None, appointment_id=cancelled.pk)

    everything = appointment_funnel(dt.date(2026, 11, 30), dt.date(2026, 11, 30))
    per_store = appointment_funnel_by_store(
        dt.date(2026, 11, 30), dt.date(2026, 11, 30), stores=type(store).objects.order_by("code")
    )

    assert (everything.conversations, everything.appointments, everything.orders) == (2, 3, 1)
    assert [(f.store, f.conversations, f.appointments, f.visits, f.orders) for f in per_store] == [
        (store, 1, 2, 0, 0),
        (other, 0, 1, 1, 1),
    ]
    assert per_store[0].visit_rate == 0.0
    assert per_store[1].appointment_rate is None  # no consultation to divide by


def test_funnel_days_are_local_days(stores, web_chat):
    """A booking at 23:30 Shanghai time belongs to that day, not to the next (UTC) one."""
    store, _other = stores
    late = at(2026, 11, 30, 23, 30)
    book(make_customer(name="夜猫子"), store, at(2026, 12, 2, 10), booked_at=late)
    assert appointment_funnel(dt.date(2026, 11, 30), dt.date(2026, 11, 30)).appointments == 1
    assert appointment_funnel(dt.date(2026, 12, 1), dt.date(2026, 12, 1)).appointments == 0


def test_funnel_query_count(stores, django_assert_num_queries):
    store, _other = stores
    with django_assert_num_queries(2):
        appointment_funnel(dt.date(2026, 11, 1), dt.date(2026, 11, 30), store=store)
    with django_assert_num_queries(3):
        appointment_funnel_by_store(
            dt.date(2026, 11, 1), dt.date(2026, 11, 30), type(store).objects.all()
        )


def test_visibility_matrix(stores, agent, store_manager, records_officer, manager):
    store, other = stores
    ours = book(make_customer(name="甲"), store, at(2026, 12, 1, 10))
    theirs = book(make_customer(name="乙"), other, at(2026, 12, 1, 10))
    assert set(appointment_list_visible_to(user=agent)) == {ours, theirs}
    assert set(appointment_list_visible_to(user=manager)) == {ours, theirs}
    assert set(appointment_list_visible_to(user=store_manager)) == {ours}
    assert not appointment_list_visible_to(user=UserFactory(role="store_manager")).exists()
    with pytest.raises(Forbidden):
        appointment_list_visible_to(user=records_officer)


def test_booking_origin_checks_visibility(store_manager, other_store, store, agent):
    """A store manager may not book another store's customer: not found."""
    ours = make_customer(name="本店", store=store)
    theirs = make_customer(name="外店", store=other_store)
    assert booking_origin(user=store_manager, customer_id=ours.pk).customer == ours
    with pytest.raises(NotFound):
        booking_origin(user=store_manager, customer_id=theirs.pk)
    origin = booking_origin(user=agent, customer_id=theirs.pk, source="phone")
    assert (origin.source, origin.store) == ("phone", other_store)
    assert booking_origin(user=agent).customer is None
