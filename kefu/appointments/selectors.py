"""Reads of store appointments: who sees which (store managers their own store's), a store's day,
and the funnel from consultation to order."""

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from kefu.accounts.models import Store, User
from kefu.accounts.roles import Role
from kefu.appointments.models import Appointment
from kefu.core.exceptions import NotFound
from kefu.core.permissions import require_perm
from kefu.customers.models import ContactPoint, Customer


def own_store_only(user: User | None) -> bool:
    """Store managers work with their own store's appointments only."""
    return user is not None and user.role == Role.STORE_MANAGER


def appointment_list_visible_to(*, user: User | None) -> QuerySet[Appointment]:
    """Every appointment the user may see: all of them, or their own store's (store managers;
    one without a store sees none). `None` is the system itself."""
    require_perm(user, "appointments.view_appointment")
    appointments = Appointment.objects.all()
    if own_store_only(user):
        assert user is not None
        if user.store_id is None:
            return appointments.none()
        return appointments.filter(store_id=user.store_id)
    return appointments


def appointment_get_for_user(*, user: User | None, appointment_id: int) -> Appointment:
    """One appointment on the user's behalf; another store's is not found for a store manager."""
    try:
        return (
            appointment_list_visible_to(user=user)
            .select_related("customer", "store")
            .get(pk=appointment_id)
        )
    except (Appointment.DoesNotExist, ValueError, TypeError):
        raise NotFound(
            _("Appointment %(id)s not found.") % {"id": appointment_id},
            code="appointment_not_found",
        ) from None


@dataclass
class BookingOrigin:
    """Where a booking starts: the customer, and the consultation or ticket it came from."""

    customer: Customer | None
    source: str
    conversation_id: int | None = None
    ticket_id: int | None = None
    store: Store | None = None


def booking_origin(
    *,
    user: User,
    customer_id: int | None = None,
    conversation_id: int | None = None,
    ticket_id: int | None = None,
    source: str | None = None,
) -> BookingOrigin:
    """The customer to book, read from the consultation or the ticket when the booking comes
    from one (each loaded on the user's behalf: not found when they may not see it). Without
    either the source is the customer profile, or a phone call when `source` says so."""
    from kefu.conversations.selectors import conversation_get_for_user
    from kefu.customers.selectors import customer_get_for_user
    from kefu.tickets.selectors import ticket_get_for_user

    if conversation_id is not None:
        conversation = conversation_get_for_user(user=user, conversation_id=conversation_id)
        return BookingOrigin(
            customer=conversation.customer,
            source=Appointment.Source.CONVERSATION,
            conversation_id=conversation.pk,
            store=conversation.customer.store,
        )
    if ticket_id is not None:
        ticket = ticket_get_for_user(user=user, ticket_id=ticket_id)
        return BookingOrigin(
            customer=ticket.customer,
            source=Appointment.Source.TICKET,
            ticket_id=ticket.pk,
            store=ticket.store or ticket.customer.store,
        )
    kind = Appointment.Source.PHONE if source == Appointment.Source.PHONE else None
    kind = kind or Appointment.Source.PROFILE
    if customer_id is None:
        return BookingOrigin(customer=None, source=kind)
    customer = customer_get_for_user(user=user, customer_id=customer_id)
    return BookingOrigin(customer=customer, source=kind, store=customer.store)


def store_list_for(*, user: User | None) -> QuerySet[Store]:
    """The stores the user may choose on the appointment pages."""
    stores = Store.objects.filter(is_active=True).order_by("code")
    if own_store_only(user):
        assert user is not None
        return stores.filter(pk=user.store_id) if user.store_id else stores.none()
    return stores


def day_bounds(start: dt.date, end: dt.date | None = None) -> tuple[dt.datetime, dt.datetime]:
    """From local midnight of `start` to local midnight after `end` (default: `start`)."""
    tz = timezone.get_current_timezone()
    end = end or start
    return (
        dt.datetime.combine(start, dt.time.min, tzinfo=tz),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz),
    )


