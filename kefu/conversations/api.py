"""Consultation endpoints under /api/v1/conversations: conversations and their messages, the
agent's status, hotline calls (the telephony integration) and quick replies.

Reads go through the selectors (an agent sees their own conversations and the ones waiting for an
agent; leads see all); writes are action endpoints calling the services. Customers appear by id,
number and name only: no phone number or e-mail is ever part of these payloads, and a call's
number is masked.
"""

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import IntegrityError
from django.db.models import Q
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from kefu.accounts.models import User
from kefu.conversations import services
from kefu.conversations.models import AgentStatus, CallRecord, Conversation, QuickReply
from kefu.conversations.selectors import (
    call_list_filtered,
    conversation_get_for_user,
    conversation_list_visible_to,
    message_list,
    quick_reply_list_for,
)
from kefu.core.bounds import ID_MAX, ID_PATTERN, DateTimeIn, FilterDate, Id, Offset
from kefu.core.exceptions import NotFound, ValidationFailed
from kefu.core.permissions import require_perm
from kefu.core.schemas import InputSchema, Ref
from kefu.customers.api import CustomerRef
from kefu.customers.contacts import PHONE, contact_mask

router = Router(tags=["conversations"])


# --- Schemas -----------------------------------------------------------------------------------
class ChannelRef(Schema):
    id: int
    code: str
    name: str
    kind: str = Field(description="web_chat, wechat, email, webhook, phone, sms or walk_in")


class ConversationTicketRef(Schema):
    id: int
    number: str
    subject: str
    status: str


class ConversationOut(Schema):
    id: int
    status: str = Field(description="queued (waiting for an agent), open or closed")
    channel: ChannelRef
    customer: CustomerRef
    assignee: Ref | None
    queue: Ref | None
    subject: str
    is_offline: bool = Field(description="Started while nobody was online: answered first.")
    waiting_since: dt.datetime | None = Field(
        description="The oldest customer message not answered yet."
    )
    last_message_at: dt.datetime | None
    last_message_preview: str
    first_response_at: dt.datetime | None
    assigned_at: dt.datetime | None
    closed_at: dt.datetime | None
    topic: str = Field(description="The consultation record: what the customer asked about.")
    outcome: str = Field(description="answered, appointment, order, ticket, no_result or ''")
    outcome_note: str
    ticket: ConversationTicketRef | None
    rating: int | None = Field(description="The customer's satisfaction rating, 1 to 5.")
    rating_comment: str
    created_at: dt.datetime


class ConversationPage(Schema):
    results: list[ConversationOut]
    next: int | None = Field(description="Pass as `offset` for the following page.")
    has_more: bool
    limit: int


class MessageOut(Schema):
    id: int
    conversation: int
    direction: str = Field(description="in (customer), out (to the customer) or note (internal)")
    kind: str
    body: str
    author: str
    is_automatic: bool
    status: str = Field(description="received, queued, sent, delivered, read or failed")
    media_url: str
    attachment: str
    attachment_name: str
    created_at: dt.datetime


class ConversationFilters(Schema):
    status: str | None = Field(None, description="queued, open or closed")
    channel: str | None = Field(None, description="A channel's code.")
    assignee: str | None = Field(
        None,
        pattern=rf"^(me|none|{ID_PATTERN})$",
        description="A user id, `me` or `none` (no agent yet).",
    )
    customer: Id | None = None
    waiting: bool | None = Field(
        None, description="true: open with a customer message not answered yet."
    )
    offset: Offset = 0
    limit: int = Field(50, ge=1, le=200)


class MessageFilters(Schema):
    after_id: int = Field(
        0, ge=0, le=ID_MAX, description="Messages after this id (resume a client)."
    )
    before_id: Id | None = Field(None, description="Older messages, before this id.")
    limit: int = Field(100, ge=1, le=500)


class BodyIn(InputSchema):
    body: str = Field(max_length=5000)


class TransferIn(InputSchema):
    agent: Id | None = Field(None, description="The agent to hand the conversation to; or")
    queue: Id | None = Field(None, description="the queue to put it back into.")
    note: str = Field("", max_length=500)


class CloseIn(InputSchema):
    topic: str = Field("", description="What the customer asked about (required).")
    outcome: str = Field("", description="answered, appointment, order, ticket or no_result")
    note: str = Field("", max_length=5000)


class ConversationTicketIn(InputSchema):
    type: str = Field(
        description="consultation, complaint, suggestion, after_sales or service_request"
    )
    subject: str = Field(max_length=200)
    category_id: Id | None = None
    severity: str = Field("normal", description="normal, urgent or major")
    description: str = Field("", description="Empty: the transcript of the conversation.")
    store_id: Id | None = None
    order_ref: str = ""
    tags: list[str] = []
    assignee_id: Id | None = Field(None, description="Empty: routed through the queues.")
    callback_due_at: DateTimeIn | None = None


