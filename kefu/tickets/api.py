"""Ticket endpoints under /api/v1/tickets: reads through selectors, writes as action endpoints
calling services. Every refusal is a DomainError rendered as {code, message, errors}.

Actions that change the ticket answer 200 with the ticket as GET /tickets/{id} shows it; actions
that create a record (a reply, a note, a hand-off, a callback, an external escalation, an
attachment) answer 201 with that record.
"""

import base64
import binascii
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from ninja import Field, File, Query, Router, Schema, Status, UploadedFile

from kefu.accounts.models import User
from kefu.core.attachments import attachment_response
from kefu.core.bounds import ID_PATTERN, DateIn, DateTimeIn, FilterDate, Id
from kefu.core.exceptions import NotFound, ValidationFailed
from kefu.core.forms import IdFilter
from kefu.core.permissions import require_perm
from kefu.core.public_address import public_url
from kefu.core.schemas import InputSchema, Ref
from kefu.customers.api import CustomerRef
from kefu.customers.models import Customer
from kefu.followups.models import FollowUp
from kefu.tickets import services, sla
from kefu.tickets.filtersets import ASSIGNEE_MINE, TAB_OPEN, TicketFilterSet
from kefu.tickets.models import (
    Category,
    Department,
    ExternalEscalation,
    Queue,
    RootCause,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketHandoff,
)
from kefu.tickets.selectors import (
    handoff_list_for_handler,
    ticket_get_detail,
    ticket_get_for_user,
    ticket_list_for_display,
    ticket_list_visible_to,
    ticket_timeline,
)
from kefu.tickets.status_links import status_path_for

router = Router(tags=["tickets"])

# The API names a related record `<name>_id`; the services take `<name>`. Their errors are
# renamed back so a client sees the field it sent.
API_FIELD_NAMES = {
    "customer": "customer_id",
    "category": "category_id",
    "store": "store_id",
    "assignee": "assignee_id",
    "queue": "queue_id",
    "department": "department_id",
    "root_cause": "root_cause_id",
}
RESOLUTION_FIELDS = ("resolution_type", "resolution_summary", "resolution_cost", "root_cause")


@contextmanager
def _api_field_names(renames: dict[str, str] = API_FIELD_NAMES) -> Iterator[None]:
    try:
        yield
    except ValidationFailed as exc:
        exc.errors = {renames.get(field, field): msgs for field, msgs in exc.errors.items()}
        raise


# --- Schemas: references ----------------------------------------------------------------------


class SlaOut(Schema):
    state: str = Field(description="ok, warning, breached, paused, met, missed or none")
    metric: str | None = Field(
        description="first_response, next_response or resolution: the most pressing clock."
    )
    due_at: dt.datetime | None


class SlaMetricOut(Schema):
    metric: str
    state: str = Field(description="ok, warning, breached, paused, met, missed or none")
    due_at: dt.datetime | None
    warn_at: dt.datetime | None
    breached_at: dt.datetime | None


# The builders below return plain dicts: the endpoint's response schema validates them once.
# (Building Schema objects would validate every row twice, a third of a list's time.)


def _ref(obj: Any, name: str | None = None) -> dict | None:
    if obj is None:
        return None
    return {"id": obj.pk, "name": name if name is not None else str(obj)}


def _user(user: User | None) -> dict | None:
    return _ref(user)


def _customer(customer: Customer) -> dict:
    return {"id": customer.pk, "number": customer.number, "name": customer.name}


def _sla(ticket: Ticket, now: dt.datetime) -> dict:
    state = sla.state(ticket, now=now)
    return {"state": state.state, "metric": state.metric, "due_at": state.due_at}


