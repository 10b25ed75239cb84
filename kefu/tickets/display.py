"""How a ticket reads on the pages: timeline lines in words, not codes, and its SLA clocks."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from kefu.tickets import sla
from kefu.tickets.models import ExternalEscalation, Ticket, TicketEvent

METRIC_LABELS = {
    sla.FIRST_RESPONSE: gettext_lazy("First response"),
    sla.NEXT_RESPONSE: gettext_lazy("Next response"),
    sla.RESOLUTION: pgettext_lazy("sla metric", "Resolution"),
}
SLA_STATE_LABELS = {
    sla.OK: gettext_lazy("On time"),
    sla.WARNING: gettext_lazy("Due soon"),
    sla.BREACHED: gettext_lazy("Overdue"),
    sla.PAUSED: gettext_lazy("Paused"),
    sla.MET: gettext_lazy("Met"),
    sla.MISSED: gettext_lazy("Missed"),
    sla.NONE: gettext_lazy("No target"),
}
ESCALATION_LEVELS = {1: gettext_lazy("the supervisor"), 2: gettext_lazy("the manager")}
ACCEPTANCE_VIA = {
    "phone": gettext_lazy("by phone"),
    "status_page": gettext_lazy("on the status page"),
}


def local(moment: dt.datetime | str | None) -> str:
    """A moment as the pages show it: 2026-11-24 10:30 in the local time zone."""
    if isinstance(moment, str):
        try:
            moment = dt.datetime.fromisoformat(moment)
        except ValueError:
            return moment
    if moment is None:
        return ""
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def choice_label(enum, value: Any) -> str:
    if value in (None, ""):
        return "—"
    if value in enum.values:
        return str(enum(value).label)
    return str(value)


def state_label(state: str) -> str:
    return str(SLA_STATE_LABELS.get(state, state))


@dataclass(frozen=True)
class EventLine:
    """One timeline entry: what happened (title), in a line (summary), and any text said (body)."""

    title: str
    summary: str = ""
    body: str = ""


def _field_labels(names: list[str]) -> str:
    labels = []
    for name in names:
        try:
            labels.append(str(Ticket._meta.get_field(name).verbose_name))
        except FieldDoesNotExist:
            labels.append(name)
    return "、".join(labels)


def _join(*parts: str) -> str:
    return " · ".join(p for p in parts if p)


def event_line(event: TicketEvent) -> EventLine:
    """The words for one timeline event."""
    data, kind = event.data or {}, event.kind
    title = str(TicketEvent.Kind(kind).label) if kind in TicketEvent.Kind.values else kind
    K = TicketEvent.Kind
    if kind == K.CREATED:
        summary = _join(
            choice_label(Ticket.Type, data.get("type")),
            choice_label(Ticket.Channel, data.get("channel")),
            choice_label(Ticket.Severity, data.get("severity")),
            _("queue %(queue)s") % {"queue": data["queue"]} if data.get("queue") else "",
            _("new prospect created") if data.get("customer_created") else "",
        )
        return EventLine(title, summary)
    if kind == K.UPDATED:
        return EventLine(title, _field_labels(data.get("fields", [])))
    if kind == K.ASSIGNED:
        if data.get("from"):
            summary = f"{data['from']} → {data.get('to', '')}"
        else:
            summary = _("to %(name)s") % {"name": data.get("to", "")}
        return EventLine(title, summary, data.get("note", ""))
    if kind == K.STATUS_CHANGED:
        summary = (
            f"{choice_label(Ticket.Status, data.get('from'))} → "
            f"{choice_label(Ticket.Status, data.get('to'))}"
        )
        return EventLine(title, summary, data.get("reason", ""))
    if kind in (K.NOTE, K.CUSTOMER_MESSAGE):
        return EventLine(title, "", data.get("body", ""))
    if kind == K.REPLIED:
        return EventLine(
            title, choice_label(Ticket.Channel, data.get("channel")), data.get("body", "")
        )
    if kind == K.HANDED_OFF:
        summary = _join(
            data.get("department", ""),
            _("answer due %(due)s") % {"due": local(data.get("due_at"))}
            if data.get("due_at")
            else "",
        )
        return EventLine(title, summary, data.get("instructions", ""))
    if kind == K.HANDOFF_ANSWERED:
        return EventLine(title, data.get("department", ""), data.get("answer", ""))
    if kind == K.HANDOFF_CANCELLED:
        return EventLine(title, data.get("department", ""), data.get("reason", ""))
    if kind == K.URGED:
        summary = _("Urge no. %(n)s: %(department)s") % {
            "n": data.get("count", ""),
            "department": data.get("department", ""),
        }
        if data.get("overdue"):
            summary = _join(summary, _("answer overdue"))
        return EventLine(title, summary)
    if kind == K.ESCALATED:
        level = ESCALATION_LEVELS.get(data.get("level"), "")
        reason = {
            "handoff": _("%(detail)s has not answered"),
            "sla": _("SLA breached (%(detail)s)"),
            "callback": _("promised callback overdue"),
        }.get(data.get("reason", ""), "%(detail)s") % {"detail": data.get("detail", "")}
        summary = _join(_("to %(name)s") % {"name": level} if level else "", reason)
        return EventLine(title, summary, "、".join(data.get("to", [])))
    if kind in (K.SLA_WARNING, K.SLA_BREACHED):
        metric = METRIC_LABELS.get(data.get("metric", ""), data.get("metric", ""))
        summary = _("%(metric)s due %(due)s") % {"metric": metric, "due": local(data.get("due_at"))}
        return EventLine(title, summary)
    if kind == K.RESOLVED:
        summary = _join(
            choice_label(Ticket.ResolutionType, data.get("resolution_type")),
            _("cost %(cost)s yuan") % {"cost": data["cost"]} if data.get("cost") else "",
            _("root cause: %(cause)s") % {"cause": data["root_cause"]}
            if data.get("root_cause")
            else "",
        )
        return EventLine(title, summary, data.get("summary", ""))
    if kind == K.ACCEPTANCE:
        answer = _("accepted") if data.get("accepted") else _("objected")
        via = ACCEPTANCE_VIA.get(data.get("via", ""), "")
        return EventLine(title, _join(str(answer), str(via)), data.get("note", ""))
    if kind == K.REOPENED:
        summary = _("time no. %(n)s") % {"n": data["count"]} if data.get("count") else ""
        return EventLine(title, summary, data.get("reason", ""))
    if kind == K.CALLBACK_PROMISED:
        summary = _("by %(due)s") % {"due": local(data.get("due_at"))}
        return EventLine(title, summary, data.get("note", ""))
    if kind == K.ATTACHMENT_ADDED:
        return EventLine(title, data.get("name", ""))
    if kind == K.EXTERNAL_ESCALATION:
        summary = _join(
            choice_label(ExternalEscalation.Body, data.get("body")), data.get("reference", "")
        )
        return EventLine(title, summary, data.get("notes", ""))
    return EventLine(title, data.get("reason", "") or data.get("note", ""))


@dataclass(frozen=True)
class Clock:
    """One SLA clock of a ticket as the detail page shows it."""

    metric: str
    label: str
    due_at: dt.datetime | None
    state: str
    state_label: str


def sla_clocks(ticket: Ticket, *, now: dt.datetime) -> list[Clock]:
    """First response, next response and resolution: due time and state of each that is set."""
    clocks = []
    for metric in sla.METRICS:
        due = getattr(ticket, f"{metric}_due_at")
        state = sla.metric_state(ticket, metric, now=now)
        if due is None and state == sla.NONE:
            continue
        clocks.append(Clock(metric, str(METRIC_LABELS[metric]), due, state, state_label(state)))
    return clocks