class AgentStatusIn(InputSchema):
    status: str = Field(description="online, busy, away or offline")
    capacity: int | None = Field(None, description="Chats at once, 1 to 50.")


class AgentStatusOut(Schema):
    status: str
    capacity: int
    changed_at: dt.datetime | None
    open_conversations: int


class CallbackRef(Schema):
    id: int
    status: str
    due_at: dt.datetime
    assignee: Ref | None


class CallIn(InputSchema):
    phone: str = Field("", max_length=40, description="The caller's (or called) number.")
    caller_name: str = Field("", max_length=100)
    direction: str = Field("in", description="in or out")
    agent: Id | None = Field(None, description="The agent who took or made the call.")
    started_at: DateTimeIn | None = Field(None, description="Default: now.")
    answered_at: DateTimeIn | None = None
    ended_at: DateTimeIn | None = None
    result: str = Field(description="answered, missed or dropped")
    recording_url: str = Field("", max_length=500)
    notes: str = Field("", max_length=5000)
    external_id: str = Field(
        "", max_length=100, description="The telephony system's call id: a retry is stored once."
    )


class CallOut(Schema):
    id: int
    customer: CustomerRef
    phone: str = Field(description="Masked (138****1234).")
    direction: str
    agent: Ref | None
    started_at: dt.datetime
    answered_at: dt.datetime | None
    ended_at: dt.datetime | None
    duration_seconds: int | None
    result: str
    recording_url: str
    notes: str
    external_id: str
    callback: CallbackRef | None = Field(
        description="The callback task a missed or dropped call created."
    )
    created_at: dt.datetime


class CallPage(Schema):
    results: list[CallOut]
    next: int | None = Field(description="Pass as `offset` for the following page.")
    has_more: bool
    limit: int


class CallFilters(Schema):
    result: str | None = Field(None, description="answered, missed or dropped")
    direction: str | None = Field(None, description="in or out")
    agent: str | None = Field(
        None, pattern=rf"^(me|{ID_PATTERN})$", description="A user id or `me`."
    )
    customer: Id | None = None
    date_from: FilterDate | None = Field(None, description="First day (local), included.")
    date_to: FilterDate | None = Field(None, description="Last day (local), included.")
    offset: Offset = 0
    limit: int = Field(50, ge=1, le=200)


class QuickReplyOut(Schema):
    id: int
    shortcut: str
    title: str
    body: str
    is_team: bool = Field(description="A team reply everybody can use; else the caller's own.")


class QuickReplyIn(InputSchema):
    shortcut: str = Field("", max_length=31)
    title: str = Field("", max_length=100)
    body: str = Field("", max_length=5000)
    team: bool = Field(False, description="A team reply (needs conversations.change_quickreply).")


class QuickReplyFilters(Schema):
    q: str = Field("", description="Start of the shortcut or words of the title.")


# --- Builders (plain dicts: the response schema validates them once) -----------------------------
def _ref(obj: Any) -> dict | None:
    return None if obj is None else {"id": obj.pk, "name": str(obj)}


def _customer(customer) -> dict:
    return {"id": customer.pk, "number": customer.number, "name": customer.name}


def _conversation(c: Conversation) -> dict:
    return {
        "id": c.pk,
        "status": c.status,
        "channel": {
            "id": c.channel.pk,
            "code": c.channel.code,
            "name": c.channel.name,
            "kind": c.channel.kind,
        },
        "customer": _customer(c.customer),
        "assignee": _ref(c.assignee),
        "queue": _ref(c.queue),
        "subject": c.subject,
        "is_offline": c.is_offline,
        "waiting_since": c.waiting_since,
        "last_message_at": c.last_message_at,
        "last_message_preview": c.last_message_preview,
        "first_response_at": c.first_response_at,
        "assigned_at": c.assigned_at,
        "closed_at": c.closed_at,
        "topic": c.topic,
        "outcome": c.outcome,
        "outcome_note": c.outcome_note,
        "ticket": {
            "id": c.ticket.pk,
            "number": c.ticket.number,
            "subject": c.ticket.subject,
            "status": c.ticket.status,
        }
        if c.ticket_id
        else None,
        "rating": c.rating,
        "rating_comment": c.rating_comment,
        "created_at": c.created_at,
    }


def _detail(request: HttpRequest, conversation_id: int) -> dict:
    return _conversation(
        conversation_get_for_user(user=request.auth, conversation_id=conversation_id)
    )


