"""Every write of store appointments: booking under a slot lock, cancelling, the visit, the
reminder the day before."""

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from kefu.accounts.models import Store, User
from kefu.accounts.roles import Role
from kefu.appointments.models import Appointment, AppointmentSlot, OpeningHours, StoreSchedule
from kefu.core.exceptions import Conflict, NotFound, ValidationFailed
from kefu.core.permissions import require_perm
from kefu.customers.models import Customer, CustomerEvent
from kefu.customers.services import customer_touch
from kefu.notifications.services import notify


def store_schedule(store: Store) -> StoreSchedule:
    """The store's booking settings, or the defaults (hour slots, three customers) unsaved."""
    return StoreSchedule.objects.filter(store=store).first() or StoreSchedule(store=store)


def slot_starts(store: Store, day: dt.date) -> list[dt.datetime]:
    """The start times of a store's slots on a day, from its opening hours."""
    schedule = store_schedule(store)
    tz = timezone.get_current_timezone()
    starts = []
    step = dt.timedelta(minutes=schedule.slot_minutes)
    for period in OpeningHours.objects.filter(store=store, weekday=day.weekday()):
        moment = dt.datetime.combine(day, period.opens_at, tzinfo=tz)
        end = dt.datetime.combine(day, period.closes_at, tzinfo=tz)
        while moment + step <= end:
            starts.append(moment)
            moment += step
    return starts


def slots_free(store: Store, day: dt.date, *, now: dt.datetime) -> list[tuple[dt.datetime, int]]:
    """(start, places left) for every future slot of the day."""
    schedule = store_schedule(store)
    starts = [s for s in slot_starts(store, day) if s > now]
    booked = dict(
        AppointmentSlot.objects.filter(store=store, starts_at__in=starts).values_list(
            "starts_at", "booked"
        )
    )
    return [(s, max(schedule.capacity - booked.get(s, 0), 0)) for s in starts]


def _parse_when(value: Any, errors: dict[str, list[str]]) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        moment = value
    else:
        from django.utils.dateparse import parse_datetime

        moment = parse_datetime(str(value or ""))
    if moment is None:
        errors["starts_at"] = [_("Choose a time.")]
        return None
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


@transaction.atomic
def appointment_book(
    *, actor: User | None, data: dict[str, Any], now: dt.datetime | None = None
) -> Appointment:
    """Book a customer into a store slot; the store manager is told and the reminder set for
    the day before. A full slot refuses the booking, also when two agents book at once."""
    require_perm(actor, "appointments.add_appointment")
    now = now or timezone.now()
    errors: dict[str, list[str]] = {}
    customer = None
    if data.get("customer"):
        from kefu.customers.selectors import customer_list_visible_to

        customers = customer_list_visible_to(user=actor) if actor is not None else Customer.objects
        customer = customers.filter(pk=data["customer"], merged_into__isnull=True).first()
    if customer is None:
        errors["customer"] = [_("Choose a customer.")]
    for field, model in (
        ("conversation", "conversations.Conversation"),
        ("ticket", "tickets.Ticket"),
    ):
        if data.get(field):
            from django.apps import apps

            if not apps.get_model(model).objects.filter(pk=data[field]).exists():
                errors[field] = [_("Not found.")]
    store = Store.objects.filter(pk=data.get("store"), is_active=True).first()
    if store is None:
        errors["store"] = [_("Choose a store.")]
    starts_at = _parse_when(data.get("starts_at"), errors)
    source = data.get("source") or Appointment.Source.PROFILE
    if source not in Appointment.Source.values:
        errors["source"] = [_("Choose from the list.")]
    if errors:
        raise ValidationFailed(errors)
    schedule = store_schedule(store)
    if not schedule.is_open_for_booking:
        raise ValidationFailed({"store": [_("This store takes no appointments.")]})
    if starts_at <= now:
        raise ValidationFailed({"starts_at": [_("Choose a time in the future.")]})
    local_day = timezone.localtime(starts_at).date()
    if starts_at not in slot_starts(store, local_day):
        raise ValidationFailed({"starts_at": [_("The store has no slot at this time.")]})
    # The slot row exists once (a concurrent insert is ignored), then is locked for the count.
    AppointmentSlot.objects.bulk_create(
        [AppointmentSlot(store=store, starts_at=starts_at)], ignore_conflicts=True
    )
    slot = AppointmentSlot.objects.select_for_update().get(store=store, starts_at=starts_at)
    if slot.booked >= schedule.capacity:
        raise Conflict(
            _("This slot is full. Choose another time."),
            code="slot_full",
            errors={"starts_at": [_("This slot is full.")]},
        )
    if Appointment.objects.filter(
        customer=customer, store=store, starts_at=starts_at, status=Appointment.Status.BOOKED
    ).exists():
        raise Conflict(_("The customer is booked into this slot already."), code="booked_twice")
    AppointmentSlot.objects.filter(pk=slot.pk).update(booked=F("booked") + 1)
    appointment = Appointment.objects.create(
        customer=customer,
        store=store,
        starts_at=starts_at,
        ends_at=starts_at + dt.timedelta(minutes=schedule.slot_minutes),
        source=source,
        conversation_id=data.get("conversation") or None,
        ticket_id=data.get("ticket") or None,
        purpose=str(data.get("purpose") or "").strip()[:200],
        booked_by=actor,
    )
    CustomerEvent.objects.create(
        customer=customer,
        kind=CustomerEvent.Kind.APPOINTMENT_BOOKED,
        actor=actor,
        data={"appointment": appointment.pk, "store": store.name, "at": starts_at.isoformat()},
    )
    managers = User.objects.filter(store=store, role=Role.STORE_MANAGER, is_active=True)
    notify(
        managers,
        kind="appointment_booked",
        title=_("%(customer)s booked for %(when)s")
        % {
            "customer": customer.name,
            "when": timezone.localtime(starts_at).strftime("%m-%d %H:%M"),
        },
        body=appointment.purpose,
        url=f"/appointments/?store={store.pk}&day={local_day.isoformat()}",
    )
    _reminder_schedule(appointment, now=now)
    return appointment