def appointment_list_for_display(appointments: QuerySet[Appointment]) -> QuerySet[Appointment]:
    """What a list row shows, in a fixed number of queries: the customer, the store, who booked,
    and the customer's phones (`customer.phones`, the primary first)."""
    phones = ContactPoint.objects.filter(kind=ContactPoint.Kind.PHONE).order_by("-is_primary", "id")
    return appointments.select_related("customer", "store", "booked_by").prefetch_related(
        Prefetch("customer__contacts", queryset=phones, to_attr="phones")
    )


def appointment_list_for_day(
    *, user: User | None, day: dt.date, store: Store | None = None
) -> QuerySet[Appointment]:
    """The appointments of a day (of one store, or of every store the user sees), by time."""
    start, end = day_bounds(day)
    appointments = appointment_list_visible_to(user=user).filter(
        starts_at__gte=start, starts_at__lt=end
    )
    if store is not None:
        appointments = appointments.filter(store=store)
    return appointment_list_for_display(appointments).order_by("starts_at", "id")


@dataclass(frozen=True)
class Funnel:
    """Consultation → appointment → visit → order over a date range.

    `conversations` are the consultations started in the range (with a store: of customers of
    that store); `appointments` those booked in the range (whatever became of them), `visits`
    the ones among them where the customer came, `orders` the visits that led to an order
    number or a purchase. The rates divide each step by the one before (None without any).
    """

    start: dt.date
    end: dt.date
    store: Store | None
    conversations: int
    appointments: int
    visits: int
    orders: int

    @staticmethod
    def _rate(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    @property
    def appointment_rate(self) -> float | None:
        return self._rate(self.appointments, self.conversations)

    @property
    def visit_rate(self) -> float | None:
        return self._rate(self.visits, self.appointments)

    @property
    def order_rate(self) -> float | None:
        return self._rate(self.orders, self.visits)

    @property
    def overall_rate(self) -> float | None:
        """Orders per consultation."""
        return self._rate(self.orders, self.conversations)


_ARRIVED = Q(status=Appointment.Status.ARRIVED)
_ORDERED = _ARRIVED & (~Q(order_no="") | Q(purchase_amount__gt=0))


def _appointment_counts(appointments: QuerySet[Appointment]) -> dict:
    return appointments.aggregate(
        appointments=Count("id"),
        visits=Count("id", filter=_ARRIVED),
        orders=Count("id", filter=_ORDERED),
    )


def appointment_funnel(start: dt.date, end: dt.date, store: Store | None = None) -> Funnel:
    """The funnel of the days `start` … `end` (local dates, both included), of every store or
    of one. Two queries."""
    from kefu.conversations.models import Conversation

    since, until = day_bounds(start, end)
    conversations = Conversation.objects.filter(created_at__gte=since, created_at__lt=until)
    appointments = Appointment.objects.filter(created_at__gte=since, created_at__lt=until)
    if store is not None:
        conversations = conversations.filter(customer__store=store)
        appointments = appointments.filter(store=store)
    counts = _appointment_counts(appointments)
    return Funnel(start=start, end=end, store=store, conversations=conversations.count(), **counts)


def appointment_funnel_by_store(
    start: dt.date, end: dt.date, stores: QuerySet[Store]
) -> list[Funnel]:
    """The funnel of each of the stores over the days `start` … `end`, in three queries."""
    from kefu.conversations.models import Conversation

    since, until = day_bounds(start, end)
    stores_list = list(stores)
    ids = [s.pk for s in stores_list]
    conversations = {
        row["customer__store_id"]: row["n"]
        for row in Conversation.objects.filter(
            created_at__gte=since, created_at__lt=until, customer__store_id__in=ids
        )
        .values("customer__store_id")
        .annotate(n=Count("id"))
        .order_by()
    }
    rows = {
        row["store_id"]: row
        for row in Appointment.objects.filter(
            created_at__gte=since, created_at__lt=until, store_id__in=ids
        )
        .values("store_id")
        .annotate(
            appointments=Count("id"),
            visits=Count("id", filter=_ARRIVED),
            orders=Count("id", filter=_ORDERED),
        )
        .order_by()
    }
    return [
        Funnel(
            start=start,
            end=end,
            store=store,
            conversations=conversations.get(store.pk, 0),
            appointments=rows.get(store.pk, {}).get("appointments", 0),
            visits=rows.get(store.pk, {}).get("visits", 0),
            orders=rows.get(store.pk, {}).get("orders", 0),
        )
        for store in stores_list
    ]