def _call(call: CallRecord) -> dict:
    duration = call.duration
    callback = call.callback
    return {
        "id": call.pk,
        "customer": _customer(call.customer),
        "phone": contact_mask(PHONE, call.phone),
        "direction": call.direction,
        "agent": _ref(call.agent),
        "started_at": call.started_at,
        "answered_at": call.answered_at,
        "ended_at": call.ended_at,
        "duration_seconds": int(duration.total_seconds()) if duration is not None else None,
        "result": call.result,
        "recording_url": call.recording_url,
        "notes": call.notes,
        "external_id": call.external_id,
        "callback": {
            "id": callback.pk,
            "status": callback.status,
            "due_at": callback.due_at,
            "assignee": _ref(callback.assignee),
        }
        if callback is not None
        else None,
        "created_at": call.created_at,
    }


def _call_reload(call_id: int) -> CallRecord:
    return CallRecord.objects.select_related("customer", "agent", "callback__assignee").get(
        pk=call_id
    )


def _quick_reply(reply: QuickReply) -> dict:
    return {
        "id": reply.pk,
        "shortcut": reply.shortcut,
        "title": reply.title,
        "body": reply.body,
        "is_team": reply.owner_id is None,
    }


def _user_filter(request: HttpRequest, value: str) -> User | int:
    return request.auth if value == "me" else int(value)


@contextmanager
def _api_field_names(renames: dict[str, str]) -> Iterator[None]:
    try:
        yield
    except ValidationFailed as exc:
        exc.errors = {renames.get(field, field): msgs for field, msgs in exc.errors.items()}
        raise


# --- The agent's status (fixed paths come before /{conversation_id}) ---------------------------
def _agent_status_out(user: User, record: AgentStatus | None) -> dict:
    return {
        "status": record.status if record else AgentStatus.Status.OFFLINE,
        "capacity": record.capacity if record else AgentStatus._meta.get_field("capacity").default,
        "changed_at": record.changed_at if record else None,
        "open_conversations": Conversation.objects.open().filter(assignee=user).count(),
    }


@router.get("/agent-status", response=AgentStatusOut, summary="My chat status")
def agent_status_get_api(request: HttpRequest):
    require_perm(request.auth, "conversations.view_conversation")
    user = request.auth
    return _agent_status_out(user, AgentStatus.objects.filter(user=user).first())


@router.put("/agent-status", response=AgentStatusOut, summary="Go online, busy, away or offline")
def agent_status_set_api(request: HttpRequest, payload: AgentStatusIn):
    """Going online hands the caller waiting chats, offline messages first."""
    record = services.agent_status_set(
        actor=request.auth, status=payload.status, capacity=payload.capacity
    )
    return _agent_status_out(request.auth, record)


# --- Calls --------------------------------------------------------------------------------------
@router.post(
    "/calls",
    response={200: CallOut, 201: CallOut},
    summary="Record a hotline call (telephony integration)",
)
def call_record_api(request: HttpRequest, payload: CallIn):
    """Stores the call against the customer owning the number (an unknown number becomes a
    prospect). A missed or dropped call creates a callback task due at once, for the agent given
    (or the agents online are told). Answers 201 when stored, 200 with the stored call when the
    same `external_id` was reported before, so the telephony system may retry safely."""
    data = payload.dict()
    try:
        call, created = services.call_record(actor=request.auth, data=data)
    except IntegrityError:
        # The same call reported twice at once: the other request stored it.
        stored = CallRecord.objects.filter(external_id=payload.external_id.strip()).first()
        if not payload.external_id.strip() or stored is None:
            raise
        call, created = stored, False
    return Status(201 if created else 200, _call(_call_reload(call.pk)))


@router.get("/calls", response=CallPage, summary="Hotline calls, newest first")
def call_list_api(request: HttpRequest, filters: Query[CallFilters]):
    """For holders of conversations.view_callrecord. Page with `offset`/`limit`; no total."""
    errors = {}
    if filters.result and filters.result not in CallRecord.Result.values:
        errors["result"] = [_("Answered, missed or dropped.")]
    if filters.direction and filters.direction not in CallRecord.Direction.values:
        errors["direction"] = [_("In or out.")]
    if filters.date_from and filters.date_to and filters.date_to < filters.date_from:
        errors["date_to"] = [_("The end comes after the start.")]
    if errors:
        raise ValidationFailed(errors)
    calls = call_list_filtered(
        user=request.auth,
        result=filters.result,
        direction=filters.direction,
        agent=_user_filter(request, filters.agent) if filters.agent else None,
        customer_id=filters.customer,
        date_from=filters.date_from,
        date_to=filters.date_to,
    )
    start, limit = filters.offset, filters.limit
    rows = list(calls[start : start + limit + 1])
    has_more = len(rows) > limit
    return {
        "results": [_call(c) for c in rows[:limit]],
        "next": start + limit if has_more else None,
        "has_more": has_more,
        "limit": limit,
    }