def _reminder_schedule(appointment: Appointment, *, now: dt.datetime) -> None:
    from kefu.appointments.tasks import appointment_reminder_task

    eta = max(appointment.reminder_due_at(), now)
    appointment_id = appointment.pk
    transaction.on_commit(lambda: appointment_reminder_task.schedule((appointment_id,), eta=eta))


def _lock(appointment_id: int) -> Appointment:
    appointment = (
        Appointment.objects.select_for_update(of=("self",))
        .select_related("customer", "store")
        .filter(pk=appointment_id)
        .first()
    )
    if appointment is None:
        raise NotFound(_("Appointment not found."))
    return appointment


def _require_store(actor: User | None, appointment: Appointment) -> None:
    """A store manager works only their own store's appointments."""
    if (
        actor is not None
        and actor.role == Role.STORE_MANAGER
        and actor.store_id != appointment.store_id
    ):
        raise NotFound(_("Appointment not found."))


def _release(appointment: Appointment) -> None:
    AppointmentSlot.objects.filter(
        store=appointment.store, starts_at=appointment.starts_at, booked__gt=0
    ).update(booked=F("booked") - 1)


@transaction.atomic
def appointment_cancel(*, actor: User | None, appointment_id: int, reason: str = "") -> Appointment:
    require_perm(actor, "appointments.change_appointment")
    appointment = _lock(appointment_id)
    _require_store(actor, appointment)
    if appointment.status != Appointment.Status.BOOKED:
        raise Conflict(_("Only a booked appointment can be cancelled."), code="not_booked")
    appointment.status = Appointment.Status.CANCELLED
    appointment.visit_note = reason.strip()
    appointment.save(update_fields=["status", "visit_note", "updated_at"])
    _release(appointment)
    return appointment


