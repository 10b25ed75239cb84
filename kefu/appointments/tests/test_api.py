"""The appointment API: free slots, booking (a full slot is 409 slot_full), a day's list with
the store managers' own-store visibility, cancelling, the visit, and the funnel."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from kefu.accounts.services import api_token_create
from kefu.appointments import services
from kefu.appointments.models import Appointment, OpeningHours, StoreSchedule
from kefu.conversations import services as conversation_services
from kefu.conversations.adapters import Inbound, Sender
from kefu.customers.tests.factories import make_customer

pytestmark = pytest.mark.django_db

BASE = "/api/v1/appointments"


def api_client(user) -> Client:
    if user is None:
        return Client()
    _token, key = api_token_create(user=user, name="test", actor=None)
    return Client(headers={"authorization": f"Bearer {key}"})


def tomorrow() -> dt.date:
    return timezone.localdate() + dt.timedelta(days=1)


def at_tomorrow(hour: int) -> dt.datetime:
    return dt.datetime.combine(tomorrow(), dt.time(hour), tzinfo=timezone.get_current_timezone())


@pytest.fixture
def open_stores(store, other_store):
    """Both stores open every day 09:00–12:00, hour slots, two customers each."""
    for s in (store, other_store):
        StoreSchedule.objects.create(store=s, slot_minutes=60, capacity=2)
        for weekday in range(7):
            OpeningHours.objects.create(
                store=s, weekday=weekday, opens_at=dt.time(9), closes_at=dt.time(12)
            )
    return store, other_store


def book(customer, store, hour=10) -> Appointment:
    return services.appointment_book(
        actor=None,
        data={"customer": customer.pk, "store": store.pk, "starts_at": at_tomorrow(hour)},
    )


def post(client, url, body):
    return client.post(url, body, content_type="application/json")


# --- Slots and booking ----------------------------------------------------------------------------


def test_slots_of_a_day_with_places_left(agent, open_stores):
    store, _other = open_stores
    book(make_customer(name="甲"), store, hour=10)
    response = api_client(agent).get(f"{BASE}/slots", {"store": store.pk, "day": tomorrow()})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["takes_bookings"] is True
    assert [(s["starts_at"][11:16], s["places_left"]) for s in body["slots"]] == [
        ("09:00", 2),
        ("10:00", 1),
        ("11:00", 2),
    ]


def test_slots_need_a_known_store_and_a_day(agent):
    client = api_client(agent)
    missing = client.get(f"{BASE}/slots", {"day": "2026-12-01"})
    unknown = client.get(f"{BASE}/slots", {"store": 999999, "day": "2026-12-01"})
    assert missing.status_code == 422
    assert "store" in missing.json()["errors"]
    assert unknown.status_code == 422
    assert list(unknown.json()["errors"]) == ["store"]


def test_book_a_customer(agent, open_stores, customer):
    store, _other = open_stores
    response = post(
        api_client(agent),
        BASE,
        {
            "customer_id": customer.pk,
            "store_id": store.pk,
            "starts_at": at_tomorrow(10).isoformat(),
            "purpose": "验光",
            "source": "phone",
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "booked"
    assert body["source"] == "phone"
    assert body["customer"] == {
        "id": customer.pk,
        "number": customer.number,
        "name": "张三",
        "phone": "138****1234",
    }
    assert body["store"]["id"] == store.pk
    assert body["booked_by"]["id"] == agent.pk


def test_book_from_a_conversation(agent, open_stores, web_chat):
    store, _other = open_stores
    conversation = conversation_services.message_receive(
        channel=web_chat, inbound=Inbound(sender=Sender(key="v:1", name="王女士"), body="预约")
    ).conversation
    response = post(
        api_client(agent),
        BASE,
        {
            "conversation_id": conversation.pk,
            "store_id": store.pk,
            "starts_at": at_tomorrow(9).isoformat(),
        },
    )
    assert response.status_code == 201, response.content
    assert response.json()["conversation_id"] == conversation.pk
    assert response.json()["customer"]["id"] == conversation.customer_id


def test_a_full_slot_is_a_conflict(agent, open_stores, customer):
    store, _other = open_stores
    book(make_customer(name="甲"), store)
    book(make_customer(name="乙"), store)
    response = post(
        api_client(agent),
        BASE,
        {
            "customer_id": customer.pk,
            "store_id": store.pk,
            "starts_at": at_tomorrow(10).isoformat(),
        },
    )
    assert response.status_code == 409
    assert response.json()["code"] == "slot_full"
    assert "starts_at" in response.json()["errors"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"store_id": 999999}, "store_id"),
        ({"starts_at": "2020-01-01T10:00:00+08:00"}, "starts_at"),
        ({"customer_id": None}, "customer_id"),
        ({"source": "pigeon"}, "source"),
    ],
)
def test_bad_bookings_name_the_field(agent, open_stores, customer, body, field):
    store, _other = open_stores
    payload = {
        "customer_id": customer.pk,
        "store_id": store.pk,
        "starts_at": at_tomorrow(10).isoformat(),
        **body,
    }
    response = post(api_client(agent), BASE, payload)
    assert response.status_code == 422, response.content
    assert field in response.json()["errors"]
    assert not Appointment.objects.exists()


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("anonymous", 401),
        ("records_officer", 403),
        ("handler", 403),
        ("store_manager", 404),  # another store's customer
        ("manager", 201),
    ],
)
def test_booking_permission_matrix(request, open_stores, role, status):
    _store, other = open_stores
    customer = make_customer(name="外店顾客", store=other)
    user = None if role == "anonymous" else request.getfixturevalue(role)
    response = post(
        api_client(user),
        BASE,
        {"customer_id": customer.pk, "store_id": other.pk, "starts_at": at_tomorrow(9).isoformat()},
    )
    assert response.status_code == status, response.content


# --- A day's list -------------------------------------------------------------------------------


def test_store_manager_lists_only_their_own_store(agent, store_manager, open_stores):
    store, other = open_stores
    ours = book(make_customer(name="甲", phone="13812341234"), store)
    theirs = book(make_customer(name="乙"), other)
    manager_client = api_client(store_manager)

    own = manager_client.get(BASE, {"day": tomorrow()}).json()
    everything = api_client(agent).get(BASE, {"day": tomorrow()}).json()
    asked_other = manager_client.get(BASE, {"day": tomorrow(), "store": other.pk})

    assert [a["id"] for a in own["results"]] == [ours.pk]
    assert own["results"][0]["customer"]["phone"] == "13812341234"  # may see full contacts
    assert {a["id"] for a in everything["results"]} == {ours.pk, theirs.pk}
    assert everything["results"][0]["customer"]["phone"] == "138****1234"
    assert asked_other.status_code == 422
    assert list(asked_other.json()["errors"]) == ["store"]


def test_list_pages_through_a_day(agent, open_stores):
    store, _other = open_stores
    ids = [book(make_customer(name=f"顾客{h}"), store, hour=h).pk for h in (9, 10, 11)]
    client = api_client(agent)
    first = client.get(BASE, {"day": tomorrow(), "store": store.pk, "limit": 2}).json()
    second = client.get(
        BASE, {"day": tomorrow(), "store": store.pk, "limit": 2, "offset": first["next"]}
    ).json()
    assert [a["id"] for a in first["results"] + second["results"]] == ids
    assert second["has_more"] is False


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("records_officer", 403)])
def test_list_permission_matrix(request, role, status):
    user = None if role == "anonymous" else request.getfixturevalue(role)
    assert api_client(user).get(BASE).status_code == status


# --- Cancel and visit ---------------------------------------------------------------------------


def test_cancel(agent, open_stores):
    store, _other = open_stores
    appointment = book(make_customer(name="甲"), store)
    response = post(api_client(agent), f"{BASE}/{appointment.pk}/cancel", {"reason": "改期"})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    again = post(api_client(agent), f"{BASE}/{appointment.pk}/cancel", {})
    assert again.status_code == 409
    assert again.json()["code"] == "not_booked"


def test_store_manager_records_their_own_stores_visit_only(store_manager, open_stores):
    store, other = open_stores
    ours = book(make_customer(name="甲"), store)
    theirs = book(make_customer(name="乙"), other)
    client = api_client(store_manager)

    response = post(
        client,
        f"{BASE}/{ours.pk}/visit",
        {"arrived": True, "note": "配镜", "purchase_amount": "680.00", "order_no": "SO-1"},
    )
    refused = post(client, f"{BASE}/{theirs.pk}/visit", {"arrived": True})
    cancel_refused = post(client, f"{BASE}/{theirs.pk}/cancel", {})

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "arrived"
    assert response.json()["purchase_amount"] == "680.00"
    assert response.json()["order_no"] == "SO-1"
    assert refused.status_code == 404
    assert refused.json()["code"] == "appointment_not_found"
    assert cancel_refused.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == Appointment.Status.BOOKED


def test_agents_do_not_record_visits(agent, open_stores):
    store, _other = open_stores
    appointment = book(make_customer(name="甲"), store)
    response = post(api_client(agent), f"{BASE}/{appointment.pk}/visit", {"arrived": False})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_visit_errors_name_the_field(manager, open_stores):
    store, _other = open_stores
    appointment = book(make_customer(name="甲"), store)
    client = api_client(manager)
    negative = post(
        client, f"{BASE}/{appointment.pk}/visit", {"arrived": True, "purchase_amount": -1}
    )
    no_show = post(
        client, f"{BASE}/{appointment.pk}/visit", {"arrived": False, "purchase_amount": "10"}
    )
    assert negative.status_code == 422
    assert list(negative.json()["errors"]) == ["purchase_amount"]
    assert no_show.status_code == 422
    assert list(no_show.json()["errors"]) == ["purchase_amount"]


# --- Funnel -------------------------------------------------------------------------------------


def test_funnel(manager, store_manager, open_stores):
    store, other = open_stores
    visited = book(make_customer(name="甲", store=store), store)
    book(make_customer(name="乙"), other)
    services.appointment_record_visit(
        actor=None, appointment_id=visited.pk, arrived=True, purchase_amount="15"
    )
    today = timezone.localdate().isoformat()

    everything = api_client(manager).get(f"{BASE}/funnel", {"start": today, "end": today}).json()
    own = api_client(store_manager).get(
        f"{BASE}/funnel", {"start": today, "end": today, "store": other.pk}
    )

    assert (everything["appointments"], everything["visits"], everything["orders"]) == (2, 1, 1)
    assert everything["visit_rate"] == 0.5
    assert everything["store"] is None
    assert [(s["store"]["id"], s["appointments"]) for s in everything["stores"]] == [
        (store.pk, 1),
        (other.pk, 1),
    ]
    assert own.status_code == 200
    assert own.json()["store"]["id"] == store.pk
    assert own.json()["order_rate"] == 1.0
    assert own.json()["stores"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "2026-12-31", "end": "2026-12-01"}, "end"),
        ({"start": "2024-01-01", "end": "2026-01-01"}, "end"),
        ({"start": "2026-12-01", "end": "2026-12-31", "store": 999999}, "store"),
        ({"end": "2026-12-31"}, "start"),
    ],
)
def test_funnel_errors_name_the_field(manager, query, field):
    response = api_client(manager).get(f"{BASE}/funnel", query)
    assert response.status_code == 422
    assert field in response.json()["errors"]


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("records_officer", 403)])
def test_funnel_permission_matrix(request, role, status):
    user = None if role == "anonymous" else request.getfixturevalue(role)
    query = {"start": "2026-12-01", "end": "2026-12-31"}
    assert api_client(user).get(f"{BASE}/funnel", query).status_code == status
