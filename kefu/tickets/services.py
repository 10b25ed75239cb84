"""Every write to tickets: one transaction each, a TicketEvent for the timeline, notifications and
mail only on commit. The workflow:

    new → assigned → in progress → waiting on department / waiting on customer → resolved → closed

and back to in progress when the customer objects within the reopen window.
"""

import datetime as dt
from decimal import Decimal, InvalidOperation
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from kefu.accounts.models import Store, User
from kefu.businesstime.selectors import work_calendar_get
from kefu.core.attachments import attachment_check, attachment_content_type
from kefu.core.exceptions import Forbidden, ValidationFailed
from kefu.core.models import sequence_next
from kefu.core.permissions import has_perm, require_perm
from kefu.customers.models import ContactPoint, Customer, CustomerEvent, Tag
from kefu.customers.selectors import customer_get_for_user
from kefu.customers.services import (
    customer_get_or_create_by_contact,
    customer_phone_reveal_for_call,
)
from kefu.followups.models import FollowUp
from kefu.followups.services import followup_cancel_for_ticket, followup_create
from kefu.notifications.services import notify
from kefu.tickets import routing, sla
from kefu.tickets.exceptions import (
    AcceptanceAlreadyRecorded,
    HandoffNotOpen,
    TicketReopenWindowPassed,
    TicketTransitionNotAllowed,
)
from kefu.tickets.models import (
    Category,
    Department,
    ExternalEscalation,
    Queue,
    QueueMember,
    RootCause,
    SlaPolicy,
    Ticket,
    TicketAttachment,
    TicketConfig,
    TicketEvent,
    TicketHandoff,
)
from kefu.tickets.selectors import (
    department_handlers,
    staff_to_escalate,
    ticket_get_for_user,
)

NUMBER_PREFIX = "GD"
NUMBER_SEQUENCE = "ticket_number"

S = Ticket.Status
OPEN_STATUSES = {S.NEW, S.ASSIGNED, S.IN_PROGRESS, S.WAITING_DEPARTMENT, S.WAITING_CUSTOMER}

# action: (statuses it may start from, status it leads to; None keeps the status)
TRANSITIONS: dict[str, tuple[set[str], str | None]] = {
    "assign": (OPEN_STATUSES, None),
    "start": ({S.NEW, S.ASSIGNED}, S.IN_PROGRESS),
    "hand_off": ({S.NEW, S.ASSIGNED, S.IN_PROGRESS, S.WAITING_CUSTOMER}, S.WAITING_DEPARTMENT),
    "wait_customer": ({S.ASSIGNED, S.IN_PROGRESS}, S.WAITING_CUSTOMER),
    "resume": ({S.WAITING_CUSTOMER}, S.IN_PROGRESS),
    "resolve": (OPEN_STATUSES - {S.NEW}, S.RESOLVED),
    "close": ({S.RESOLVED}, S.CLOSED),
    "reopen": ({S.RESOLVED, S.CLOSED}, S.IN_PROGRESS),
    "reply": (OPEN_STATUSES, None),
    "update": (OPEN_STATUSES, None),
}
ACTION_LABELS = {
    "assign": gettext_lazy("assigned"),
    "start": gettext_lazy("started"),
    "hand_off": gettext_lazy("handed to a department"),
    "wait_customer": gettext_lazy("put on hold for the customer"),
    "resume": gettext_lazy("resumed"),
    "resolve": gettext_lazy("resolved"),
    "close": gettext_lazy("closed"),
    "reopen": gettext_lazy("reopened"),
    "reply": gettext_lazy("answered"),
    "update": gettext_lazy("edited"),
}

EDITABLE_FIELDS = (
    "type",
    "channel",
    "category",
    "severity",
    "subject",
    "description",
    "store",
    "order_ref",
    "tags",
)


def ticket_number_format(value: int) -> str:
    return f"{NUMBER_PREFIX}{value:08d}"


# --- Helpers --------------------------------------------------------------------------------


def _check(ticket: Ticket, action: str) -> str | None:
    allowed, target = TRANSITIONS[action]
    if ticket.status not in allowed:
        raise TicketTransitionNotAllowed(
            action=ACTION_LABELS[action], status=ticket.get_status_display()
        )
    return target


def _event(
    ticket: Ticket,
    kind: str,
    *,
    actor: User | None,
    now: dt.datetime,
    data: dict[str, Any] | None = None,
    public: bool = False,
) -> TicketEvent:
    return TicketEvent.objects.create(
        ticket=ticket, kind=kind, actor=actor, data=data or {}, is_public=public, created_at=now
    )


def _set_status(
    ticket: Ticket, status: str, *, actor: User | None, now: dt.datetime, reason: str = ""
) -> None:
    if ticket.status == status:
        return
    data = {"from": ticket.status, "to": status}
    if reason:
        data["reason"] = reason
    ticket.status = status
    _event(ticket, TicketEvent.Kind.STATUS_CHANGED, actor=actor, now=now, data=data, public=True)


def _department_mail(handoff: TicketHandoff) -> None:
    """Departments with a shared mailbox get hand-offs and urges by e-mail too (after commit)."""
    if handoff.department.email and settings.SMTP_ENABLED:
        from kefu.tickets.tasks import handoff_email_task

        handoff_id, count = handoff.pk, handoff.urge_count
        transaction.on_commit(lambda: handoff_email_task(handoff_id, count))


def _customer_event(ticket: Ticket, kind: str, *, actor: User | None) -> None:
    CustomerEvent.objects.create(
        customer_id=ticket.customer_id,
        kind=kind,
        actor=actor,
        data={
            "ticket_id": ticket.pk,
            "number": ticket.number,
            "subject": ticket.subject,
            "type": ticket.type,
        },
    )


def _clock(ticket: Ticket) -> sla.Clock:
    if ticket.sla_policy is not None and not ticket.sla_policy.business_hours:
        return sla.WallClock()
    return work_calendar_get()


def _leads(ticket: Ticket) -> list[User]:
    """The supervisors and the managers: told of major and externally escalated complaints."""
    return staff_to_escalate(level=1, ticket=ticket) + staff_to_escalate(level=2, ticket=ticket)


def _title(ticket: Ticket, text: str) -> str:
    return f"{ticket.number} {text}：{ticket.subject}"


def _notify(users, kind: str, ticket: Ticket, text: str, body: str = "") -> None:
    notify(users, kind=kind, title=_title(ticket, text), body=body, url=ticket.get_absolute_url())


def _lock(*, actor: User | None, ticket_id: int) -> Ticket:
    ticket = ticket_get_for_user(user=actor, ticket_id=ticket_id, for_update=True)
    if ticket.sla_policy_id:
        ticket.sla_policy = SlaPolicy.objects.get(pk=ticket.sla_policy_id)
    return ticket


