"""Store appointment endpoints under /api/v1/appointments: a store's free slots, booking,
a day's appointments (store managers their own store's), cancelling, the visit, and the funnel
from consultation to order. Refusals are rendered as {code, message, errors}."""

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from kefu.accounts.models import Store
from kefu.appointments import services
from kefu.appointments.models import Appointment
from kefu.appointments.selectors import (
    Funnel,
    appointment_funnel,
    appointment_funnel_by_store,
    appointment_get_for_user,
    appointment_list_for_day,
    appointment_list_for_display,
    appointment_list_visible_to,
    booking_origin,
    own_store_only,
    store_list_for,
)
from kefu.core.bounds import DateTimeIn, FilterDate, Id, Offset
from kefu.core.exceptions import ValidationFailed
from kefu.core.permissions import has_perm, require_perm
from kefu.core.schemas import InputSchema, Ref

router = Router(tags=["appointments"])

# The API names a related record `<name>_id`; the services take `<name>`.
API_FIELD_NAMES = {
    "customer": "customer_id",
    "store": "store_id",
    "conversation": "conversation_id",
    "ticket": "ticket_id",
}
FUNNEL_MAX_DAYS = 366


@contextmanager
def _api_field_names() -> Iterator[None]:
    try:
        yield
    except ValidationFailed as exc:
        exc.errors = {API_FIELD_NAMES.get(f, f): msgs for f, msgs in exc.errors.items()}
        raise


# --- Schemas ------------------------------------------------------------------------------------


class AppointmentCustomer(Schema):
    """The booked customer, with the phone the store calls (masked unless the caller may see
    full contacts)."""

    id: int
    number: str
    name: str
    phone: str | None = Field(description="Primary phone, masked unless the caller may see it.")


class SlotOut(Schema):
    starts_at: dt.datetime
    places_left: int


class SlotsOut(Schema):
    store: Ref
    day: dt.date
    takes_bookings: bool
    slots: list[SlotOut] = Field(description="The day's slots still to come, full ones too.")


class AppointmentOut(Schema):
    id: int
    customer: AppointmentCustomer
    store: Ref
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: str = Field(description="booked, arrived, no_show or cancelled")
    source: str = Field(description="conversation, ticket, profile or phone")
    conversation_id: int | None
    ticket_id: int | None
    purpose: str
    booked_by: Ref | None
    visited_at: dt.datetime | None
    visit_note: str
    purchase_amount: Decimal | None
    order_no: str
    created_at: dt.datetime


class AppointmentPage(Schema):
    results: list[AppointmentOut]
    next: int | None = Field(description="Pass as `offset` for the following page.")
    has_more: bool
    limit: int


class SlotsQuery(Schema):
    store: Id = Field(description="The store's id.")
    day: FilterDate


class DayQuery(Schema):
    store: Id | None = Field(None, description="The store's id; store managers get their own.")
    day: FilterDate | None = Field(None, description="Local date; today by default.")
    offset: Offset = 0
    limit: int = Field(100, ge=1, le=500)


class AppointmentBookIn(InputSchema):
    customer_id: Id | None = Field(None, description="Unless conversation_id or ticket_id.")
    conversation_id: Id | None = Field(None, description="Booked from this consultation.")
    ticket_id: Id | None = Field(None, description="Booked from this ticket.")
    source: str | None = Field(
        None, pattern="^(profile|phone)$", description="Without a conversation or ticket."
    )
    store_id: Id
    starts_at: DateTimeIn = Field(description="The start of one of the store's slots.")
    purpose: str = Field("", max_length=200)


class AppointmentCancelIn(InputSchema):
    reason: str = Field("", max_length=500)


class AppointmentVisitIn(InputSchema):
    arrived: bool = Field(description="true: the customer came; false: a no-show.")
    note: str = Field("", max_length=2000)
    purchase_amount: Decimal | None = Field(None, ge=0, max_digits=12, decimal_places=2)
    order_no: str = Field("", max_length=50)


class FunnelQuery(Schema):
    start: FilterDate
    end: FilterDate
    store: Id | None = Field(None, description="One store; store managers get their own.")