@transaction.atomic
def appointment_record_visit(
    *,
    actor: User | None,
    appointment_id: int,
    arrived: bool,
    note: str = "",
    purchase_amount: Any = None,
    order_no: str = "",
    now: dt.datetime | None = None,
) -> Appointment:
    """The store records the visit: arrived (with what it led to: a purchase, an order) or a
    no-show. A purchase counts for the customer's purchase rhythm."""
    require_perm(actor, "appointments.record_visit")
    now = now or timezone.now()
    appointment = _lock(appointment_id)
    _require_store(actor, appointment)
    if appointment.status != Appointment.Status.BOOKED:
        raise Conflict(_("The visit is recorded already."), code="visit_recorded")
    amount = None
    if purchase_amount not in (None, ""):
        try:
            amount = Decimal(str(purchase_amount))
        except InvalidOperation:
            amount = None
        if amount is None or amount < 0:
            raise ValidationFailed({"purchase_amount": [_("An amount of 0 or more.")]})
    if not arrived and (amount or order_no):
        raise ValidationFailed({"purchase_amount": [_("A no-show has no purchase.")]})
    appointment.status = Appointment.Status.ARRIVED if arrived else Appointment.Status.NO_SHOW
    appointment.visited_at = now
    appointment.visit_note = note.strip()
    appointment.purchase_amount = amount
    appointment.order_no = order_no.strip()[:50]
    appointment.recorded_by = actor
    appointment.save()
    CustomerEvent.objects.create(
        customer=appointment.customer,
        kind=CustomerEvent.Kind.APPOINTMENT_VISITED
        if arrived
        else CustomerEvent.Kind.APPOINTMENT_MISSED,
        actor=actor,
        data={
            "appointment": appointment.pk,
            "store": appointment.store.name,
            "purchase_amount": str(amount) if amount is not None else "",
            "order_no": appointment.order_no,
        },
    )
    if arrived:
        customer_touch(
            customer_id=appointment.customer_id,
            on=timezone.localdate(now),
            purchase=bool(amount) or bool(appointment.order_no),
        )
    return appointment


def appointment_remind(*, appointment_id: int, now: dt.datetime | None = None) -> bool:
    """Send the customer the reminder for tomorrow's visit, once (SMS through the gateway)."""
    from kefu.campaigns.gateways import GatewayError, gateway_for
    from kefu.campaigns.sms import sms_compose
    from kefu.customers.models import ContactPoint

    now = now or timezone.now()
    with transaction.atomic():
        appointment = (
            Appointment.objects.select_for_update(of=("self",))
            .select_related("customer", "store")
            .filter(pk=appointment_id)
            .first()
        )
        if (
            appointment is None
            or appointment.status != Appointment.Status.BOOKED
            or appointment.reminder_sent_at is not None
            or appointment.starts_at <= now
        ):
            return False
        phone = (
            ContactPoint.objects.filter(customer=appointment.customer, kind=ContactPoint.Kind.PHONE)
            .order_by("-is_primary", "id")
            .values_list("value", flat=True)
            .first()
        )
        appointment.reminder_sent_at = now
        appointment.save(update_fields=["reminder_sent_at"])
        if not phone:
            return False
        when = timezone.localtime(appointment.starts_at).strftime("%m月%d日 %H:%M")
        body = _(
            "%(name)s, a reminder of your visit to %(store)s at %(when)s. Address: %(address)s."
        ) % {
            "name": appointment.customer.name,
            "store": appointment.store.name,
            "when": when,
            "address": appointment.store.address or appointment.store.name,
        }
        try:
            gateway_for("sms").send(
                to=phone,
                subject="",
                body=sms_compose(body, marketing=False),  # 【签名】; transactional: no footer
                reference=f"appointment-{appointment.pk}-reminder",
                customer=appointment.customer,
            )
        except GatewayError:
            # Sent at most once: a failed reminder is left for the store to call.
            return False
    return True


def appointment_reminders_run(*, now: dt.datetime) -> int:
    """Safety net: every reminder due and not sent (a worker was down at its time)."""
    tomorrow_end = timezone.localtime(now).replace(hour=23, minute=59) + dt.timedelta(days=1)
    due = Appointment.objects.filter(
        status=Appointment.Status.BOOKED,
        reminder_sent_at__isnull=True,
        starts_at__gt=now,
        starts_at__lte=tomorrow_end,
    ).values_list("pk", flat=True)
    sent = 0
    for appointment_id in list(due):
        appointment = Appointment.objects.get(pk=appointment_id)
        if appointment.reminder_due_at() <= now and appointment_remind(
            appointment_id=appointment_id, now=now
        ):
            sent += 1
    return sent