def _iso(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _metric_state(ticket: Ticket, metric: str, now: dt.datetime) -> dict:
    mark = ticket.sla_marks.get(metric, {})
    return {
        "metric": metric,
        "state": sla.metric_state(ticket, metric, now=now),
        "due_at": getattr(ticket, f"{metric}_due_at"),
        "warn_at": _iso(mark.get("warn_at")),
        "breached_at": _iso(mark.get("breached_at")),
    }


# --- Schemas: tickets -------------------------------------------------------------------------


class TicketListItem(Schema):
    id: int
    number: str
    type: str
    channel: str
    status: str
    severity: str
    subject: str
    customer: CustomerRef
    assignee: Ref | None
    queue: Ref | None
    category: Ref | None
    store: Ref | None
    department: Ref | None = Field(description="The department it waits on, if any.")
    sla: SlaOut
    first_response_due_at: dt.datetime | None
    resolution_due_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class TicketPage(Schema):
    results: list[TicketListItem]
    next: str | None = Field(
        description="Pass as `cursor` to get the following page; null on the last page."
    )
    has_more: bool
    limit: int


class HandoffOut(Schema):
    id: int
    department: Ref
    status: str
    instructions: str
    due_at: dt.datetime
    requested_by: Ref | None
    answer: str
    answered_by: Ref | None
    answered_at: dt.datetime | None
    urge_count: int
    escalation_level: int
    created_at: dt.datetime


class ExternalEscalationOut(Schema):
    id: int
    body: str
    reference: str
    notes: str
    reported_on: dt.date
    created_by: Ref | None
    created_at: dt.datetime


class AttachmentOut(Schema):
    id: int
    name: str
    size: int
    content_type: str
    is_from_customer: bool
    uploaded_by: Ref | None
    created_at: dt.datetime


class TicketOut(Schema):
    id: int
    number: str
    type: str
    channel: str
    status: str
    severity: str
    subject: str
    description: str
    customer: CustomerRef
    category: Ref | None = Field(description="`name` is the path, such as 药品质量 › 过期药品.")
    store: Ref | None
    order_ref: str
    tags: list[str]
    queue: Ref | None
    assignee: Ref | None
    department: Ref | None = Field(description="The department it waits on, if any.")
    created_by: Ref | None
    sla: SlaOut
    sla_metrics: list[SlaMetricOut]
    first_response_due_at: dt.datetime | None
    first_responded_at: dt.datetime | None
    next_response_due_at: dt.datetime | None
    resolution_due_at: dt.datetime | None
    sla_paused_at: dt.datetime | None
    escalation_level: int
    resolution_type: str
    resolution_summary: str
    resolution_cost: Decimal | None = Field(description="Yuan.")
    root_cause: Ref | None
    resolved_at: dt.datetime | None
    acceptance: str = Field(description="'' (not yet asked), accepted or rejected")
    acceptance_note: str
    closed_at: dt.datetime | None
    reopened_count: int
    is_impact_watched: bool
    handoffs: list[HandoffOut]
    external_escalations: list[ExternalEscalationOut]
    attachments: list[AttachmentOut]
    status_url: str | None = Field(
        description=(
            "The customer's status page (signed link, no login), to send by SMS; null when"
            " KEFU_BASE_URL is unset and this request came through a proxy or at another"
            " address than the one Kefu serves, where the link would be dead."
        )
    )
    created_at: dt.datetime
    updated_at: dt.datetime


class TicketEventOut(Schema):
    id: int
    kind: str
    kind_label: str
    actor: Ref | None = Field(description="null when the system or the customer acted.")
    data: dict[str, Any]
    is_public: bool = Field(description="Shown to the customer on the status page.")
    created_at: dt.datetime


class CallbackOut(Schema):
    id: int
    purpose: str
    status: str
    due_at: dt.datetime
    assignee: Ref | None
    note: str


class HandoffTicketRef(Schema):
    id: int
    number: str
    type: str
    severity: str
    status: str
    subject: str
    customer: CustomerRef


class HandoffQueueItem(Schema):
    id: int
    ticket: HandoffTicketRef
    department: Ref
    instructions: str
    due_at: dt.datetime
    is_overdue: bool
    urge_count: int
    requested_by: Ref | None
    created_at: dt.datetime


class CategoryOut(Schema):
    id: int
    name: str
    path: str
    parent_id: int | None


class QueueOut(Schema):
    id: int
    name: str
    team: Ref | None
    ticket_types: list[str] = Field(description="Empty means every type.")
    mode: str


def _handoff(h: TicketHandoff) -> dict:
    return {
        "id": h.pk,
        "department": _ref(h.department),
        "status": h.status,
        "instructions": h.instructions,
        "due_at": h.due_at,
        "requested_by": _user(h.requested_by),
        "answer": h.answer,
        "answered_by": _user(h.answered_by),
        "answered_at": h.answered_at,
        "urge_count": h.urge_count,
        "escalation_level": h.escalation_level,
        "created_at": h.created_at,
    }


def _escalation(e: ExternalEscalation) -> dict:
    return {
        "id": e.pk,
        "body": e.body,
        "reference": e.reference,
        "notes": e.notes,
        "reported_on": e.reported_on,
        "created_by": _user(e.created_by),
        "created_at": e.created_at,
    }


def _attachment(a: TicketAttachment) -> dict:
    return {
        "id": a.pk,
        "name": a.name,
        "size": a.size,
        "content_type": a.content_type,
        "is_from_customer": a.is_from_customer,
        "uploaded_by": _user(a.uploaded_by),
        "created_at": a.created_at,
    }


def _event(e: TicketEvent) -> dict:
    return {
        "id": e.pk,
        "kind": e.kind,
        "kind_label": e.get_kind_display(),
        "actor": _user(e.actor),
        "data": e.data,
        "is_public": e.is_public,
        "created_at": e.created_at,
    }


def _status_url(request: HttpRequest, ticket: Ticket) -> str | None:
    try:
        path = status_path_for(ticket)
    except NoReverseMatch:  # the customer status page is not installed
        return None
    return public_url(request, path)  # None where the link would be dead


def _list_item(ticket: Ticket, now: dt.datetime) -> dict:
    return {
        "id": ticket.pk,
        "number": ticket.number,
        "type": ticket.type,
        "channel": ticket.channel,
        "status": ticket.status,
        "severity": ticket.severity,
        "subject": ticket.subject,
        "customer": _customer(ticket.customer),
        "assignee": _user(ticket.assignee),
        "queue": _ref(ticket.queue),
        "category": _ref(ticket.category, ticket.category.name if ticket.category else None),
        "store": _ref(ticket.store, ticket.store.name if ticket.store else None),
        "department": _ref(ticket.department),
        "sla": _sla(ticket, now),
        "first_response_due_at": ticket.first_response_due_at,
        "resolution_due_at": ticket.resolution_due_at,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
    }


def _ticket_out(request: HttpRequest, ticket: Ticket, now: dt.datetime) -> dict:
    return {
        "id": ticket.pk,
        "number": ticket.number,
        "type": ticket.type,
        "channel": ticket.channel,
        "status": ticket.status,
        "severity": ticket.severity,
        "subject": ticket.subject,
        "description": ticket.description,
        "customer": _customer(ticket.customer),
        "category": _ref(ticket.category, ticket.category.path if ticket.category else None),
        "store": _ref(ticket.store, ticket.store.name if ticket.store else None),
        "order_ref": ticket.order_ref,
        "tags": sorted(t.name for t in ticket.tags.all()),
        "queue": _ref(ticket.queue),
        "assignee": _user(ticket.assignee),
        "department": _ref(ticket.department),
        "created_by": _user(ticket.created_by),
        "sla": _sla(ticket, now),
        "sla_metrics": [_metric_state(ticket, m, now) for m in sla.METRICS],
        "first_response_due_at": ticket.first_response_due_at,
        "first_responded_at": ticket.first_responded_at,
        "next_response_due_at": ticket.next_response_due_at,
        "resolution_due_at": ticket.resolution_due_at,
        "sla_paused_at": ticket.sla_paused_at,
        "escalation_level": ticket.escalation_level,
        "resolution_type": ticket.resolution_type,
        "resolution_summary": ticket.resolution_summary,
        "resolution_cost": ticket.resolution_cost,
        "root_cause": _ref(ticket.root_cause),
        "resolved_at": ticket.resolved_at,
        "acceptance": ticket.acceptance,
        "acceptance_note": ticket.acceptance_note,
        "closed_at": ticket.closed_at,
        "reopened_count": ticket.reopened_count,
        "is_impact_watched": ticket.is_impact_watched,
        "handoffs": [_handoff(h) for h in ticket.handoffs.all()],
        "external_escalations": [_escalation(e) for e in ticket.external_escalations.all()],
        "attachments": [_attachment(a) for a in ticket.attachments.all()],
        "status_url": _status_url(request, ticket),
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
    }


def _detail(request: HttpRequest, ticket_id: int) -> dict:
    ticket = ticket_get_detail(user=request.auth, ticket_id=ticket_id)
    return _ticket_out(request, ticket, timezone.now())


# --- Input schemas ----------------------------------------------------------------------------


class TicketCreateIn(InputSchema):
    type: str = Field(
        description="consultation, complaint, suggestion, after_sales or service_request"
    )
    subject: str = Field(max_length=200)
    channel: str = Field(
        Ticket.Channel.PHONE,
        description="phone, web_chat, wechat, email, store, platform, letter or other",
    )
    customer_id: Id | None = Field(None, description="The customer; or give `phone`.")
    phone: str | None = Field(
        None,
        description="The caller's phone when `customer_id` is not known: an unknown "
        "number becomes a prospect.",
    )
    caller_name: str = Field("", max_length=100)
    category_id: Id | None = None
    severity: str = Field(Ticket.Severity.NORMAL, description="normal, urgent or major")
    description: str = ""
    store_id: Id | None = None
    order_ref: str = ""
    tags: list[str] = []
    assignee_id: Id | None = Field(
        None, description="Leave empty to route through the queues (round robin)."
    )
    callback_due_at: DateTimeIn | None = Field(
        None, description="Promise the customer a callback by this time."
    )


class TicketUpdateIn(InputSchema):
    type: str | None = None
    channel: str | None = None
    category_id: Id | None = None
    severity: str | None = None
    subject: str | None = Field(None, max_length=200)
    description: str | None = None
    store_id: Id | None = None
    order_ref: str | None = None
    tags: list[str] | None = None


class AssignIn(InputSchema):
    assignee_id: Id | None = Field(None, description="Who takes the ticket (oneself to claim).")
    queue_id: Id | None = Field(None, description="Move to a queue (supervisors).")
    note: str = Field("", max_length=500)


class ReplyIn(InputSchema):
    body: str = Field(description="What the customer was told.")
    channel: str = Ticket.Channel.PHONE


class NoteIn(InputSchema):
    body: str


class ReasonIn(InputSchema):
    reason: str = Field("", max_length=500)


class HandOffIn(InputSchema):
    department_id: Id
    instructions: str
    due_at: DateTimeIn | None = Field(None, description="Default: one working day.")


class ResolutionIn(InputSchema):
    resolution_type: str = Field(
        description="repair, exchange, refund, compensation, explanation or other"
    )
    resolution_summary: str
    resolution_cost: Decimal | None = Field(None, description="Yuan; a complaint needs it.")
    root_cause_id: Id | None = Field(None, description="A complaint needs it.")

    def service_data(self) -> dict[str, Any]:
        return {
            "resolution_type": self.resolution_type,
            "resolution_summary": self.resolution_summary,
            "resolution_cost": self.resolution_cost,
            "root_cause": self.root_cause_id,
        }


class HandoffAnswerIn(InputSchema):
    answer: str
    resolution: ResolutionIn | None = Field(
        None, description="Give it when the department's answer resolves the ticket."
    )


class AcceptanceIn(InputSchema):
    accepted: bool
    note: str = Field("", description="The customer's words; needed when they do not accept.")
    via: str = Field("phone", max_length=30)


class CallbackIn(InputSchema):
    due_at: DateTimeIn
    note: str = Field("", max_length=500)


class ExternalEscalationIn(InputSchema):
    body: str = Field(
        description="consumer_association, media, regulator, platform or other",
    )
    reported_on: DateIn
    reference: str = Field("", max_length=100)
    notes: str = ""


# --- Filters ----------------------------------------------------------------------------------


class TicketApiFilterSet(TicketFilterSet):
    """The list page's filters, plus the customer and a yes/no SLA filter for integrations."""

    customer = IdFilter(label=pgettext_lazy("person", "Customer"), field_name="customer_id")
    breaching = django_filters.BooleanFilter(
        label=gettext_lazy("Breaching SLA"), method="filter_breaching"
    )

    def filter_breaching(self, queryset, name, value):
        breaching = queryset.breaching_sla(now=self.now)
        return breaching if value else queryset.exclude(pk__in=breaching.values("pk"))


class TicketFilters(Schema):
    status: str | None = Field(None, description="A status, or `open` for every open status.")
    type: str | None = None
    severity: str | None = None
    assignee: str | None = Field(
        None,
        pattern=rf"^(me|none|{ID_PATTERN})$",
        description="A user id, `me` or `none` (unassigned).",
    )
    queue: Id | None = None
    category: Id | None = Field(None, description="Matches its subcategories too.")
    store: Id | None = None
    customer: Id | None = None
    breaching: bool | None = Field(None, description="true: an SLA clock is overdue now.")
    watched: bool | None = Field(None, description="Watched for negative impact.")
    created_from: FilterDate | None = None
    created_to: FilterDate | None = None
    q: str | None = Field(None, description="Ticket number, words of the subject, the customer.")
    cursor: str | None = Field(None, description="The `next` of the previous page.")
    limit: int = Field(25, ge=1, le=200)

    def filterset_data(self) -> dict[str, Any]:
        """The API's parameters in the words of the shared filter set."""
        data = self.dict(exclude_none=True, exclude={"cursor", "limit"})
        if data.get("status") == "open":
            data["tab"] = TAB_OPEN
            del data["status"]
        if data.get("assignee") == "me":
            data["assignee"] = ASSIGNEE_MINE
        return data


def _cursor_make(ticket: Ticket) -> str:
    raw = f"{ticket.created_at.isoformat()}|{ticket.pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_read(cursor: str) -> tuple[dt.datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, pk = raw.split("|")
        created_at = dt.datetime.fromisoformat(created)
        if timezone.is_naive(created_at):
            raise ValueError(created)
        return created_at, int(pk)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValidationFailed({"cursor": [_("This cursor is not valid.")]}) from None


def _after_cursor(tickets: QuerySet[Ticket], cursor: str | None) -> QuerySet[Ticket]:
    """Rows after the cursor in (-created_at, -id) order. Written as `created_at <= c` minus the
    ties already seen, so PostgreSQL starts its index scan at the cursor instead of filtering
    every newer row."""
    if not cursor:
        return tickets
    created_at, pk = _cursor_read(cursor)
    return tickets.filter(created_at__lte=created_at).exclude(created_at=created_at, pk__gte=pk)


# --- Configuration lists (the paths are fixed words, so they come before /{ticket_id}) -------


def _require_view(request: HttpRequest) -> None:
    require_perm(request.auth, "tickets.view_ticket")


@router.get("/categories", response=list[CategoryOut], summary="Active ticket categories")
def ticket_category_list_api(request: HttpRequest):
    _require_view(request)
    every = list(Category.objects.values("pk", "name", "parent_id", "is_active"))
    by_id = {c["pk"]: c for c in every}

    def path(c: dict) -> str:
        names, node, seen = [], c, set()
        while node is not None and node["pk"] not in seen:
            seen.add(node["pk"])
            names.append(node["name"])
            node = by_id.get(node["parent_id"])
        return " › ".join(reversed(names))

    rows = [
        {"id": c["pk"], "name": c["name"], "path": path(c), "parent_id": c["parent_id"]}
        for c in every
        if c["is_active"]
    ]
    return sorted(rows, key=lambda c: c["path"])


@router.get("/departments", response=list[Ref], summary="Departments tickets are handed to")
def ticket_department_list_api(request: HttpRequest):
    _require_view(request)
    return [{"id": d.pk, "name": d.name} for d in Department.objects.filter(is_active=True)]


@router.get("/root-causes", response=list[Ref], summary="Root causes of complaints")
def ticket_root_cause_list_api(request: HttpRequest):
    _require_view(request)
    return [{"id": r.pk, "name": r.name} for r in RootCause.objects.filter(is_active=True)]


@router.get("/queues", response=list[QueueOut], summary="Active work queues")
def ticket_queue_list_api(request: HttpRequest):
    _require_view(request)
    queues = Queue.objects.filter(is_active=True).select_related("team")
    return [
        {
            "id": q.pk,
            "name": q.name,
            "team": _ref(q.team),
            "ticket_types": q.ticket_types,
            "mode": q.mode,
        }
        for q in queues
    ]


@router.get("/handoffs", response=list[HandoffQueueItem], summary="My departments' open hand-offs")
def handoff_list_api(request: HttpRequest):
    """The department queue of the caller: open hand-offs to the departments they handle, the
    one due first at the top. Empty for users who handle no department."""
    _require_view(request)
    now = timezone.now()
    return [
        {
            "id": h.pk,
            "ticket": {
                "id": h.ticket.pk,
                "number": h.ticket.number,
                "type": h.ticket.type,
                "severity": h.ticket.severity,
                "status": h.ticket.status,
                "subject": h.ticket.subject,
                "customer": _customer(h.ticket.customer),
            },
            "department": _ref(h.department),
            "instructions": h.instructions,
            "due_at": h.due_at,
            "is_overdue": h.due_at <= now,
            "urge_count": h.urge_count,
            "requested_by": _user(h.requested_by),
            "created_at": h.created_at,
        }
        for h in handoff_list_for_handler(user=request.auth)
    ]


# --- Tickets ----------------------------------------------------------------------------------


@router.get("", response=TicketPage, summary="List tickets (cursor pagination)")
def ticket_list_api(request: HttpRequest, filters: Query[TicketFilters]):
    """The tickets the caller may see, newest first (`-created_at, -id`).

    Pages are cut by a cursor, not by page number, and no total is counted, so a page costs
    the same on page 1 and page 10,000 of a million tickets. Read `results`; while `has_more` is
    true, ask again with `cursor` set to `next` and the same filters.
    """
    now, limit = timezone.now(), filters.limit
    filterset = TicketApiFilterSet(
        filters.filterset_data(),
        queryset=ticket_list_visible_to(user=request.auth),
        request=request,
        now=now,
    )
    if not filterset.is_valid():
        raise ValidationFailed({k: list(v) for k, v in filterset.errors.items()})
    tickets = _after_cursor(filterset.qs, filters.cursor).order_by("-created_at", "-id")
    # Two steps: the page's ids from the narrow table (the index does the work), then the rows
    # with their relations by id. One wide query with seven joins, a sort and a limit costs
    # PostgreSQL more to plan than both of these take to run.
    page_ids = list(tickets.values_list("pk", flat=True)[: limit + 1])
    has_more = len(page_ids) > limit
    page_ids = page_ids[:limit]
    page = ticket_list_for_display(Ticket.objects.filter(pk__in=page_ids))
    # The API's rows also name the store and the department the ticket waits on.
    by_id = {t.pk: t for t in page.select_related("store", "department")}
    rows = [by_id[pk] for pk in page_ids if pk in by_id]
    return {
        "results": [_list_item(t, now) for t in rows],
        "next": _cursor_make(rows[-1]) if has_more and rows else None,
        "has_more": has_more,
        "limit": limit,
    }


@router.post("", response={201: TicketOut}, summary="Open a ticket")
def ticket_create_api(request: HttpRequest, payload: TicketCreateIn):
    data = payload.dict(
        exclude={"customer_id", "category_id", "store_id", "assignee_id"}, exclude_none=True
    )
    data.update(
        customer=payload.customer_id,
        category=payload.category_id,
        store=payload.store_id,
        assignee=payload.assignee_id,
    )
    with _api_field_names():
        ticket = services.ticket_create(actor=request.auth, data=data)
    return Status(201, _detail(request, ticket.pk))


@router.get("/{ticket_id}", response=TicketOut, summary="One ticket with its hand-offs and files")
def ticket_detail_api(request: HttpRequest, ticket_id: int):
    return _detail(request, ticket_id)


@router.patch("/{ticket_id}", response=TicketOut, summary="Edit what the ticket is about")
def ticket_update_api(request: HttpRequest, ticket_id: int, payload: TicketUpdateIn):
    data = payload.dict(exclude_unset=True, exclude={"category_id", "store_id"})
    for field in ("category", "store"):
        if f"{field}_id" in payload.model_fields_set:
            data[field] = getattr(payload, f"{field}_id")
    with _api_field_names():
        services.ticket_update(actor=request.auth, ticket_id=ticket_id, data=data)
    return _detail(request, ticket_id)


@router.get("/{ticket_id}/events", response=list[TicketEventOut], summary="The ticket's timeline")
def ticket_event_list_api(request: HttpRequest, ticket_id: int):
    ticket = ticket_get_for_user(user=request.auth, ticket_id=ticket_id)
    return [_event(e) for e in ticket_timeline(ticket=ticket)]


# --- Actions ----------------------------------------------------------------------------------


@router.post("/{ticket_id}/assign", response=TicketOut, summary="Assign or move to a queue")
def ticket_assign_api(request: HttpRequest, ticket_id: int, payload: AssignIn):
    with _api_field_names():
        services.ticket_assign(
            actor=request.auth,
            ticket_id=ticket_id,
            assignee_id=payload.assignee_id,
            queue_id=payload.queue_id,
            note=payload.note,
        )
    return _detail(request, ticket_id)


@router.post("/{ticket_id}/start", response=TicketOut, summary="Start work")
def ticket_start_api(request: HttpRequest, ticket_id: int):
    services.ticket_start(actor=request.auth, ticket_id=ticket_id)
    return _detail(request, ticket_id)


@router.post(
    "/{ticket_id}/reply", response={201: TicketEventOut}, summary="Record a reply to the customer"
)
def ticket_reply_api(request: HttpRequest, ticket_id: int, payload: ReplyIn):
    event = services.ticket_reply(
        actor=request.auth, ticket_id=ticket_id, body=payload.body, channel=payload.channel
    )
    return Status(201, _event(event))


@router.post("/{ticket_id}/notes", response={201: TicketEventOut}, summary="Add an internal note")
def ticket_note_api(request: HttpRequest, ticket_id: int, payload: NoteIn):
    event = services.ticket_note(actor=request.auth, ticket_id=ticket_id, body=payload.body)
    return Status(201, _event(event))


@router.post(
    "/{ticket_id}/wait-customer", response=TicketOut, summary="Wait on the customer (SLA pauses)"
)
def ticket_wait_customer_api(request: HttpRequest, ticket_id: int, payload: ReasonIn):
    services.ticket_wait_customer(actor=request.auth, ticket_id=ticket_id, reason=payload.reason)
    return _detail(request, ticket_id)


@router.post("/{ticket_id}/resume", response=TicketOut, summary="Back to work after waiting")
def ticket_resume_api(request: HttpRequest, ticket_id: int):
    services.ticket_resume(actor=request.auth, ticket_id=ticket_id)
    return _detail(request, ticket_id)


@router.post(
    "/{ticket_id}/hand-off", response={201: HandoffOut}, summary="Hand to another department"
)
def ticket_hand_off_api(request: HttpRequest, ticket_id: int, payload: HandOffIn):
    with _api_field_names():
        handoff = services.ticket_hand_off(
            actor=request.auth,
            ticket_id=ticket_id,
            department_id=payload.department_id,
            instructions=payload.instructions,
            due_at=payload.due_at,
        )
    return Status(201, _handoff(handoff))


@router.post("/{ticket_id}/handoff/answer", response=TicketOut, summary="The department answers")
def handoff_answer_api(request: HttpRequest, ticket_id: int, payload: HandoffAnswerIn):
    """The answer goes back to the agent; with `resolution` it resolves the ticket at once."""
    renames = {field: f"resolution.{field}" for field in RESOLUTION_FIELDS}
    renames["root_cause"] = "resolution.root_cause_id"
    with _api_field_names(renames):
        services.handoff_answer(
            actor=request.auth,
            ticket_id=ticket_id,
            answer=payload.answer,
            resolution=payload.resolution.service_data() if payload.resolution else None,
        )
    return _detail(request, ticket_id)


@router.post("/{ticket_id}/handoff/cancel", response=TicketOut, summary="Withdraw the hand-off")
def handoff_cancel_api(request: HttpRequest, ticket_id: int, payload: ReasonIn):
    services.handoff_cancel(actor=request.auth, ticket_id=ticket_id, reason=payload.reason)
    return _detail(request, ticket_id)


@router.post("/{ticket_id}/resolve", response=TicketOut, summary="Record the resolution")
def ticket_resolve_api(request: HttpRequest, ticket_id: int, payload: ResolutionIn):
    with _api_field_names():
        services.ticket_resolve(
            actor=request.auth, ticket_id=ticket_id, data=payload.service_data()
        )
    return _detail(request, ticket_id)


@router.post("/{ticket_id}/acceptance", response=TicketOut, summary="Record the customer's answer")
def ticket_acceptance_api(request: HttpRequest, ticket_id: int, payload: AcceptanceIn):
    """A rejection within the reopen window reopens the ticket."""
    services.ticket_record_acceptance(
        actor=request.auth,
        ticket_id=ticket_id,
        accepted=payload.accepted,
        note=payload.note,
        via=payload.via,
    )
    return _detail(request, ticket_id)


@router.post("/{ticket_id}/close", response=TicketOut, summary="Close a resolved ticket")
def ticket_close_api(request: HttpRequest, ticket_id: int):
    services.ticket_close(actor=request.auth, ticket_id=ticket_id)
    return _detail(request, ticket_id)


@router.post("/{ticket_id}/reopen", response=TicketOut, summary="Reopen: the customer objects")
def ticket_reopen_api(request: HttpRequest, ticket_id: int, payload: ReasonIn):
    services.ticket_reopen(actor=request.auth, ticket_id=ticket_id, reason=payload.reason)
    return _detail(request, ticket_id)


@router.post("/{ticket_id}/callbacks", response={201: CallbackOut}, summary="Promise a callback")
def ticket_callback_api(request: HttpRequest, ticket_id: int, payload: CallbackIn):
    followup: FollowUp = services.ticket_promise_callback(
        actor=request.auth, ticket_id=ticket_id, due_at=payload.due_at, note=payload.note
    )
    return Status(
        201,
        {
            "id": followup.pk,
            "purpose": followup.purpose,
            "status": followup.status,
            "due_at": followup.due_at,
            "assignee": _user(followup.assignee),
            "note": followup.note,
        },
    )


class TicketCallOut(Schema):
    ticket_id: int
    phone: str = Field(description="The customer's full number (E.164), for this call only.")
    display: str = Field(description="The number as people write it.")
    tel: str = Field(description="A tel: link to dial it.")


@router.post(
    "/{ticket_id}/call",
    response=TicketCallOut,
    summary="The customer's number to call about the ticket (audited)",
)
def ticket_call_api(request: HttpRequest, ticket_id: int):
    """For the ticket's assignee, or whoever hands tickets out; the reveal is audited with the
    ticket it was for. Everything else shows numbers masked. 409 `no_phone` without one."""
    phone = services.ticket_call(
        actor=request.auth, ticket_id=ticket_id, ip=request.META.get("REMOTE_ADDR")
    )
    return {
        "ticket_id": ticket_id,
        "phone": phone.value,
        "display": phone.display,
        "tel": f"tel:{phone.value}",
    }


@router.post(
    "/{ticket_id}/external-escalations",
    response={201: ExternalEscalationOut},
    summary="Record that the complaint was taken outside (消协, media)",
)
def ticket_external_escalation_api(
    request: HttpRequest, ticket_id: int, payload: ExternalEscalationIn
):
    escalation = services.ticket_escalate_external(
        actor=request.auth,
        ticket_id=ticket_id,
        body=payload.body,
        reported_on=payload.reported_on,
        reference=payload.reference,
        notes=payload.notes,
    )
    return Status(201, _escalation(escalation))


@router.post("/{ticket_id}/attachments", response={201: AttachmentOut}, summary="Upload a file")
def ticket_attachment_add_api(request: HttpRequest, ticket_id: int, file: File[UploadedFile]):
    """multipart/form-data with one `file`; photos, PDF, Office files, text and recordings up to
    ATTACHMENT_MAX_BYTES."""
    attachment = services.ticket_attach(actor=request.auth, ticket_id=ticket_id, upload=file)
    return Status(201, _attachment(attachment))


@router.get(
    "/{ticket_id}/attachments/{attachment_id}",
    response={200: None},
    summary="Download a file",
)
def ticket_attachment_download_api(request: HttpRequest, ticket_id: int, attachment_id: int):
    ticket = ticket_get_for_user(user=request.auth, ticket_id=ticket_id)
    attachment = ticket.attachments.filter(pk=attachment_id).first()
    if attachment is None:
        raise NotFound(_("Attachment not found."), code="attachment_not_found")
    return attachment_response(
        attachment.file.open("rb"),
        name=attachment.name,
        content_type=attachment.content_type,
        inline=False,
    )