class FunnelOut(Schema):
    start: dt.date
    end: dt.date
    store: Ref | None
    conversations: int = Field(description="Consultations started in the range.")
    appointments: int = Field(description="Appointments booked in the range.")
    visits: int = Field(description="Of those, the customer came.")
    orders: int = Field(description="Of the visits, with an order number or a purchase.")
    appointment_rate: float | None
    visit_rate: float | None
    order_rate: float | None
    overall_rate: float | None = Field(description="Orders per consultation.")


class FunnelReport(FunnelOut):
    stores: list[FunnelOut] = Field(description="Per store, when no store was asked for.")


# --- Builders (plain dicts: the response schema validates them once) ---------------------------


def _ref(obj) -> dict | None:
    return {"id": obj.pk, "name": str(obj)} if obj is not None else None


def _out(a: Appointment, *, full_contact: bool) -> dict:
    phones = getattr(a.customer, "phones", None)
    if phones is None:
        phones = list(a.customer.contacts.filter(kind="phone").order_by("-is_primary", "id"))
    phone = None
    if phones:
        phone = phones[0].display if full_contact else phones[0].masked
    return {
        "id": a.pk,
        "customer": {
            "id": a.customer.pk,
            "number": a.customer.number,
            "name": a.customer.name,
            "phone": phone,
        },
        "store": {"id": a.store.pk, "name": a.store.name},
        "starts_at": a.starts_at,
        "ends_at": a.ends_at,
        "status": a.status,
        "source": a.source,
        "conversation_id": a.conversation_id,
        "ticket_id": a.ticket_id,
        "purpose": a.purpose,
        "booked_by": _ref(a.booked_by) if a.booked_by_id else None,
        "visited_at": a.visited_at,
        "visit_note": a.visit_note,
        "purchase_amount": a.purchase_amount,
        "order_no": a.order_no,
        "created_at": a.created_at,
    }


def _detail(request: HttpRequest, appointment_id: int) -> dict:
    appointment = appointment_list_for_display(
        appointment_list_visible_to(user=request.auth).filter(pk=appointment_id)
    ).get()
    return _out(appointment, full_contact=has_perm(request.auth, "customers.view_full_contact"))


def _funnel(f: Funnel) -> dict:
    return {
        "start": f.start,
        "end": f.end,
        "store": {"id": f.store.pk, "name": f.store.name} if f.store else None,
        "conversations": f.conversations,
        "appointments": f.appointments,
        "visits": f.visits,
        "orders": f.orders,
        "appointment_rate": f.appointment_rate,
        "visit_rate": f.visit_rate,
        "order_rate": f.order_rate,
        "overall_rate": f.overall_rate,
    }


def _active_store(store_id: int, field: str = "store") -> Store:
    store = Store.objects.filter(pk=store_id, is_active=True).first()
    if store is None:
        raise ValidationFailed({field: [_("Choose a store.")]})
    return store


# --- Endpoints ----------------------------------------------------------------------------------


@router.get("/slots", response=SlotsOut, summary="A store's slots of a day, with places left")
def appointment_slots_api(request: HttpRequest, filters: Query[SlotsQuery]):
    """The slots of the day still to come; a full one has 0 places left."""
    require_perm(request.auth, "appointments.view_appointment")
    store = _active_store(filters.store)
    slots = services.slots_free(store, filters.day, now=timezone.now())
    return {
        "store": {"id": store.pk, "name": store.name},
        "day": filters.day,
        "takes_bookings": services.store_schedule(store).is_open_for_booking,
        "slots": [{"starts_at": start, "places_left": left} for start, left in slots],
    }


