"""Appointment pages: booking from a profile, a consultation or a ticket (with the free slots
refreshed by HTMX), a store's day (store managers their own store only) with the visit and the
cancellation, and the funnel page. Permission matrix, errors naming fields, constant queries."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from kefu.accounts.tests.factories import UserFactory
from kefu.appointments import services
from kefu.appointments.models import Appointment, OpeningHours, StoreSchedule
from kefu.conversations import services as conversation_services
from kefu.conversations.adapters import Inbound, Sender
from kefu.customers.tests.factories import make_customer
from kefu.tickets import services as ticket_services

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
BOOK = reverse("appointments:appointment_book")
DAY = reverse("appointments:appointment_list")
FUNNEL = reverse("appointments:appointment_funnel")


def client_for(user) -> Client:
    client = Client(headers={"accept-language": "en"})
    if user is not None:
        client.force_login(user)
    return client


def open_every_day(store, capacity: int = 2) -> None:
    """Open every day 09:00–12:00 and 14:00–18:00, hour slots."""
    StoreSchedule.objects.create(store=store, slot_minutes=60, capacity=capacity)
    for weekday in range(7):
        OpeningHours.objects.create(
            store=store, weekday=weekday, opens_at=dt.time(9), closes_at=dt.time(12)
        )
        OpeningHours.objects.create(
            store=store, weekday=weekday, opens_at=dt.time(14), closes_at=dt.time(18)
        )


def tomorrow() -> dt.date:
    return timezone.localdate() + dt.timedelta(days=1)


def at_tomorrow(hour: int) -> dt.datetime:
    return dt.datetime.combine(tomorrow(), dt.time(hour), tzinfo=timezone.get_current_timezone())


@pytest.fixture
def open_store(store):
    open_every_day(store)
    return store


@pytest.fixture
def open_other_store(other_store):
    open_every_day(other_store)
    return other_store


def book(actor, customer, store, hour=15, **extra) -> Appointment:
    return services.appointment_book(
        actor=actor,
        data={"customer": customer.pk, "store": store.pk, "starts_at": at_tomorrow(hour), **extra},
    )


def form_data(customer, store, hour=15, **extra) -> dict:
    return {
        "customer": customer.pk,
        "store": store.pk,
        "day": tomorrow().isoformat(),
        "starts_at": at_tomorrow(hour).isoformat(),
        "purpose": "验光配镜",
        **extra,
    }


def day_url(store, day=None) -> str:
    return f"{DAY}?store={store.pk}&day={(day or tomorrow()).isoformat()}"


# --- Booking ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("anonymous", 302),
        ("agent", 200),
        ("store_manager", 200),
        ("manager", 200),
        ("records_officer", 403),
        ("handler", 403),
        ("administrator", 403),
    ],
)
def test_book_page_permission_matrix(request, open_store, role, status):
    user = None if role == "anonymous" else request.getfixturevalue(role)
    response = client_for(user).get(BOOK)
    assert response.status_code == status


def test_book_page_from_the_profile_shows_the_customer_and_free_slots(agent, open_store):
    """The customer is prefilled; the store is the customer's, the slots show places left."""
    # given
    customer = make_customer(name="李四", store=open_store)
    book(agent, make_customer(name="甲"), open_store, hour=10)
    # when
    response = client_for(agent).get(BOOK, {"customer": customer.pk, "day": tomorrow()})
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert "李四" in html.split('data-testid="customer-chosen"')[1].split("</strong>")[0]
    assert f'value="{at_tomorrow(9).isoformat()}"' in html
    assert "2 places left" in html
    assert "1 place left" in html  # 10:00, one booked


def test_slot_picker_refreshes_as_a_fragment(agent, open_store, customer):
    """HTMX GET when the store or the day changes: only the slot picker comes back."""
    response = client_for(agent).get(
        BOOK,
        {"customer": customer.pk, "store": open_store.pk, "day": tomorrow().isoformat()},
        headers=HX,
    )
    html = response.content.decode().strip()
    assert response.status_code == 200
    assert html.startswith('<fieldset id="slot-picker"')
    assert "<form" not in html
    assert html.count('name="starts_at"') == 7