# --- Quick replies -----------------------------------------------------------------------------
def _quick_reply_get(request: HttpRequest, reply_id: int) -> QuickReply:
    """The caller's own reply or a team reply; other agents' replies are not found."""
    reply = QuickReply.objects.filter(
        Q(owner=request.auth) | Q(owner__isnull=True), pk=reply_id
    ).first()
    if reply is None:
        raise NotFound(_("Quick reply not found."))
    return reply


@router.get("/quick-replies", response=list[QuickReplyOut], summary="My and the team's replies")
def quick_reply_list_api(request: HttpRequest, filters: Query[QuickReplyFilters]):
    require_perm(request.auth, "conversations.view_conversation")
    return [_quick_reply(r) for r in quick_reply_list_for(user=request.auth, query=filters.q)]


@router.post("/quick-replies", response={201: QuickReplyOut}, summary="Add a quick reply")
def quick_reply_create_api(request: HttpRequest, payload: QuickReplyIn):
    reply = services.quick_reply_save(
        actor=request.auth, data=payload.dict(exclude={"team"}), team=payload.team
    )
    return Status(201, _quick_reply(reply))


@router.put("/quick-replies/{reply_id}", response=QuickReplyOut, summary="Change a quick reply")
def quick_reply_update_api(request: HttpRequest, reply_id: int, payload: QuickReplyIn):
    """One's own reply; a team reply needs conversations.change_quickreply."""
    reply = _quick_reply_get(request, reply_id)
    reply = services.quick_reply_save(
        actor=request.auth,
        data=payload.dict(exclude={"team"}),
        team=reply.owner_id is None,
        reply_id=reply.pk,
    )
    return _quick_reply(reply)


@router.delete("/quick-replies/{reply_id}", response={204: None}, summary="Delete a quick reply")
def quick_reply_delete_api(request: HttpRequest, reply_id: int):
    """One's own reply; a team reply needs conversations.delete_quickreply."""
    require_perm(request.auth, "conversations.reply_conversation")
    reply = _quick_reply_get(request, reply_id)
    services.quick_reply_delete(actor=request.auth, reply_id=reply.pk)
    return Status(204, None)


# --- Conversations -----------------------------------------------------------------------------
@router.get("", response=ConversationPage, summary="Conversations, latest activity first")
def conversation_list_api(request: HttpRequest, filters: Query[ConversationFilters]):
    """Agents see their own conversations and those waiting for an agent; supervisors all.
    Page with `offset`/`limit`; no total is counted."""
    require_perm(request.auth, "conversations.view_conversation")
    conversations = conversation_list_visible_to(user=request.auth)
    if filters.status:
        if filters.status not in Conversation.Status.values:
            raise ValidationFailed({"status": [_("Queued, open or closed.")]})
        conversations = conversations.filter(status=filters.status)
    if filters.channel:
        conversations = conversations.filter(channel__code=filters.channel)
    if filters.assignee == "none":
        conversations = conversations.filter(assignee__isnull=True)
    elif filters.assignee:
        conversations = conversations.filter(assignee=_user_filter(request, filters.assignee))
    if filters.customer is not None:
        conversations = conversations.filter(customer_id=filters.customer)
    if filters.waiting is not None:
        waiting = Q(waiting_since__isnull=False) & ~Q(status=Conversation.Status.CLOSED)
        conversations = conversations.filter(waiting if filters.waiting else ~waiting)
    start, limit = filters.offset, filters.limit
    rows = list(
        conversations.select_related("channel", "customer", "assignee", "queue", "ticket").order_by(
            "-last_message_at", "-id"
        )[start : start + limit + 1]
    )
    has_more = len(rows) > limit
    return {
        "results": [_conversation(c) for c in rows[:limit]],
        "next": start + limit if has_more else None,
        "has_more": has_more,
        "limit": limit,
    }


@router.get("/{conversation_id}", response=ConversationOut, summary="One conversation")
def conversation_detail_api(request: HttpRequest, conversation_id: int):
    return _detail(request, conversation_id)