@router.post("", response={201: AppointmentOut}, summary="Book a customer into a store")
def appointment_book_api(request: HttpRequest, payload: AppointmentBookIn):
    """Book into one of the store's slots. Name the customer, or the consultation or ticket the
    booking comes from (its customer is booked). A full slot answers 409 `slot_full`."""
    require_perm(request.auth, "appointments.add_appointment")
    origin = booking_origin(
        user=request.auth,
        customer_id=payload.customer_id,
        conversation_id=payload.conversation_id,
        ticket_id=payload.ticket_id,
        source=payload.source,
    )
    if origin.customer is None:
        raise ValidationFailed({"customer_id": [_("Choose a customer.")]})
    with _api_field_names():
        appointment = services.appointment_book(
            actor=request.auth,
            data={
                "customer": origin.customer.pk,
                "store": payload.store_id,
                "starts_at": payload.starts_at,
                "source": origin.source,
                "conversation": origin.conversation_id,
                "ticket": origin.ticket_id,
                "purpose": payload.purpose,
            },
            now=timezone.now(),
        )
    return Status(201, _detail(request, appointment.pk))


@router.get("", response=AppointmentPage, summary="The appointments of a day")
def appointment_list_api(request: HttpRequest, filters: Query[DayQuery]):
    """A day's appointments by time, of one store or of every store the caller sees (store
    managers: their own store's only)."""
    user = request.auth
    day = filters.day or timezone.localdate()
    store = None
    if filters.store is not None:
        store = store_list_for(user=user).filter(pk=filters.store).first()
        if store is None:
            raise ValidationFailed({"store": [_("Choose a store.")]})
    appointments = appointment_list_for_day(user=user, day=day, store=store)
    start, limit = filters.offset, filters.limit
    rows = list(appointments[start : start + limit + 1])
    has_more = len(rows) > limit
    full = has_perm(user, "customers.view_full_contact")
    return {
        "results": [_out(a, full_contact=full) for a in rows[:limit]],
        "next": start + limit if has_more else None,
        "has_more": has_more,
        "limit": limit,
    }


@router.get("/funnel", response=FunnelReport, summary="Consultation → appointment → order")
def appointment_funnel_api(request: HttpRequest, filters: Query[FunnelQuery]):
    """Counts and rates over the local days `start` … `end` (both included, a year at most);
    without `store`, also per store."""
    user = request.auth
    require_perm(user, "appointments.view_appointment")
    if filters.end < filters.start:
        raise ValidationFailed({"end": [_("The end is before the start.")]})
    if filters.end - filters.start > dt.timedelta(days=FUNNEL_MAX_DAYS):
        raise ValidationFailed({"end": [_("A year at most.")]})
    stores = store_list_for(user=user)
    store = None
    if own_store_only(user):
        store = user.store
        if store is None:
            raise ValidationFailed({"store": [_("Your account has no store.")]})
    elif filters.store is not None:
        store = stores.filter(pk=filters.store).first()
        if store is None:
            raise ValidationFailed({"store": [_("Choose a store.")]})
    report = _funnel(appointment_funnel(filters.start, filters.end, store=store))
    report["stores"] = (
        [_funnel(f) for f in appointment_funnel_by_store(filters.start, filters.end, stores)]
        if store is None
        else []
    )
    return report


@router.post(
    "/{appointment_id}/cancel", response=AppointmentOut, summary="Cancel a booked appointment"
)
def appointment_cancel_api(request: HttpRequest, appointment_id: int, payload: AppointmentCancelIn):
    appointment = appointment_get_for_user(user=request.auth, appointment_id=appointment_id)
    services.appointment_cancel(
        actor=request.auth, appointment_id=appointment.pk, reason=payload.reason
    )
    return _detail(request, appointment.pk)


@router.post("/{appointment_id}/visit", response=AppointmentOut, summary="Record the visit")
def appointment_visit_api(request: HttpRequest, appointment_id: int, payload: AppointmentVisitIn):
    """The store records whether the customer came, and what it led to (a purchase amount, an
    order number). Store managers record their own store's visits only."""
    appointment = appointment_get_for_user(user=request.auth, appointment_id=appointment_id)
    services.appointment_record_visit(
        actor=request.auth,
        appointment_id=appointment.pk,
        arrived=payload.arrived,
        note=payload.note,
        purchase_amount=payload.purchase_amount,
        order_no=payload.order_no,
        now=timezone.now(),
    )
    return _detail(request, appointment.pk)