def test_booking_from_the_profile(agent, open_store, customer):
    # when
    response = client_for(agent).post(BOOK, form_data(customer, open_store))
    # then
    appointment = Appointment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == day_url(open_store)
    assert appointment.customer == customer
    assert appointment.starts_at == at_tomorrow(15)
    assert appointment.source == Appointment.Source.PROFILE
    assert appointment.purpose == "验光配镜"
    assert appointment.booked_by == agent


def test_booking_goes_back_to_next_and_htmx_redirects(agent, open_store, customer):
    response = client_for(agent).post(
        BOOK, form_data(customer, open_store, next="/followups/", source="phone"), headers=HX
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/followups/"
    assert Appointment.objects.get().source == Appointment.Source.PHONE


def test_booking_refuses_an_outside_next(agent, open_store, customer):
    response = client_for(agent).post(
        BOOK, form_data(customer, open_store, next="https://evil.example/")
    )
    assert response["Location"] == day_url(open_store)


def test_booking_from_a_conversation_takes_its_customer(agent, open_store, web_chat):
    """?conversation= prefills the consultation's customer; the booking records its source."""
    # given a waiting consultation, which every agent may see
    conversation = conversation_services.message_receive(
        channel=web_chat,
        inbound=Inbound(sender=Sender(key="visitor:1", name="王女士"), body="想预约验光"),
    ).conversation
    client = client_for(agent)
    # when
    page = client.get(BOOK, {"conversation": conversation.pk})
    response = client.post(
        BOOK, {**form_data(conversation.customer, open_store), "conversation": conversation.pk}
    )
    # then
    assert "王女士" in page.content.decode()
    assert response.status_code == 302
    appointment = Appointment.objects.get()
    assert appointment.source == Appointment.Source.CONVERSATION
    assert appointment.conversation == conversation
    assert appointment.customer == conversation.customer


def test_a_conversation_the_agent_may_not_see_is_not_found(agent, online_agent, web_chat):
    """Another agent's consultation: not found, also when posted."""
    conversation = conversation_services.message_receive(
        channel=web_chat,
        inbound=Inbound(sender=Sender(key="visitor:2", name="赵先生"), body="在吗"),
    ).conversation
    assert conversation.assignee == online_agent
    assert client_for(agent).get(BOOK, {"conversation": conversation.pk}).status_code == 404


def test_booking_from_a_ticket_takes_its_customer(agent, open_store, customer):
    ticket = ticket_services.ticket_create(
        actor=agent,
        data={
            "type": "complaint",
            "channel": "phone",
            "subject": "眼镜有问题，想到店处理",
            "description": "顾客希望到店重新验光。",
            "customer": customer.pk,
            "store": open_store.pk,
        },
    )
    client = client_for(agent)
    page = client.get(BOOK, {"ticket": ticket.pk})
    assert f'<option value="{open_store.pk}" selected>' in page.content.decode()
    # the posted customer is ignored: the ticket's is booked
    other = make_customer(name="别人")
    client.post(BOOK, {**form_data(other, open_store), "ticket": ticket.pk})
    appointment = Appointment.objects.get()
    assert appointment.customer == customer
    assert appointment.source == Appointment.Source.TICKET
    assert appointment.ticket == ticket


def test_store_manager_cannot_book_another_stores_customer(store_manager, open_other_store):
    stranger = make_customer(name="外店顾客", store=open_other_store)
    client = client_for(store_manager)
    assert client.get(BOOK, {"customer": stranger.pk}).status_code == 404
    assert client.post(BOOK, form_data(stranger, open_other_store)).status_code == 404
    assert not Appointment.objects.exists()


def test_a_full_slot_shows_the_error_on_the_form(agent, open_store, customer):
    """Conflict slot_full: the form comes back (200) with the error on the time."""
    # given the 15:00 slot is full
    book(agent, make_customer(name="甲"), open_store)
    book(agent, make_customer(name="乙"), open_store)
    # when
    response = client_for(agent).post(BOOK, form_data(customer, open_store), headers=HX)
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert html.strip().startswith('<form id="book-form"')
    assert "This slot is full." in html.split('id="id_starts_at_error"')[1]
    assert Appointment.objects.filter(customer=customer).count() == 0


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"starts_at": ""}, "starts_at", "Choose a time."),
        ({"store": "999999"}, "store", "Select a valid choice"),
        ({"starts_at": "soon"}, "starts_at", "Choose a time."),
    ],
)
def test_bad_bookings_name_the_field(agent, open_store, customer, change, field, message):
    response = client_for(agent).post(BOOK, {**form_data(customer, open_store), **change})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'role="alert"' in html
    assert message in html
    assert form_field_has_error(response, field)
    assert not Appointment.objects.exists()


