"""How the customer's timeline and change log read on the profile page: labels, not codes."""

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from kefu.audit.models import AuditEntry
from kefu.customers.models import ContactPoint, Customer, CustomerEvent

AUDIT_ACTION_LABELS = {
    "customer.created": _("Created"),
    "customer.updated": _("Changed"),
    "customer.lifecycle_changed": _("Lifecycle changed"),
    "customer.contact_added": _("Contact added"),
    "customer.contact_removed": _("Contact removed"),
    "customer.contact_revealed": _("Full contact viewed"),
    "customer.merged": _("Duplicate merged in"),
    "customer.merged_away": _("Merged into another record"),
}
_EXTRA_FIELD_LABELS = {
    "tags": _("Tags"),
    "contacts": _("Contacts"),
    "addresses": _("Addresses"),
    "reason": _("Reason"),
    "merged_from": _("Merged from"),
    "merged_into": _("Merged into"),
    "contact": _("Contact"),
    "kind": _("Kind"),
    "call_for": _("For the call"),
}
_CHOICES = {
    "status": Customer.Status,
    "level": Customer.Level,
    "gender": Customer.Gender,
    "source": Customer.Source,
    "temperament": Customer.Temperament,
    "kind": ContactPoint.Kind,
}


TICKET_KINDS = {
    CustomerEvent.Kind.TICKET_OPENED,
    CustomerEvent.Kind.TICKET_RESOLVED,
    CustomerEvent.Kind.TICKET_CLOSED,
    CustomerEvent.Kind.TICKET_REOPENED,
}

CONVERSATION_KINDS = {
    CustomerEvent.Kind.CONVERSATION_STARTED,
    CustomerEvent.Kind.CONVERSATION_CLOSED,
}
_CALL_RESULTS = {
    "answered": pgettext_lazy("call result", "Answered"),
    "missed": pgettext_lazy("call result", "Missed"),
    "dropped": pgettext_lazy("call result", "Dropped"),
}
_CALL_DIRECTIONS = {"in": _("Incoming"), "out": _("Outgoing")}


@dataclass
class Change:
    label: str
    before: str | None
    after: str


def field_label(name: str) -> str:
    if name in _EXTRA_FIELD_LABELS:
        return str(_EXTRA_FIELD_LABELS[name])
    try:
        return str(Customer._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


def call_for_display(value: Any) -> str:
    """What a number was revealed for: "follow-up #12", "ticket GD…", "conversation #7"."""
    if not isinstance(value, dict):
        return str(value)
    kind, pk = value.get("type"), value.get("id")
    if kind == "followup":
        return _("Callback for follow-up #%(id)s") % {"id": pk}
    if kind == "ticket":
        return _("Call about ticket %(number)s") % {"number": value.get("number") or pk}
    if kind == "conversation":
        return _("Call about conversation #%(id)s") % {"id": pk}
    return str(value)


def value_display(name: str, value: Any) -> str:
    if name == "call_for":
        return call_for_display(value)
    if value in (None, "", []):
        return "—"
    if isinstance(value, list):
        return "、".join(value_display(name, v) for v in value)
    if name in _CHOICES and value in _CHOICES[name].values:
        return str(_CHOICES[name](value).label)
    return str(value)


def audit_changes(entry: AuditEntry) -> list[Change]:
    """[before → after] pairs of a change, or single details (reason, contact) of other actions."""
    changes = []
    for name, value in entry.changes.items():
        if isinstance(value, list) and len(value) == 2:
            before, after = value
            changes.append(
                Change(field_label(name), value_display(name, before), value_display(name, after))
            )
        else:
            changes.append(Change(field_label(name), None, value_display(name, value)))
    return changes


def audit_action_label(action: str) -> str:
    return str(AUDIT_ACTION_LABELS.get(action, action))


def event_detail(event: CustomerEvent) -> str:
    """One line saying what a timeline event changed."""
    data = event.data
    if event.kind == CustomerEvent.Kind.LIFECYCLE_CHANGED:
        text = f"{value_display('status', data.get('from'))} → {value_display('status', data.get('to'))}"
        return f"{text}（{data['reason']}）" if data.get("reason") else text
    if event.kind == CustomerEvent.Kind.MERGED:
        return f"{data.get('duplicate_number', '')} {data.get('duplicate_name', '')}"
    if event.kind in (CustomerEvent.Kind.CONTACT_ADDED, CustomerEvent.Kind.CONTACT_REMOVED):
        return data.get("masked", "")
    if event.kind in TICKET_KINDS:
        return f"{data.get('number', '')} {data.get('subject', '')}"
    if event.kind in CONVERSATION_KINDS:
        text = data.get("channel", "")
        return f"{text} · {data['topic']}" if data.get("topic") else text
    if event.kind == CustomerEvent.Kind.CALL_RECORDED:
        direction = _CALL_DIRECTIONS.get(data.get("direction", ""), data.get("direction", ""))
        result = _CALL_RESULTS.get(data.get("result", ""), data.get("result", ""))
        return f"{direction} · {result}"
    if event.kind == CustomerEvent.Kind.APPOINTMENT_BOOKED:
        return f"{data.get('store', '')} · {_local_time(data.get('at', ''))}"
    if event.kind == CustomerEvent.Kind.APPOINTMENT_VISITED:
        amount = data.get("purchase_amount")
        return f"{data.get('store', '')} · ¥{amount}" if amount else data.get("store", "")
    if event.kind == CustomerEvent.Kind.APPOINTMENT_MISSED:
        return data.get("store", "")
    if event.kind == CustomerEvent.Kind.FOLLOWUP_DONE:
        from kefu.followups.models import FollowUp

        purpose = data.get("purpose", "")
        outcome = data.get("outcome", "")
        purpose_label = (
            FollowUp.Purpose(purpose).label if purpose in FollowUp.Purpose.values else purpose
        )
        outcome_label = (
            FollowUp.Outcome(outcome).label if outcome in FollowUp.Outcome.values else outcome
        )
        return f"{purpose_label} · {outcome_label}"
    if event.kind == CustomerEvent.Kind.MESSAGE_SENT:
        return data.get("body", "")
    if event.kind == CustomerEvent.Kind.UPDATED:
        if data.get("opt_out"):
            return f"{_('Opted out of bulk messages')}: {data['opt_out']}"
        return "、".join(field_label(f) for f in data.get("fields", []))
    return ""


def _local_time(value: str) -> str:
    from django.utils import timezone
    from django.utils.dateparse import parse_datetime

    moment = parse_datetime(value) if value else None
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else value