@router.get(
    "/{conversation_id}/messages",
    response=list[MessageOut],
    summary="Messages of a conversation, in order (internal notes included)",
)
def message_list_api(request: HttpRequest, conversation_id: int, filters: Query[MessageFilters]):
    """Without `after_id` or `before_id`: the latest `limit` messages. `after_id` resumes a
    client that saw messages up to that id; `before_id` pages back through older ones."""
    conversation = conversation_get_for_user(user=request.auth, conversation_id=conversation_id)
    messages = message_list(
        conversation=conversation,
        after_id=filters.after_id,
        before_id=filters.before_id,
        limit=filters.limit,
    )
    return [services.message_payload(m) for m in messages]


@router.post(
    "/{conversation_id}/messages", response={201: MessageOut}, summary="Answer the customer"
)
def message_send_api(request: HttpRequest, conversation_id: int, payload: BodyIn):
    """The message is delivered through the conversation's channel; a conversation without an
    agent becomes the caller's."""
    conversation_get_for_user(user=request.auth, conversation_id=conversation_id)
    message = services.message_send(
        actor=request.auth, conversation_id=conversation_id, body=payload.body
    )
    return Status(201, services.message_payload(message))


@router.post("/{conversation_id}/notes", response={201: MessageOut}, summary="Add an internal note")
def note_add_api(request: HttpRequest, conversation_id: int, payload: BodyIn):
    """Agents see notes beside the chat; the customer never does."""
    conversation_get_for_user(user=request.auth, conversation_id=conversation_id)
    message = services.note_add(
        actor=request.auth, conversation_id=conversation_id, body=payload.body
    )
    return Status(201, services.message_payload(message))


@router.post(
    "/{conversation_id}/transfer",
    response=ConversationOut,
    summary="Hand to another agent or queue",
)
def conversation_transfer_api(request: HttpRequest, conversation_id: int, payload: TransferIn):
    """Give `agent` or `queue`. Agents transfer their own conversations; supervisors any."""
    conversation_get_for_user(user=request.auth, conversation_id=conversation_id)
    conversation = services.conversation_transfer(
        actor=request.auth,
        conversation_id=conversation_id,
        agent_id=payload.agent,
        queue_id=payload.queue,
        note=payload.note,
    )
    # Read as stored: after handing it on, the agent may no longer see the conversation.
    return _conversation(conversation)


@router.post(
    "/{conversation_id}/close",
    response=ConversationOut,
    summary="Close with the consultation record",
)
def conversation_close_api(request: HttpRequest, conversation_id: int, payload: CloseIn):
    """`topic` and `outcome` fill the consultation record (客户咨询即时记录表); web chat and
    WeChat customers are then asked to rate the service."""
    conversation_get_for_user(user=request.auth, conversation_id=conversation_id)
    services.conversation_close(
        actor=request.auth,
        conversation_id=conversation_id,
        topic=payload.topic,
        outcome=payload.outcome,
        note=payload.note,
    )
    return _detail(request, conversation_id)


class ConversationCallOut(Schema):
    conversation_id: int
    phone: str = Field(description="The customer's full number (E.164), for this call only.")
    display: str = Field(description="The number as people write it.")
    tel: str = Field(description="A tel: link to dial it.")


@router.post(
    "/{conversation_id}/call",
    response=ConversationCallOut,
    summary="The customer's number to call about the conversation (audited)",
)
def conversation_call_api(request: HttpRequest, conversation_id: int):
    """For the conversation's agent, or a lead; the reveal is audited with the conversation it
    was for. Everything else shows numbers masked. 409 `no_phone` without one."""
    phone = services.conversation_call(
        actor=request.auth, conversation_id=conversation_id, ip=request.META.get("REMOTE_ADDR")
    )
    return {
        "conversation_id": conversation_id,
        "phone": phone.value,
        "display": phone.display,
        "tel": f"tel:{phone.value}",
    }


@router.post(
    "/{conversation_id}/ticket",
    response={201: ConversationTicketRef},
    summary="Open a ticket from the conversation",
)
def conversation_ticket_api(
    request: HttpRequest, conversation_id: int, payload: ConversationTicketIn
):
    """The ticket gets the conversation's customer and channel; without a description, the
    transcript."""
    conversation_get_for_user(user=request.auth, conversation_id=conversation_id)
    data = payload.dict(exclude={"category_id", "store_id", "assignee_id"}, exclude_none=True)
    data.update(category=payload.category_id, store=payload.store_id, assignee=payload.assignee_id)
    renames = {"category": "category_id", "store": "store_id", "assignee": "assignee_id"}
    with _api_field_names(renames):
        ticket = services.conversation_open_ticket(
            actor=request.auth, conversation_id=conversation_id, data=data
        )
    return Status(
        201,
        {
            "id": ticket.pk,
            "number": ticket.number,
            "subject": ticket.subject,
            "status": ticket.status,
        },
    )