def test_a_time_between_slots_is_refused_by_the_service(agent, open_store, customer):
    when = at_tomorrow(15) + dt.timedelta(minutes=30)
    response = client_for(agent).post(
        BOOK, {**form_data(customer, open_store), "starts_at": when.isoformat()}
    )
    assert response.status_code == 200
    assert "The store has no slot at this time." in response.content.decode()
    assert form_field_has_error(response, "starts_at")


def test_booking_without_a_customer_names_the_customer(agent, open_store):
    response = client_for(agent).post(
        BOOK, {"store": open_store.pk, "starts_at": at_tomorrow(15).isoformat()}
    )
    assert response.status_code == 200
    assert form_field_has_error(response, "customer")


def form_field_has_error(response, field: str) -> bool:
    return bool(response.context["form"].errors.get(field))


def test_customer_search_lists_matches_linking_to_the_booking(agent, open_store):
    make_customer(name="孙悟空", phone="13912345678")
    response = client_for(agent).get(
        reverse("appointments:appointment_customer_search"), {"q": "5678", "next": "/followups/"}
    )
    html = response.content.decode()
    assert "孙悟空" in html
    assert "?customer=" in html
    assert "next=%2Ffollowups%2F" in html
    assert "13912345678" not in html


# --- A store's day ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("anonymous", 302),
        ("agent", 200),
        ("store_manager", 200),
        ("manager", 200),
        ("records_officer", 403),
        ("handler", 403),
    ],
)
def test_day_list_permission_matrix(request, open_store, role, status):
    user = None if role == "anonymous" else request.getfixturevalue(role)
    assert client_for(user).get(day_url(open_store)).status_code == status


def test_store_manager_sees_only_their_own_store(
    agent, store_manager, open_store, open_other_store
):
    """Even when asking for another store, a store manager gets their own store's day."""
    # given
    ours = book(agent, make_customer(name="本店顾客"), open_store)
    theirs = book(agent, make_customer(name="外店顾客"), open_other_store)
    # when
    html = client_for(store_manager).get(day_url(open_other_store)).content.decode()
    # then
    assert f'id="appointment-{ours.pk}"' in html
    assert f'id="appointment-{theirs.pk}"' not in html
    assert 'data-testid="own-store"' in html


def test_others_choose_a_store(agent, open_store, open_other_store):
    ours = book(agent, make_customer(name="本店顾客"), open_store)
    theirs = book(agent, make_customer(name="外店顾客"), open_other_store)
    client = client_for(agent)
    assert "Choose a store." in client.get(DAY).content.decode()
    html = client.get(day_url(open_other_store)).content.decode()
    assert f'id="appointment-{theirs.pk}"' in html
    assert f'id="appointment-{ours.pk}"' not in html


def test_day_list_masks_phones_unless_allowed(agent, store_manager, open_store):
    """Agents see 138****1234; the store manager, who may see full contacts, the number."""
    book(agent, make_customer(name="李四", phone="13812341234"), open_store)
    agent_html = client_for(agent).get(day_url(open_store)).content.decode()
    manager_html = client_for(store_manager).get(day_url(open_store)).content.decode()
    assert "138****1234" in agent_html
    assert "13812341234" not in agent_html
    assert "tel:+8613812341234" in manager_html