def _require_worker(actor: User | None, ticket: Ticket) -> None:
    """Working a ticket needs change_ticket."""
    require_perm(actor, "tickets.change_ticket")


def _require_worker_or_handler(actor: User | None, ticket: Ticket) -> None:
    """Notes and files: those who work the ticket, and handlers of a department it was handed to."""
    if actor is None or has_perm(actor, "tickets.change_ticket"):
        return
    if (
        has_perm(actor, "tickets.answer_handoff")
        and TicketHandoff.objects.filter(ticket=ticket, department__handlers=actor).exists()
    ):
        return
    raise Forbidden()


def _apply_policy(ticket: Ticket, *, customer_level: str) -> None:
    ticket.sla_policy = sla.policy_pick(
        SlaPolicy.objects.filter(is_active=True),
        ticket_type=ticket.type,
        severity=ticket.severity,
        customer_level=customer_level,
    )


# --- Input rules shared by create and update --------------------------------------------------


def ticket_clean(data: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Check ticket fields; returns cleaned values or raises ValidationFailed naming each field."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    unknown = set(data) - set(EDITABLE_FIELDS)
    for field in sorted(unknown):
        errors.setdefault(field, []).append(_("Unknown field."))
    required = () if partial else ("type", "subject")
    for field in required:
        if not data.get(field):
            errors[field] = [_("This field is required.")]
    choices = {"type": Ticket.Type, "channel": Ticket.Channel, "severity": Ticket.Severity}
    for field, enum in choices.items():
        if field in data and data[field] not in (None, ""):
            if data[field] not in enum.values:
                errors[field] = [
                    _("“%(value)s” is not one of: %(choices)s.")
                    % {"value": data[field], "choices": ", ".join(enum.values)}
                ]
            else:
                cleaned[field] = data[field]
    if data.get("subject"):
        subject = str(data["subject"]).strip()
        if len(subject) > 200:
            errors["subject"] = [_("A subject has at most 200 characters.")]
        cleaned["subject"] = subject
    for field, limit in (("description", 20000), ("order_ref", 64)):
        if field in data:
            value = str(data[field] or "").strip()
            if len(value) > limit:
                errors[field] = [_("At most %(n)s characters.") % {"n": limit}]
            cleaned[field] = value
    if "category" in data:
        category = data["category"]
        if category in (None, ""):
            cleaned["category"] = None
        else:
            pk = category.pk if isinstance(category, Category) else category
            found = (
                Category.objects.filter(pk=pk, is_active=True).first()
                if str(pk).isdigit()
                else None
            )
            if found is None:
                errors["category"] = [_("Unknown category.")]
            cleaned["category"] = found
    if "store" in data:
        store = data["store"]
        if store in (None, ""):
            cleaned["store"] = None
        else:
            pk = store.pk if isinstance(store, Store) else store
            found = Store.objects.filter(pk=pk).first() if str(pk).isdigit() else None
            if found is None:
                errors["store"] = [_("Unknown store.")]
            cleaned["store"] = found
    if "tags" in data:
        names = data["tags"] or []
        if isinstance(names, str):
            names = names.replace("，", ",").split(",")
        cleaned["tags"] = sorted({str(n).strip()[:50] for n in names if str(n).strip()})
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def _tags_set(ticket: Ticket, names: list[str]) -> None:
    existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    missing = [Tag(name=n) for n in names if n not in existing]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    ticket.tags.set(existing.values())


def _customer_resolve(
    *, actor: User | None, data: dict[str, Any], channel: str, now: dt.datetime
) -> tuple[Customer, bool]:
    customer = data.get("customer")
    if customer not in (None, ""):
        pk = customer.pk if isinstance(customer, Customer) else customer
        return customer_get_for_user(user=actor, customer_id=pk), False
    phone = str(data.get("phone") or "").strip()
    if not phone:
        raise ValidationFailed(
            {"customer": [_("Choose the customer or enter the caller's phone.")]}
        )
    source = channel if channel in Customer.Source.values else Customer.Source.PHONE
    try:
        return customer_get_or_create_by_contact(
            actor=actor,
            kind="phone",
            value=phone,
            name=str(data.get("caller_name") or ""),
            source=source,
            now=now,
        )
    except ValidationFailed as exc:
        raise ValidationFailed(
            {"phone": [m for msgs in exc.errors.values() for m in msgs]}
        ) from None


def _assignee_resolve(actor: User | None, value: Any) -> User | None:
    if value in (None, ""):
        return None
    pk = value.pk if isinstance(value, User) else value
    user = User.objects.filter(pk=pk, is_active=True).first() if str(pk).isdigit() else None
    if user is None or not user.has_perm("tickets.change_ticket"):
        raise ValidationFailed({"assignee": [_("Choose an active member of customer service.")]})
    if actor is not None and user != actor and not actor.has_perm("tickets.assign_ticket"):
        raise Forbidden(_("Only supervisors and complaint specialists assign tickets to others."))
    return user


def _when(value: Any, field: str, *, now: dt.datetime, future: bool = True) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValidationFailed({field: [_("Enter a date and time.")]}) from None
    if not isinstance(value, dt.datetime):
        raise ValidationFailed({field: [_("Enter a date and time.")]})
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    if future and value <= now:
        raise ValidationFailed({field: [_("The time must be in the future.")]})
    return value


# --- Opening and editing ----------------------------------------------------------------------


@transaction.atomic
def ticket_create(
    *, actor: User | None, data: dict[str, Any], now: dt.datetime | None = None
) -> Ticket:
    """Open a ticket: pick the customer (an unknown caller becomes a prospect), number it, start
    its SLA clocks and route it to a queue and an agent."""
    require_perm(actor, "tickets.add_ticket")
    now = now or timezone.now()
    data = dict(data)
    extra = {
        k: data.pop(k)
        for k in ("customer", "phone", "caller_name", "assignee", "callback_due_at")
        if k in data
    }
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    try:
        cleaned = ticket_clean(data)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    callback_due_at = None
    if extra.get("callback_due_at"):
        try:
            callback_due_at = _when(extra["callback_due_at"], "callback_due_at", now=now)
        except ValidationFailed as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    assignee = _assignee_resolve(actor, extra.get("assignee"))
    customer, customer_created = _customer_resolve(
        actor=actor,
        data=extra,
        channel=cleaned.get("channel", Ticket.Channel.PHONE),
        now=now,
    )
    tags = cleaned.pop("tags", [])
    if cleaned.get("store") is None and customer.store_id:
        cleaned["store"] = customer.store
    if actor is not None and actor.role == "store_manager" and actor.store_id:
        cleaned["store"] = actor.store
    ticket = Ticket(**cleaned, customer=customer, created_by=actor)
    ticket.number = ticket_number_format(sequence_next(NUMBER_SEQUENCE))
    _apply_policy(ticket, customer_level=customer.level)
    if ticket.sla_policy is not None:
        clock = _clock(ticket)
        for metric in (sla.FIRST_RESPONSE, sla.RESOLUTION):
            sla.start(ticket, metric, clock=clock, now=now)
    ticket.is_impact_watched = ticket.is_complaint and ticket.severity == Ticket.Severity.MAJOR
    ticket.queue = routing.queue_for(ticket)
    if assignee is None:
        if ticket.queue is not None:
            Queue.objects.select_for_update().filter(pk=ticket.queue.pk).first()
        assignee = routing.agent_pick(ticket.queue, ticket, now=now)
    ticket.save()
    # created_at must match the clock the caller used (tests run on a frozen clock).
    Ticket.objects.filter(pk=ticket.pk).update(created_at=now)
    ticket.created_at = now
    if tags:
        _tags_set(ticket, tags)
    _event(
        ticket,
        TicketEvent.Kind.CREATED,
        actor=actor,
        now=now,
        data={
            "type": ticket.type,
            "channel": ticket.channel,
            "severity": ticket.severity,
            "queue": ticket.queue.name if ticket.queue else "",
            "customer_created": customer_created,
        },
        public=True,
    )
    _customer_event(ticket, CustomerEvent.Kind.TICKET_OPENED, actor=actor)
    if assignee is not None:
        _assign(ticket, assignee, actor=actor, now=now, note="")
    if callback_due_at is not None:
        _callback(ticket, due_at=callback_due_at, actor=actor, now=now, note="")
    ticket.save()
    if ticket.severity == Ticket.Severity.MAJOR:
        _notify(
            _leads(ticket),
            "ticket_major",
            ticket,
            _("Major %(type)s opened") % {"type": ticket.get_type_display()},
            ticket.description,
        )
    return ticket


@transaction.atomic
def ticket_update(
    *, actor: User | None, ticket_id: int, data: dict[str, Any], now: dt.datetime | None = None
) -> Ticket:
    """Edit what the ticket is about; a new type or severity re-picks the SLA policy."""
    now = now or timezone.now()
    ticket = _lock(actor=actor, ticket_id=ticket_id)
    _require_worker(actor, ticket)
    _check(ticket, "update")
    cleaned = ticket_clean(data, partial=True)
    tags = cleaned.pop("tags", None)
    changed = [f for f, v in cleaned.items() if getattr(ticket, f) != v]
    for field in changed:
        setattr(ticket, field, cleaned[field])
    if tags is not None and sorted(t.name for t in ticket.tags.all()) != tags:
        _tags_set(ticket, tags)
        changed.append("tags")
    if not changed:
        return ticket
    if {"type", "severity"} & set(changed):
        old_policy = ticket.sla_policy_id
        _apply_policy(ticket, customer_level=ticket.customer.level)
        if ticket.sla_policy_id != old_policy:
            clock = _clock(ticket)
            for metric in sla.METRICS:
                if sla.is_pending(ticket, metric) or (
                    metric != sla.NEXT_RESPONSE and ticket.sla_policy and old_policy is None
                ):
                    started = ticket.sla_marks.get(metric, {}).get("started_at")
                    origin = dt.datetime.fromisoformat(started) if started else ticket.created_at
                    sla.start(ticket, metric, clock=clock, now=origin)
        if ticket.is_complaint and ticket.severity == Ticket.Severity.MAJOR:
            ticket.is_impact_watched = True
    ticket.save()
    _event(ticket, TicketEvent.Kind.UPDATED, actor=actor, now=now, data={"fields": changed})
    return ticket


# --- Assignment -------------------------------------------------------------------------------


def _assign(
    ticket: Ticket, assignee: User, *, actor: User | None, now: dt.datetime, note: str
) -> None:
    previous = ticket.assignee
    ticket.assignee = assignee
    if ticket.status == S.NEW:
        _set_status(ticket, S.ASSIGNED, actor=actor, now=now)
    _event(
        ticket,
        TicketEvent.Kind.ASSIGNED,
        actor=actor,
        now=now,
        data={
            "from": str(previous) if previous else "",
            "from_id": previous.pk if previous else None,
            "to": str(assignee),
            "to_id": assignee.pk,
            "note": note,
        },
    )
    if assignee != actor:
        _notify([assignee], "ticket_assigned", ticket, _("assigned to you"), note)


@transaction.atomic
def ticket_assign(
    *,
    actor: User | None,
    ticket_id: int,
    assignee_id: int | None = None,
    queue_id: int | None = None,
    note: str = "",
    now: dt.datetime | None = None,
) -> Ticket:
    """Give the ticket to an agent (taking it oneself, or by a supervisor), or move it to a queue."""
    now = now or timezone.now()
    ticket = _lock(actor=actor, ticket_id=ticket_id)
    _require_worker(actor, ticket)
    _check(ticket, "assign")
    if queue_id is not None:
        queue = Queue.objects.filter(pk=queue_id, is_active=True).first()
        if queue is None:
            raise ValidationFailed({"queue": [_("Unknown queue.")]})
        require_perm(actor, "tickets.assign_ticket")
        ticket.queue = queue
        if assignee_id is None:
            picked = routing.agent_pick(queue, ticket, now=now)
            if picked is not None:
                _assign(ticket, picked, actor=actor, now=now, note=note)
    if assignee_id is not None:
        assignee = _assignee_resolve(actor, assignee_id)
        if assignee != ticket.assignee:
            _assign(ticket, assignee, actor=actor, now=now, note=note)
    elif queue_id is None:
        raise ValidationFailed({"assignee": [_("Choose who takes the ticket.")]})
    ticket.save()
    return ticket


# --- Working the ticket -----------------------------------------------------------------------


@transaction.atomic
def ticket_start(*, actor: User | None, ticket_id: int, now: dt.datetime | None = None) -> Ticket:
    """Start work; an unassigned ticket goes to whoever starts it."""
    now = now or timezone.now()
    ticket = _lock(actor=actor, ticket_id=ticket_id)
    _require_worker(actor, ticket)
    target = _check(ticket, "start")
    if ticket.assignee_id is None and actor is not None:
        _assign(ticket, actor, actor=actor, now=now, note="")
    _set_status(ticket, target, actor=actor, now=now)
    ticket.save()
    return ticket


def _reply_received(ticket: Ticket, *, now: dt.datetime) -> None:
    """The customer heard from us: first and next response clocks stop."""
    if ticket.first_responded_at is None:
        ticket.first_responded_at = now
    sla.stop(ticket, sla.NEXT_RESPONSE)
    sla.refresh_next_check(ticket)


@transaction.atomic
def ticket_reply(
    *,
    actor: User | None,
    ticket_id: int,
    body: str,
    channel: str = Ticket.Channel.PHONE,
    now: dt.datetime | None = None,
) -> TicketEvent:
    """Record an answer given to the customer (by phone, message or the status page); it stops the
    response clocks and shows on the customer's status page."""
    now = now or timezone.now()
    ticket = _lock(actor=actor, ticket_id=ticket_id)
    _require_worker(actor, ticket)
    _check(ticket, "reply")
    body = (body or "").strip()
    if not body:
        raise ValidationFailed({"body": [_("Write what the customer was told.")]})
    if channel not in Ticket.Channel.values:
        raise ValidationFailed({"channel": [_("Unknown channel.")]})
    _reply_received(ticket, now=now)
    if ticket.status in (S.NEW, S.ASSIGNED):
        if ticket.assignee_id is None and actor is not None:
            _assign(ticket, actor, actor=actor, now=now, note="")
        _set_status(ticket, S.IN_PROGRESS, actor=actor, now=now)
    ticket.save()
    return _event(
        ticket,
        TicketEvent.Kind.REPLIED,
        actor=actor,
        now=now,
        data={"body": body, "channel": channel},
        public=True,
    )


@transaction.atomic
def ticket_note(
    *, actor: User | None, ticket_id: int, body: str, now: dt.datetime | None = None
) -> TicketEvent:
    """An internal note by those who work the ticket or a department it was handed to."""
    now = now or timezone.now()
    ticket = ticket_get_for_user(user=actor, ticket_id=ticket_id, for_update=True)
    _require_worker_or_handler(actor, ticket)
    body = (body or "").strip()
    if not body:
        raise ValidationFailed({"body": [_("Write the note.")]})
    return _event(ticket, TicketEvent.Kind.NOTE, actor=actor, now=now, data={"body": body})


@transaction.atomic
def ticket_wait_customer(
    *, actor: User | None, ticket_id: int, reason: str = "", now: dt.datetime | None = None
) -> Ticket:
    """Put the ticket on hold for the customer (documents, a visit): every SLA clock pauses."""
    now = now or timezone.now()
    ticket = _lock(actor=actor, ticket_id=ticket_id)
    _require_worker(actor, ticket)
    target = _check(ticket, "wait_customer")
    _set_status(ticket, target, actor=actor, now=now, reason=reason.strip())
    sla.pause(ticket, now=now)
    ticket.save()
    return ticket


def _resume(ticket: Ticket, *, actor: User | None, now: dt.datetime, reason: str = "") -> None:
    sla.resume(ticket, clock=_clock(ticket), now=now)
    _set_status(ticket, S.IN_PROGRESS, actor=actor, now=now, reason=reason)


@transaction.atomic
def ticket_resume(*, actor: User | None, ticket_id: int, now: dt.datetime | None = None) -> Ticket:
    """Back to work after waiting on the customer; the clocks go on from where they stopped."""
    now = now or timezone.now()
    ticket = _lock(actor=actor, ticket_id=ticket_id)
    _require_worker(actor, ticket)
    _check(ticket, "resume")
    _resume(ticket, actor=actor, now=now)
    ticket.save()
    return ticket


# --- Department hand-offs ---------------------------------------------------------------------


@transaction.atomic
def ticket_hand_off(
    *,
    actor: User | None,
    ticket_id: int,
    department_id: int,
    instructions: str,
    due_at: dt.datetime | str | None = None,
    now: dt.datetime | None = None,
) -> TicketHandoff:
    """Hand the ticket to another department with a due time; its handlers are told, and it is
    urged automatically until they answer."""
    now = now or timezone.now()
    ticket = _lock(actor=actor, ticket_id=ticket_id)
    _require_worker(actor, ticket)
    target = _check(ticket, "hand_off")
    errors: dict[str, list[str]] = {}
    department = (
        Department.objects.filter(pk=department_id, is_active=True).first()
        if str(department_id).isdigit()
        else None
    )
    if department is None:
        errors["department"] = [_("Choose a department.")]
    instructions = (instructions or "").strip()
    if not instructions:
        errors["instructions"] = [_("Say what the department should do.")]
    calendar = work_calendar_get()
    if due_at in (None, ""):
        due = calendar.add(now, dt.timedelta(hours=8))  # one working day
    else:
        try:
            due = _when(due_at, "due_at", now=now)
        except ValidationFailed as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    if ticket.status == S.WAITING_CUSTOMER:
        sla.resume(ticket, clock=_clock(ticket), now=now)
    handoff = TicketHandoff.objects.create(
        ticket=ticket,
        department=department,
        requested_by=actor,
        instructions=instructions,
        due_at=due,
        next_urge_at=calendar.add(now, dt.timedelta(minutes=department.urge_interval_minutes)),
    )
    ticket.department = department
    if ticket.assignee_id is None and actor is not None:
        _assign(ticket, actor, actor=actor, now=now, note="")
    _set_status(ticket, target, actor=actor, now=now)
    ticket.save()
    _event(
        ticket,
        TicketEvent.Kind.HANDED_OFF,
        actor=actor,
        now=now,
        data={
            "handoff_id": handoff.pk,
            "department": department.name,
            "instructions": instructions,
            "due_at": due.isoformat(),
        },
    )
    _notify(
        department_handlers(department=department),
        "handoff_received",
        ticket,
        _("handed to %(department)s, answer by %(due)s")
        % {"department": department.name, "due": timezone.localtime(due).strftime("%m-%d %H:%M")},
        instructions,
    )
    _department_mail(handoff)
    return handoff


def _handoff_lock(ticket: Ticket) -> TicketHandoff:
    handoff = (
        TicketHandoff.objects.select_for_update(of=("self",))
        .select_related("department")
        .filter(ticket=ticket, status=TicketHandoff.Status.OPEN)
        .first()
    )
    if handoff is None:
        raise HandoffNotOpen(_("The ticket is not waiting on a department."))
    return handoff


def _require_handler(actor: User | None, department: Department) -> None:
    if actor is None or has_perm(actor, "tickets.assign_ticket"):
        return
    if not (
        has_perm(actor, "tickets.answer_handoff")
        and department.handlers.filter(pk=actor.pk).exists()
    ):
        raise Forbidden(
            _("Only handlers of %(department)s answer this.") % {"department": department.name}
        )


@transaction.atomic
def handoff_answer(
    *,
    actor: User | None,
    ticket_id: int,
    answer: str,
    resolution: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> Ticket:
    """The department answers: the ticket goes back to its agent, or is resolved when the answer
    carries the resolution."""
    now = now or timezone.now()
    ticket = _lock(actor=actor, ticket_id=ticket_id)
    if ticket.status != S.WAITING_DEPARTMENT:
        raise TicketTransitionNotAllowed(
            action=_("answered by the department"), status=ticket.get_status_display()
        )
    handoff = _handoff_lock(ticket)
    _require_handler(actor, handoff.department)
    answer = (answer or "").strip()
    if not answer:
        raise ValidationFailed({"answer": [_("Write the department's answer.")]})
    cleaned_resolution = _resolution_clean(ticket, resolution) if resolution else None
    handoff.status = TicketHandoff.Status.ANSWERED
    handoff.answer = answer
    handoff.answered_by = actor
    handoff.answered_at = now
    handoff.next_urge_at = None
    handoff.save()
    ticket.department = None
    _event(
        ticket,
        TicketEvent.Kind.HANDOFF_ANSWERED,
        actor=actor,
        now=now,
        data={"handoff_id": handoff.pk, "department": handoff.department.name, "answer": answer},
    )
    if cleaned_resolution is not None:
        _resolve(ticket, cleaned_resolution, actor=actor, now=now)
    else:
        _set_status(ticket, S.IN_PROGRESS, actor=actor, now=now)
    ticket.save()
    if ticket.assignee_id and ticket.assignee != actor:
        _notify(
            [ticket.assignee],
            "handoff_answered",
            ticket,
            _("%(department)s answered") % {"department": handoff.department.name},
            answer,
        )
    return ticket


@transaction.atomic
def handoff_cancel(
    *, actor: User | None, ticket_id: int, reason: str = "", now: dt.datetime | None = None
) -> Ticket:
    """Withdraw the hand-off; the ticket goes back to in progress."""
    now = now or timezone.now()
    ticket = _lock(actor=actor, ticket_id=ticket_id)
    _require_worker(actor, ticket)
    handoff = _handoff_lock(ticket)
    handoff.status = TicketHandoff.Status.CANCELLED
    handoff.next_urge_at = None
    handoff.save()
    ticket.department = None
    _event(
        ticket,
        TicketEvent.Kind.HANDOFF_CANCELLED,
        actor=actor,
        now=now,
        data={"handoff_id": handoff.pk, "department": handoff.department.name, "reason": reason},
    )
    _set_status(ticket, S.IN_PROGRESS, actor=actor, now=now, reason=reason)
    ticket.save()
    return ticket


@transaction.atomic
def handoff_urge(*, handoff_id: int, now: dt.datetime) -> bool:
    """Urge one unanswered hand-off whose time has come (idempotent: a second call for the same
    moment does nothing). After the department's thresholds it escalates to the supervisor,
    then the manager. Returns whether it urged."""
    handoff = (
        TicketHandoff.objects.select_for_update(of=("self",))
        .select_related("department", "ticket__queue")
        .filter(pk=handoff_id, status=TicketHandoff.Status.OPEN, next_urge_at__lte=now)
        .first()
    )
    if handoff is None:
        return False
    department, ticket = handoff.department, handoff.ticket
    handoff.urge_count += 1
    level = 0
    if handoff.urge_count >= department.escalate_manager_after:
        level = 2
    elif handoff.urge_count >= department.escalate_supervisor_after:
        level = 1
    calendar = work_calendar_get()
    handoff.next_urge_at = calendar.add(now, dt.timedelta(minutes=department.urge_interval_minutes))
    _event(
        ticket,
        TicketEvent.Kind.URGED,
        actor=None,
        now=now,
        data={
            "handoff_id": handoff.pk,
            "department": department.name,
            "count": handoff.urge_count,
            "overdue": now >= handoff.due_at,
        },
    )
    _notify(
        department_handlers(department=department),
        "handoff_urged",
        ticket,
        _("urge no. %(n)s: please answer (due %(due)s)")
        % {
            "n": handoff.urge_count,
            "due": timezone.localtime(handoff.due_at).strftime("%m-%d %H:%M"),
        },
        handoff.instructions,
    )
    if level > handoff.escalation_level:
        handoff.escalation_level = level
        _escalate(ticket, level=level, now=now, reason="handoff", detail=department.name)
    handoff.save()
    ticket.save()
    _department_mail(handoff)
    return True


def _escalate(
    ticket: Ticket, *, level: int, now: dt.datetime, reason: str, detail: str = ""
) -> None:
    ticket.escalation_level = max(ticket.escalation_level, level)
    recipients = staff_to_escalate(level=level, ticket=ticket)
    _event(
        ticket,
        TicketEvent.Kind.ESCALATED,
        actor=None,
        now=now,
        data={
            "level": level,
            "reason": reason,
            "detail": detail,
            "to": [str(u) for u in recipients],
        },
    )
    text = {
        "handoff": _("escalated: %(detail)s has not answered"),
        "sla": _("escalated: SLA breached (%(detail)s)"),
        "callback": _("escalated: promised callback overdue"),
    }[reason] % {"detail": detail}
    _notify(recipients, "ticket_escalated", ticket, text)


# --- SLA timers -------------------------------------------------------------------------------

METRIC_LABELS = {
    sla.FIRST_RESPONSE: gettext_lazy("first response"),
    sla.NEXT_RESPONSE: gettext_lazy("next response"),
    sla.RESOLUTION: pgettext_lazy("sla metric", "resolution"),
}


@transaction.atomic
def ticket_sla_check(*, ticket_id: int, now: dt.datetime) -> list[tuple[str, str]]:
    """Fire the SLA warnings and breaches due on one ticket (idempotent); a breach escalates to the
    supervisor, a major ticket's resolution breach to the manager."""
    ticket = (
        Ticket.objects.select_for_update(of=("self",))
        .select_related("sla_policy", "queue", "assignee")
        .filter(pk=ticket_id)
        .first()
    )
    if ticket is None or ticket.sla_next_check_at is None or ticket.sla_next_check_at > now:
        return []
    fired = sla.fire_due(ticket, now=now)
    for metric, what in fired:
        due = getattr(ticket, f"{metric}_due_at")
        kind = (
            TicketEvent.Kind.SLA_BREACHED if what == sla.BREACHED else TicketEvent.Kind.SLA_WARNING
        )
        _event(
            ticket, kind, actor=None, now=now, data={"metric": metric, "due_at": due.isoformat()}
        )
        label = str(METRIC_LABELS[metric])
        if what == sla.WARNING:
            _notify(
                [ticket.assignee],
                "sla_warning",
                ticket,
                _("%(metric)s due at %(due)s")
                % {"metric": label, "due": timezone.localtime(due).strftime("%m-%d %H:%M")},
            )
        else:
            level = (
                2 if (metric == sla.RESOLUTION and ticket.severity == Ticket.Severity.MAJOR) else 1
            )
            _notify(
                [ticket.assignee],
                "sla_breached",
                ticket,
                _("%(metric)s overdue") % {"metric": label},
            )
            _escalate(ticket, level=1, now=now, reason="sla", detail=label)
            if level == 2:
                _escalate(ticket, level=2, now=now, reason="sla", detail=label)
    ticket.save()
    return fired


def ticket_timers_run(*, now: dt.datetime) -> dict[str, int]:
    """One pass of every ticket timer that is due: SLA warnings and breaches, hand-off urges and
    overdue promised callbacks. Each item runs in its own transaction, so a crash mid-way
    leaves the rest for the next pass and nothing fires twice."""
    from kefu.followups.services import followup_escalate_overdue

    counts = {"sla": 0, "urged": 0, "callbacks": 0}
    for ticket_id in Ticket.objects.sla_check_due(now=now).values_list("pk", flat=True)[:1000]:
        counts["sla"] += len(ticket_sla_check(ticket_id=ticket_id, now=now))
    handoffs = TicketHandoff.objects.filter(
        status=TicketHandoff.Status.OPEN, next_urge_at__lte=now
    ).values_list("pk", flat=True)[:1000]
    for handoff_id in handoffs:
        counts["urged"] += handoff_urge(handoff_id=handoff_id, now=now)
    grace = dt.timedelta(minutes=TicketConfig.current().callback_grace_minutes)
    with transaction.atomic():
        for followup in followup_escalate_overdue(now=now, grace=grace):
            counts["callbacks"] += 1
            if followup.ticket_id:
                ticket = Ticket.objects.select_for_update(of=("self",)).get(pk=followup.ticket_id)
                _escalate(ticket, level=1, now=now, reason="callback")
                ticket.save()
    return counts


# --- Promised callbacks -----------------------------------------------------------------------


def _callback(
    ticket: Ticket, *, due_at: dt.datetime, actor: User | None, now: dt.datetime, note: str
) -> FollowUp:
    followup = followup_create(
        actor=actor,
        customer=ticket.customer,
        purpose=FollowUp.Purpose.PROMISED_CALLBACK,
        due_at=due_at,
        assignee=ticket.assignee or actor,
        ticket=ticket,
        note=note or ticket.subject,
    )
    _event(
        ticket,
        TicketEvent.Kind.CALLBACK_PROMISED,
        actor=actor,
        now=now,
        data={"followup_id": followup.pk, "due_at": due_at.isoformat(), "note": note},
        public=True,
    )
    return followup


@transaction.atomic
def ticket_promise_callback(
    *,
    actor: User | None,
    ticket_id: int,
    due_at: dt.datetime | str,
    note: str = "",
    now: dt.datetime | None = None,
) -> FollowUp:
    """“We will call you back by …”: a follow-up task for the assignee; overdue, it escalates."""
    now = now or timezone.now()
    ticket = _lock(actor=actor, ticket_id=ticket_id)
    _require_worker(actor, ticket)
    due = _when(due_at, "due_at", now=now)
    return _callback(ticket, due_at=due, actor=actor, now=now, note=(note or "").strip())


@transaction.atomic
def ticket_call(*, actor: User, ticket_id: int, ip: str | None = None) -> ContactPoint:
    """The customer's full number to call about the ticket: for its assignee, or whoever hands
    tickets out (supervisors); audited as a reveal for this ticket. Pages keep it masked."""
    require_perm(actor, "tickets.change_ticket")
    ticket = ticket_get_for_user(user=actor, ticket_id=ticket_id)
    if ticket.assignee_id != actor.pk and not has_perm(actor, "tickets.assign_ticket"):
        raise Forbidden(_("Only the ticket's assignee calls the customer from it."))
    return customer_phone_reveal_for_call(
        actor=actor,
        customer_id=ticket.customer_id,
        call_for={"type": "ticket", "id": ticket.pk, "number": ticket.number},
        ip=ip,
    )


# --- Resolution, acceptance, closing, reopening ---------------------------------------------


def _resolution_clean(ticket: Ticket, data: dict[str, Any]) -> dict[str, Any]:
    """Resolution fields; a complaint needs all of them (type, summary, cost, root cause)."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    kind = data.get("resolution_type") or ""
    if kind not in Ticket.ResolutionType.values:
        errors["resolution_type"] = [_("Choose how it was resolved.")]
    cleaned["resolution_type"] = kind
    summary = str(data.get("resolution_summary") or "").strip()
    if not summary:
        errors["resolution_summary"] = [_("Say how it was resolved.")]
    cleaned["resolution_summary"] = summary
    cost = data.get("resolution_cost")
    if cost in (None, ""):
        if ticket.is_complaint:
            errors["resolution_cost"] = [_("Enter the cost (0 when there was none).")]
        cleaned["resolution_cost"] = None
    else:
        try:
            value = Decimal(str(cost))
            if value < 0 or value >= Decimal("1e10"):
                raise InvalidOperation
            cleaned["resolution_cost"] = value.quantize(Decimal("0.01"))
        except (InvalidOperation, ValueError):
            errors["resolution_cost"] = [_("Enter an amount in yuan, such as 25.50.")]
    root = data.get("root_cause")
    if root in (None, ""):
        if ticket.is_complaint:
            errors["root_cause"] = [_("Choose the root cause.")]
        cleaned["root_cause"] = None
    else:
        pk = root.pk if isinstance(root, RootCause) else root
        found = RootCause.objects.filter(pk=pk).first() if str(pk).isdigit() else None
        if found is None:
            errors["root_cause"] = [_("Unknown root cause.")]
        cleaned["root_cause"] = found
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def _resolve(
    ticket: Ticket, cleaned: dict[str, Any], *, actor: User | None, now: dt.datetime
) -> None:
    for field, value in cleaned.items():
        setattr(ticket, field, value)
    ticket.resolved_at = now
    ticket.acceptance = Ticket.Acceptance.PENDING
    ticket.acceptance_note = ""
    _set_status(ticket, S.RESOLVED, actor=actor, now=now)
    ticket.sla_paused_at = None
    sla.refresh_next_check(ticket)
    _event(
        ticket,
        TicketEvent.Kind.RESOLVED,
        actor=actor,
        now=now,
        data={
            "resolution_type": ticket.resolution_type,
            "summary": ticket.resolution_summary,
            "cost": str(ticket.resolution_cost) if ticket.resolution_cost is not None else None,
            "root_cause": ticket.root_cause.name if ticket.root_cause else "",
        },
        public=True,
    )
    _customer_event(ticket, CustomerEvent.Kind.TICKET_RESOLVED, actor=actor)


@transaction.atomic
def ticket_resolve(
    *,
    actor: User | None,
    ticket_id: int,
    data: dict[str, Any],
    now: dt.datetime | None = None,
) -> Ticket:
    """Record the resolution; the customer is then asked to accept it."""
    now = now or timezone.now()
    ticket = _lock(actor=actor, ticket_id=ticket_id)
    if ticket.status == S.WAITING_DEPARTMENT:
        handoff = _handoff_lock(ticket)
        _require_handler(actor, handoff.department)
        if actor is None or not actor.has_perm("tickets.change_ticket"):
            # A department handler resolves through their answer.
            return handoff_answer(
                actor=actor,
                ticket_id=ticket_id,
                answer=data.get("resolution_summary", ""),
                resolution=data,
                now=now,
            )
        handoff.status = TicketHandoff.Status.ANSWERED
        handoff.answered_by, handoff.answered_at, handoff.next_urge_at = actor, now, None
        handoff.answer = str(data.get("resolution_summary") or "")
        handoff.save()
        ticket.department = None
    else:
        _require_worker(actor, ticket)
    _check(ticket, "resolve")
    cleaned = _resolution_clean(ticket, data)
    _resolve(ticket, cleaned, actor=actor, now=now)
    ticket.save()
    if ticket.assignee_id and ticket.assignee != actor:
        _notify(
            [ticket.assignee], "ticket_resolved", ticket, _("resolved"), ticket.resolution_summary
        )
    return ticket


def _within_reopen_window(ticket: Ticket, now: dt.datetime) -> bool:
    if ticket.resolved_at is None:
        return False
    days = TicketConfig.current().reopen_window_days
    return now <= ticket.resolved_at + dt.timedelta(days=days)


def _reopen(ticket: Ticket, *, actor: User | None, now: dt.datetime, reason: str) -> None:
    ticket.reopened_count += 1
    ticket.resolved_at = None
    # The rejected resolution stays in its RESOLVED event; the ticket carries the next one.
    ticket.resolution_type = ""
    ticket.resolution_summary = ""
    ticket.resolution_cost = None
    ticket.root_cause = None
    ticket.closed_at = None
    ticket.acceptance = Ticket.Acceptance.PENDING
    _set_status(ticket, S.IN_PROGRESS, actor=actor, now=now, reason=reason)
    if ticket.sla_policy is not None:
        clock = _clock(ticket)
        # The objection is a new request: the resolution clock starts again, a reply is due.
        marks = dict(ticket.sla_marks)
        marks.pop(sla.RESOLUTION, None)
        ticket.sla_marks = marks
        sla.start(ticket, sla.RESOLUTION, clock=clock, now=now)
        sla.start(ticket, sla.NEXT_RESPONSE, clock=clock, now=now)
    followup_cancel_for_ticket(
        ticket=ticket,
        purposes=[FollowUp.Purpose.COMPLAINT_AFTERCARE, FollowUp.Purpose.IMPACT_WATCH],
    )
    _event(
        ticket,
        TicketEvent.Kind.REOPENED,
        actor=actor,
        now=now,
        data={"reason": reason, "count": ticket.reopened_count},
        public=True,
    )
    _customer_event(ticket, CustomerEvent.Kind.TICKET_REOPENED, actor=actor)
    _notify(
        [ticket.assignee, *staff_to_escalate(level=1, ticket=ticket)],
        "ticket_reopened",
        ticket,
        _("reopened: the customer objects"),
        reason,
    )


@transaction.atomic
def ticket_reopen(
    *, actor: User | None, ticket_id: int, reason: str, now: dt.datetime | None = None
) -> Ticket:
    """Reopen a resolved or closed ticket when the customer objects within the reopen window."""
    now = now or timezone.now()
    ticket = _lock(actor=actor, ticket_id=ticket_id)
    _require_worker(actor, ticket)
    _check(ticket, "reopen")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed({"reason": [_("Say what the customer objects to.")]})
    if not _within_reopen_window(ticket, now):
        raise TicketReopenWindowPassed(
            _("The reopen window has passed; open a new ticket for this customer.")
        )
    _reopen(ticket, actor=actor, now=now, reason=reason)
    ticket.save()
    return ticket


@transaction.atomic
def ticket_record_acceptance(
    *,
    actor: User | None,
    ticket_id: int,
    accepted: bool,
    note: str = "",
    via: str = "phone",
    now: dt.datetime | None = None,
) -> Ticket:
    """Record the customer's answer to the resolution (told by phone, or on the status page when
    `actor` is None). A rejection within the window reopens the ticket."""
    now = now or timezone.now()
    ticket = _lock(actor=actor, ticket_id=ticket_id)
    if actor is not None:
        _require_worker(actor, ticket)
    if ticket.status != S.RESOLVED:
        raise TicketTransitionNotAllowed(
            action=_("answered by the customer"), status=ticket.get_status_display()
        )
    if ticket.acceptance:
        raise AcceptanceAlreadyRecorded(
            _("The customer's answer is already recorded: %(answer)s.")
            % {"answer": ticket.get_acceptance_display()}
        )
    note = (note or "").strip()
    if len(note) > 2000:
        raise ValidationFailed({"note": [_("At most %(n)s characters.") % {"n": 2000}]})
    if not accepted and not note:
        raise ValidationFailed({"note": [_("Say what the customer objects to.")]})
    ticket.acceptance = Ticket.Acceptance.ACCEPTED if accepted else Ticket.Acceptance.REJECTED
    ticket.acceptance_note = note
    _event(
        ticket,
        TicketEvent.Kind.ACCEPTANCE,
        actor=actor,
        now=now,
        data={"accepted": accepted, "note": note, "via": via},
        public=True,
    )
    if not accepted:
        if not _within_reopen_window(ticket, now):
            raise TicketReopenWindowPassed(
                _("The time to object has passed; please call the hotline.")
            )
        _reopen(ticket, actor=actor, now=now, reason=note)
    elif ticket.assignee_id and actor is None:
        _notify(
            [ticket.assignee],
            "ticket_accepted",
            ticket,
            _("the customer accepted the resolution"),
            note,
        )
    ticket.save()
    return ticket


@transaction.atomic
def ticket_close(*, actor: User | None, ticket_id: int, now: dt.datetime | None = None) -> Ticket:
    """Close a resolved ticket. A complaint closes only with its resolution, cost, root cause and
    the customer's acceptance, by a complaint specialist; its aftercare follow-ups are scheduled."""
    now = now or timezone.now()
    ticket = _lock(actor=actor, ticket_id=ticket_id)
    _require_worker(actor, ticket)
    _check(ticket, "close")
    if ticket.is_complaint:
        require_perm(actor, "tickets.close_complaint")
        missing = {}
        for field in ("resolution_type", "resolution_summary", "resolution_cost", "root_cause"):
            if getattr(ticket, field) in (None, ""):
                missing[field] = [_("A complaint cannot close without it.")]
        if ticket.acceptance != Ticket.Acceptance.ACCEPTED:
            missing["acceptance"] = [_("A complaint closes only once the customer has accepted.")]
        if missing:
            raise ValidationFailed(missing, _("The complaint cannot close yet."))
    _set_status(ticket, S.CLOSED, actor=actor, now=now)
    ticket.closed_at = now
    _event(ticket, TicketEvent.Kind.CLOSED, actor=actor, now=now, public=True)
    _customer_event(ticket, CustomerEvent.Kind.TICKET_CLOSED, actor=actor)
    if ticket.is_complaint:
        _aftercare_schedule(ticket, actor=actor, now=now)
    ticket.save()
    return ticket


def _aftercare_schedule(ticket: Ticket, *, actor: User | None, now: dt.datetime) -> None:
    """Complaint follow-ups from one month after resolution; major ones get one more and are
    watched for negative impact."""
    config = TicketConfig.current()
    start = (ticket.resolved_at or now) + dt.timedelta(days=config.aftercare_after_days)
    count = config.aftercare_count + (1 if ticket.severity == Ticket.Severity.MAJOR else 0)
    assignee = ticket.assignee or actor
    for i in range(count):
        due = start + dt.timedelta(days=config.aftercare_interval_days * i)
        purpose = FollowUp.Purpose.COMPLAINT_AFTERCARE
        if ticket.is_impact_watched and i == count - 1 and count > 1:
            purpose = FollowUp.Purpose.IMPACT_WATCH
        followup_create(
            actor=actor,
            customer=ticket.customer,
            purpose=purpose,
            due_at=due,
            assignee=assignee,
            ticket=ticket,
            note=_("Aftercare %(n)s of %(total)s: %(subject)s")
            % {"n": i + 1, "total": count, "subject": ticket.subject},
        )


# --- Customer-side actions (status page) ------------------------------------------------------


@transaction.atomic
def ticket_customer_message(
    *, ticket_id: int, body: str, now: dt.datetime | None = None
) -> TicketEvent:
    """The customer adds information on the status page: a reply is due, and a ticket waiting on
    them goes back to work."""
    now = now or timezone.now()
    ticket = _lock(actor=None, ticket_id=ticket_id)
    body = (body or "").strip()
    if not body:
        raise ValidationFailed({"body": [_("Write your message.")]})
    if len(body) > 5000:
        raise ValidationFailed({"body": [_("At most %(n)s characters.") % {"n": 5000}]})
    if not ticket.is_open:
        raise TicketTransitionNotAllowed(action=_("added to"), status=ticket.get_status_display())
    if ticket.status == S.WAITING_CUSTOMER:
        _resume(ticket, actor=None, now=now)
    if ticket.sla_policy is not None:
        sla.start(ticket, sla.NEXT_RESPONSE, clock=_clock(ticket), now=now)
    ticket.save()
    event = _event(
        ticket,
        TicketEvent.Kind.CUSTOMER_MESSAGE,
        actor=None,
        now=now,
        data={"body": body},
        public=True,
    )
    _notify(
        [ticket.assignee], "customer_message", ticket, _("the customer added information"), body
    )
    return event


# --- Attachments and external escalation ------------------------------------------------------


@transaction.atomic
def ticket_attach(
    *,
    actor: User | None,
    ticket_id: int,
    upload,
    from_customer: bool = False,
    now: dt.datetime | None = None,
) -> TicketAttachment:
    """Keep a file on the ticket; its type must be on the one list (core.attachments) and its
    size at most KEFU_ATTACHMENT_MAX_BYTES."""
    now = now or timezone.now()
    ticket = _lock(actor=actor, ticket_id=ticket_id)
    _require_worker_or_handler(actor, ticket)
    if from_customer and not ticket.is_open:
        raise TicketTransitionNotAllowed(action=_("added to"), status=ticket.get_status_display())
    name = PurePath(getattr(upload, "name", "") or "file").name[:200]
    attachment_check(name, upload.size)
    attachment = TicketAttachment(
        ticket=ticket,
        name=name,
        size=upload.size,
        content_type=attachment_content_type(name),
        uploaded_by=actor,
        is_from_customer=from_customer,
    )
    attachment.file.save(name, upload, save=False)
    attachment.save()
    _event(
        ticket,
        TicketEvent.Kind.ATTACHMENT_ADDED,
        actor=actor,
        now=now,
        data={"attachment_id": attachment.pk, "name": name, "size": upload.size},
        public=from_customer,
    )
    if from_customer:
        # A file from the customer is a message from them: back to work, a reply is due.
        if ticket.status == S.WAITING_CUSTOMER:
            _resume(ticket, actor=None, now=now)
        if ticket.sla_policy is not None:
            sla.start(ticket, sla.NEXT_RESPONSE, clock=_clock(ticket), now=now)
        ticket.save()
        _notify([ticket.assignee], "customer_message", ticket, _("the customer sent a file"), name)
    return attachment


@transaction.atomic
def ticket_escalate_external(
    *,
    actor: User | None,
    ticket_id: int,
    body: str,
    reported_on: dt.date | str,
    reference: str = "",
    notes: str = "",
    now: dt.datetime | None = None,
) -> ExternalEscalation:
    """Flag that the customer took the complaint outside (消协, media): managers are told and the
    ticket is watched for negative impact."""
    now = now or timezone.now()
    ticket = _lock(actor=actor, ticket_id=ticket_id)
    _require_worker(actor, ticket)
    errors: dict[str, list[str]] = {}
    if body not in ExternalEscalation.Body.values:
        errors["body"] = [_("Choose where the complaint was taken.")]
    if isinstance(reported_on, str):
        try:
            reported_on = dt.date.fromisoformat(reported_on)
        except ValueError:
            errors["reported_on"] = [_("Enter a date as YYYY-MM-DD.")]
    if isinstance(reported_on, dt.date) and reported_on > timezone.localdate(now):
        errors["reported_on"] = [_("The date cannot be in the future.")]
    if errors:
        raise ValidationFailed(errors)
    escalation = ExternalEscalation.objects.create(
        ticket=ticket,
        body=body,
        reported_on=reported_on,
        reference=(reference or "").strip()[:100],
        notes=(notes or "").strip(),
        created_by=actor,
    )
    ticket.is_impact_watched = True
    ticket.save()
    _event(
        ticket,
        TicketEvent.Kind.EXTERNAL_ESCALATION,
        actor=actor,
        now=now,
        data={"body": body, "reference": escalation.reference, "notes": escalation.notes},
    )
    _notify(
        _leads(ticket),
        "external_escalation",
        ticket,
        _("taken to %(body)s") % {"body": escalation.get_body_display()},
        escalation.notes,
    )
    return escalation


@transaction.atomic
def queue_duty_set(*, actor: User, on_duty: bool) -> int:
    """An agent goes on or off duty in every queue they belong to; only agents on duty take
    round-robin tickets. Returns the number of queues changed."""
    require_perm(actor, "tickets.change_ticket")
    return (
        QueueMember.objects.filter(user=actor)
        .exclude(is_on_duty=on_duty)
        .update(is_on_duty=on_duty)
    )