def test_day_list_runs_a_constant_number_of_queries(agent, open_store):
    client = client_for(agent)
    book(agent, make_customer(name="甲"), open_store, hour=9)
    client.get(day_url(open_store))  # warm the session and caches
    with CaptureQueriesContext(connection) as one:
        client.get(day_url(open_store))
    for index, hour in enumerate([10, 11, 14, 15, 16]):
        book(agent, make_customer(name=f"顾客{index}"), open_store, hour=hour)
    with CaptureQueriesContext(connection) as six:
        response = client.get(day_url(open_store))
    assert response.content.decode().count('id="appointment-') == 6
    assert len(six) == len(one)


def test_day_list_filters_come_back_as_a_fragment(agent, open_store):
    response = client_for(agent).get(day_url(open_store), headers=HX)
    assert response.content.decode().strip().startswith('<div id="day-results">')


# --- Visits and cancellations -------------------------------------------------------------------


def visit_url(appointment) -> str:
    return reverse("appointments:appointment_visit", args=[appointment.pk])


def cancel_url(appointment) -> str:
    return reverse("appointments:appointment_cancel", args=[appointment.pk])


def test_store_manager_records_an_arrival_with_the_order(agent, store_manager, open_store):
    """HTMX: the row comes back showing the visit; the appointment is arrived."""
    # given
    appointment = book(agent, make_customer(name="李四"), open_store)
    # when
    response = client_for(store_manager).post(
        visit_url(appointment),
        {"arrived": "1", "note": "配了眼镜", "purchase_amount": "680.00", "order_no": "SO-1001"},
        headers=HX,
    )
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert html.strip().startswith(f'<tr id="appointment-{appointment.pk}" data-status="arrived"')
    assert "SO-1001" in html
    assert "appointment-changed" in response["HX-Trigger"]
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.ARRIVED
    assert appointment.purchase_amount == Decimal("680.00")
    assert appointment.recorded_by == store_manager


def test_a_no_show_is_recorded(agent, store_manager, open_store):
    appointment = book(agent, make_customer(name="李四"), open_store)
    response = client_for(store_manager).post(visit_url(appointment), {"arrived": "0"})
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.NO_SHOW


def test_store_manager_cannot_record_another_stores_visit(
    agent, store_manager, open_store, open_other_store
):
    appointment = book(agent, make_customer(name="外店顾客"), open_other_store)
    response = client_for(store_manager).post(visit_url(appointment), {"arrived": "1"})
    assert response.status_code == 404
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED


@pytest.mark.parametrize(("role", "status"), [("agent", 403), ("manager", 302)])
def test_who_records_visits(request, agent, open_store, role, status):
    appointment = book(agent, make_customer(name="李四"), open_store)
    user = request.getfixturevalue(role)
    assert client_for(user).post(visit_url(appointment), {"arrived": "1"}).status_code == status


def test_visit_errors_come_back_on_the_row(agent, store_manager, open_store):
    """A negative amount, or a no-show with a purchase: the row with the error, 200."""
    appointment = book(agent, make_customer(name="李四"), open_store)
    client = client_for(store_manager)
    negative = client.post(
        visit_url(appointment), {"arrived": "1", "purchase_amount": "-5"}, headers=HX
    )
    no_show = client.post(
        visit_url(appointment), {"arrived": "0", "purchase_amount": "50"}, headers=HX
    )
    for response in (negative, no_show):
        html = response.content.decode()
        assert response.status_code == 200
        assert "Purchase amount: " in html
        assert 'role="alert"' in html
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED


def test_a_recorded_visit_cannot_be_recorded_again(agent, store_manager, open_store):
    appointment = book(agent, make_customer(name="李四"), open_store)
    client = client_for(store_manager)
    client.post(visit_url(appointment), {"arrived": "1"})
    response = client.post(visit_url(appointment), {"arrived": "0"}, headers=HX)
    assert response.status_code == 200
    assert "The visit is recorded already." in response.content.decode()


def test_agent_cancels_and_the_place_is_free_again(agent, open_store):
    appointment = book(agent, make_customer(name="李四"), open_store)
    response = client_for(agent).post(cancel_url(appointment), {"reason": "顾客改期"}, headers=HX)
    assert response.status_code == 200
    assert 'data-status="cancelled"' in response.content.decode()
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CANCELLED
    assert services.slots_free(open_store, tomorrow(), now=timezone.now())[4][1] == 2


def test_store_manager_cannot_cancel_another_stores_appointment(
    agent, store_manager, open_other_store
):
    appointment = book(agent, make_customer(name="外店顾客"), open_other_store)
    assert client_for(store_manager).post(cancel_url(appointment)).status_code == 404
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED


def test_records_officer_cannot_cancel(agent, records_officer, open_store):
    appointment = book(agent, make_customer(name="李四"), open_store)
    assert client_for(records_officer).post(cancel_url(appointment)).status_code == 403


def test_an_appointment_url_leads_to_its_day(agent, open_store):
    appointment = book(agent, make_customer(name="李四"), open_store)
    response = client_for(agent).get(appointment.get_absolute_url())
    assert response.status_code == 302
    assert response["Location"] == f"{day_url(open_store)}#appointment-{appointment.pk}"


# --- The funnel ---------------------------------------------------------------------------------


def test_funnel_page_counts_and_rates(agent, manager, store_manager, open_store, open_other_store):
    """The manager sees every store (and each one); a store manager only their own."""
    # given two bookings at our store, one visit with an order; one booking elsewhere
    first = book(agent, make_customer(name="甲", store=open_store), open_store, hour=9)
    book(agent, make_customer(name="乙", store=open_store), open_store, hour=10)
    book(agent, make_customer(name="丙"), open_other_store, hour=9)
    services.appointment_record_visit(
        actor=store_manager, appointment_id=first.pk, arrived=True, order_no="SO-1"
    )
    today = timezone.localdate().isoformat()
    # when
    everything = client_for(manager).get(FUNNEL, {"start": today, "end": today})
    own = client_for(store_manager).get(
        FUNNEL, {"start": today, "end": today, "store": open_other_store.pk}
    )
    # then
    funnel = everything.context["funnel"]
    assert (funnel.appointments, funnel.visits, funnel.orders) == (3, 1, 1)
    assert [row[0].appointments for row in everything.context["per_store"]] == [2, 1]
    assert own.context["funnel"].store == open_store
    assert own.context["funnel"].appointments == 2
    assert own.context["per_store"] == []
    assert "50.0%" in own.content.decode()  # one visit of two appointments


def test_funnel_range_errors_name_the_field(manager):
    response = client_for(manager).get(FUNNEL, {"start": "2026-12-31", "end": "2026-12-01"})
    assert response.status_code == 200
    assert "Until: The end is before the start." in response.content.decode()


@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 302), ("agent", 200), ("records_officer", 403), ("handler", 403)],
)
def test_funnel_permission_matrix(request, role, status):
    user = None if role == "anonymous" else request.getfixturevalue(role)
    assert client_for(user).get(FUNNEL).status_code == status


def test_store_manager_without_a_store_sees_nothing(open_store, agent):
    lost = UserFactory(username="nostore", role="store_manager")
    book(agent, make_customer(name="甲"), open_store)
    html = client_for(lost).get(day_url(open_store)).content.decode()
    assert 'id="appointment-' not in html
    assert client_for(lost).get(FUNNEL).status_code == 200


def test_funnel_filters_come_back_as_a_fragment(manager):
    response = client_for(manager).get(
        FUNNEL, {"start": "2026-11-01", "end": "2026-11-30"}, headers=HX
    )
    assert response.content.decode().strip().startswith('<div id="funnel-results">')
