"""Every write to consultations: one transaction each; live updates and sends after commit.

The 000 rules live here: the greeting at once on a new conversation, the away reply when nobody is
online or the office is closed, the 60-second wait alerts, offline messages first at login.
"""

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from kefu.accounts.models import User
from kefu.accounts.roles import Role
from kefu.businesstime.selectors import work_calendar_get
from kefu.conversations import realtime
from kefu.conversations.adapters import Inbound, adapter_for
from kefu.conversations.files import attachment_url
from kefu.conversations.models import (
    AgentStatus,
    CallRecord,
    Channel,
    ChannelIdentity,
    Conversation,
    ConversationEvent,
    InboxQueue,
    Message,
    QuickReply,
)
from kefu.conversations.selectors import conversation_get_for_user
from kefu.core.attachments import attachment_check, attachment_is_accepted, attachment_refusal
from kefu.core.exceptions import Conflict, Forbidden, NotFound, ValidationFailed
from kefu.core.links import is_http_url
from kefu.core.permissions import has_perm, require_perm
from kefu.customers.models import ContactPoint, Customer, CustomerEvent
from kefu.customers.services import (
    customer_create,
    customer_get_or_create_by_contact,
    customer_phone_reveal_for_call,
)
from kefu.notifications.services import notify

log = logging.getLogger(__name__)

WAIT_ALERT_AGENT = dt.timedelta(seconds=60)  # 000 在线咨询规范 6: every answer within a minute
WAIT_ALERT_SUPERVISOR = dt.timedelta(seconds=120)
SURVEY_WINDOW = dt.timedelta(hours=24)
PREVIEW_LENGTH = 120

_SOURCE_OF_KIND = {
    Channel.Kind.WEB_CHAT: Customer.Source.WEB_CHAT,
    Channel.Kind.WECHAT: Customer.Source.WECHAT,
    Channel.Kind.EMAIL: Customer.Source.EMAIL,
    Channel.Kind.WEBHOOK: Customer.Source.PLATFORM,
    Channel.Kind.PHONE: Customer.Source.PHONE,
    Channel.Kind.SMS: Customer.Source.PHONE,
    Channel.Kind.WALK_IN: Customer.Source.WALK_IN,
}


# --- Payloads shared by the live updates and the API ---------------------------------------------
def message_payload(message: Message) -> dict[str, Any]:
    author = message.author
    return {
        "id": message.pk,
        "conversation": message.conversation_id,
        "direction": message.direction,
        "kind": message.kind,
        "body": message.body,
        "author": str(author) if author else "",
        "is_automatic": message.is_automatic,
        "status": message.status,
        "media_url": message.media_url,
        "attachment": attachment_url(message),
        "attachment_name": message.attachment_name,
        "created_at": message.created_at.isoformat(),
    }


def conversation_payload(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.pk,
        "status": conversation.status,
        "channel": conversation.channel.name,
        "channel_kind": conversation.channel.kind,
        "customer": conversation.customer.name,
        "assignee": conversation.assignee_id,
        "is_offline": conversation.is_offline,
        "waiting_since": conversation.waiting_since.isoformat()
        if conversation.waiting_since
        else None,
        "preview": conversation.last_message_preview,
    }


def _publish_message(message: Message) -> None:
    """A message goes to agents watching the chat, its agent, every agent while nobody has it,
    and (unless it is a note) to the customer's widget."""
    conversation = message.conversation
    groups = [realtime.staff_group(conversation.pk)]
    if conversation.assignee_id:
        groups.append(realtime.agent_group(conversation.assignee_id))
    else:
        groups.append(realtime.INBOX_GROUP)
    if message.direction != Message.Direction.NOTE:
        groups.append(realtime.conversation_group(conversation.pk))
    realtime.publish(groups, {"type": "message", "message": message_payload(message)})


def assignment_payload(conversation: Conversation) -> dict[str, Any]:
    """What the customer's chat says about who answers: still waiting, or the agent's name."""
    agent = conversation.assignee if conversation.assignee_id else None
    return {"status": conversation.status, "agent": str(agent) if agent else ""}


def _publish_conversation(conversation: Conversation, kind: str = "conversation") -> None:
    groups = [realtime.INBOX_GROUP, realtime.staff_group(conversation.pk)]
    if conversation.assignee_id:
        groups.append(realtime.agent_group(conversation.assignee_id))
    if kind in ("closed", "rated"):
        groups.append(realtime.conversation_group(conversation.pk))
    realtime.publish(groups, {"type": kind, "conversation": conversation_payload(conversation)})


def _publish_assignment(conversation: Conversation) -> None:
    """Tell the customer's chat who answers now (an agent took it, or it waits again)."""
    realtime.publish(
        [realtime.conversation_group(conversation.pk)],
        {"type": "assignment", **assignment_payload(conversation)},
    )


def _event(
    conversation: Conversation,
    kind: str,
    *,
    actor: User | None,
    now: dt.datetime,
    **data: Any,
) -> ConversationEvent:
    return ConversationEvent.objects.create(
        conversation=conversation, kind=kind, actor=actor, data=data, created_at=now
    )


# --- Agents and routing ------------------------------------------------------------------------
# Every automatic assignment (a new chat routed, waiting chats handed out when an agent comes
# online, closes or transfers a chat, or raises their capacity, and the worker's sweep) decides
# under one lock, taken before any agent or queue row is written in the transaction. So two
# agents coming online at once never take the same chat, nobody is filled past their capacity,
# and the decisions cannot deadlock each other. The waiting chats themselves are locked with
# SKIP LOCKED: a chat an agent is answering or closing right now is left for the next pass.
ROUTING_LOCK = 0x4B45_4655_0001  # PostgreSQL advisory lock key ("KEFU" 1)
HAND_OUT_BATCH = 200  # waiting chats considered per pass


def routing_lock() -> None:
    """Take the routing lock for the rest of the transaction. PostgreSQL: a transaction-level
    advisory lock; SQLite: nothing to do, its writing transactions run one at a time (BEGIN
    IMMEDIATE)."""
    if not connection.in_atomic_block:
        raise RuntimeError("routing_lock() outside a transaction")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROUTING_LOCK])


def _status_of(user: User) -> AgentStatus:
    status, _created = AgentStatus.objects.get_or_create(user=user)
    return status


def _open_load(user_ids: list[int]) -> dict[int, int]:
    rows = (
        Conversation.objects.open()
        .filter(assignee_id__in=user_ids)
        .values("assignee_id")
        .annotate(n=Count("id"))
    )
    return {row["assignee_id"]: row["n"] for row in rows}


@dataclass
class _Seat:
    """An online agent: their status row, how many open chats they have, their queues."""

    status: AgentStatus
    load: int
    queues: set[int]

    @property
    def room(self) -> int:
        return self.status.capacity - self.load


def _seats() -> list[_Seat]:
    """Every online agent with their load and queues, in three queries."""
    statuses = list(
        AgentStatus.objects.filter(status=AgentStatus.Status.ONLINE, user__is_active=True)
        .select_related("user")
        .order_by("user_id")
    )
    if not statuses:
        return []
    ids = [s.user_id for s in statuses]
    load = _open_load(ids)
    queues: dict[int, set[int]] = {user_id: set() for user_id in ids}
    memberships = InboxQueue.members.through.objects.filter(user_id__in=ids)
    for user_id, queue_id in memberships.values_list("user_id", "inboxqueue_id"):
        queues[user_id].add(queue_id)
    return [_Seat(s, load.get(s.user_id, 0), queues[s.user_id]) for s in statuses]


def _overflow_due(queue: InboxQueue, conversation: Conversation, now: dt.datetime) -> bool:
    """The customer has waited the queue's overflow time for an answer."""
    if queue.overflow_after is None or conversation.waiting_since is None:
        return False
    return now - conversation.waiting_since >= dt.timedelta(seconds=queue.overflow_after)


def _choose(
    conversation: Conversation,
    seats: list[_Seat],
    queues: dict[int, InboxQueue],
    *,
    now: dt.datetime,
) -> tuple[_Seat | None, bool]:
    """The agent for a waiting chat, and whether it overflowed: an agent of its queue with room
    (round robin or least busy, as the queue says); failing that, after the queue's overflow
    time, any online agent with room (least busy)."""
    free = [seat for seat in seats if seat.room > 0]
    queue = queues.get(conversation.queue_id) if conversation.queue_id else None
    if queue is None:
        pool, overflow = free, False
    else:
        pool, overflow = [seat for seat in free if queue.pk in seat.queues], False
        if not pool and _overflow_due(queue, conversation, now):
            pool, overflow = free, True
    if not pool:
        return None, False
    if queue is not None and not overflow and queue.strategy == InboxQueue.Strategy.ROUND_ROBIN:
        after = queue.last_assigned_id or 0
        return min(pool, key=lambda s: (s.status.user_id <= after, s.status.user_id)), False
    # Least busy: fewest open chats, then the one who has waited longest for a chat.
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
    chosen = min(
        pool, key=lambda s: (s.load, s.status.last_assigned_at or oldest, s.status.user_id)
    )
    return chosen, overflow


def _hand_out(*, now: dt.datetime) -> list[Conversation]:
    """Give waiting chats to online agents with room, in order (offline messages first, then the
    longest waiting), as far as queues and capacity allow. Runs under the routing lock."""
    seats = _seats()
    free = [seat for seat in seats if seat.room > 0]
    if not free:
        return []
    queues = {q.pk: q for q in InboxQueue.objects.all()}
    # Only chats someone could take now: no queue, a queue with an agent who has room, or a
    # queue whose overflow time has passed.
    open_queues = set().union(*(seat.queues for seat in free))
    takeable = Q(queue__isnull=True) | Q(queue__in=open_queues)
    for queue in queues.values():
        if queue.pk not in open_queues and queue.overflow_after is not None:
            since = now - dt.timedelta(seconds=queue.overflow_after)
            takeable |= Q(queue=queue.pk, waiting_since__lte=since)
    waiting = (
        Conversation.objects.unassigned()
        .filter(takeable)
        .select_for_update(of=("self",), skip_locked=True)
        .select_related("customer", "channel")[:HAND_OUT_BATCH]
    )
    handed = []
    for conversation in waiting:
        seat, overflow = _choose(conversation, seats, queues, now=now)
        if seat is None:
            if not any(s.room > 0 for s in seats):
                break
            continue
        _assign(conversation, seat.status.user, actor=None, now=now, overflow=overflow)
        seat.load += 1
        seat.status.last_assigned_at = now
        if conversation.queue_id in queues:
            queues[conversation.queue_id].last_assigned_id = seat.status.user_id
        handed.append(conversation)
    return handed


def agents_online(*, queue_id: int | None = None) -> bool:
    """Someone online will answer a chat of the queue: one of its agents, or anyone when the
    queue overflows."""
    statuses = AgentStatus.objects.filter(status=AgentStatus.Status.ONLINE, user__is_active=True)
    if queue_id is not None:
        overflows = InboxQueue.objects.filter(pk=queue_id, overflow_after__isnull=False).exists()
        if not overflows:
            statuses = statuses.filter(user__inbox_queues=queue_id)
    return statuses.exists()


def _assign(
    conversation: Conversation,
    agent: User,
    *,
    actor: User | None,
    now: dt.datetime,
    note: str = "",
    kind: str = ConversationEvent.Kind.ASSIGNED,
    overflow: bool = False,
) -> None:
    previous = conversation.assignee_id
    conversation.assignee = agent
    conversation.assigned_at = now
    conversation.status = Conversation.Status.OPEN
    conversation.save(update_fields=["assignee", "assigned_at", "status", "updated_at"])
    if conversation.queue_id:
        InboxQueue.objects.filter(pk=conversation.queue_id).update(last_assigned=agent)
    AgentStatus.objects.filter(user=agent).update(last_assigned_at=now)
    data: dict[str, Any] = {"to": agent.pk, "previous": previous, "note": note}
    if overflow:
        data["overflow"] = True
    _event(conversation, kind, actor=actor, now=now, **data)
    if actor != agent:
        notify(
            [agent],
            kind="conversation_assigned",
            title=_("Chat from %(customer)s is yours") % {"customer": conversation.customer.name},
            body=note,
            url=conversation.get_absolute_url(),
            email=False,
        )
    if previous and previous != agent.pk:
        realtime.publish(
            [realtime.agent_group(previous)],
            {"type": "unassigned", "conversation": {"id": conversation.pk}},
        )
    _publish_conversation(conversation, kind="assigned")
    _publish_assignment(conversation)


def _route(conversation: Conversation, *, now: dt.datetime) -> None:
    """A chat needs an agent: hand out what waits, this one in its turn (`conversation` is
    brought up to date with the outcome)."""
    routing_lock()
    _hand_out(now=now)
    conversation.refresh_from_db(fields=["assignee", "assigned_at", "status"])
    if conversation.assignee_id is None:
        _publish_assignment(conversation)


@transaction.atomic
def conversations_hand_out(*, now: dt.datetime) -> int:
    """The worker's sweep, every minute: hand out chats left waiting although an agent has room
    (a status written past the services, a queue's overflow time passing). Returns how many."""
    routing_lock()
    return len(_hand_out(now=now))


@transaction.atomic
def agent_status_set(
    *,
    actor: User,
    status: str,
    capacity: int | None = None,
    now: dt.datetime | None = None,
) -> AgentStatus:
    """Go online, busy, away or offline. Going online (or making room while online) hands the
    agent waiting chats, offline messages (left while nobody was there) first."""
    require_perm(actor, "conversations.reply_conversation")
    now = now or timezone.now()
    errors = {}
    if status not in AgentStatus.Status.values:
        errors["status"] = [_("Unknown status.")]
    if capacity is not None and not 1 <= capacity <= 50:
        errors["capacity"] = [_("Between 1 and 50 chats.")]
    if errors:
        raise ValidationFailed(errors)
    routing_lock()  # before the status row: a hand-out in progress may be writing it
    record = AgentStatus.objects.select_for_update().filter(user=actor).first() or _status_of(actor)
    record.status = status
    if capacity is not None:
        record.capacity = capacity
    record.changed_at = now
    record.save()
    realtime.publish(
        [realtime.agent_group(actor.pk)],
        {"type": "status", "status": status, "capacity": record.capacity},
    )
    if status == AgentStatus.Status.ONLINE:
        _hand_out(now=now)
    return record


# --- Customers by channel identity -------------------------------------------------------------
def _identity_resolve(
    channel: Channel, inbound: Inbound, *, now: dt.datetime
) -> tuple[Customer, ChannelIdentity]:
    sender = inbound.sender
    known = list(
        ChannelIdentity.objects.filter(channel=channel, key=sender.key).values_list(
            "pk", "customer_id", "customer__merged_into_id"
        )[:1]
    )
    if known:
        identity_id, customer_id, merged_into_id = known[0]
        if merged_into_id is not None:
            ChannelIdentity.objects.filter(pk=identity_id).update(customer_id=merged_into_id)
        # The columns a chat needs (not the archive's search text and notes).
        customer = Customer.objects.only("name", "number", "store_id").get(
            pk=merged_into_id or customer_id
        )
        identity = ChannelIdentity(
            pk=identity_id, channel=channel, key=sender.key, customer_id=customer.pk
        )
        return customer, identity
    source = _SOURCE_OF_KIND.get(channel.kind, Customer.Source.OTHER)
    customer = None
    for kind, value in ((ContactPoint.Kind.PHONE, sender.phone), ("email", sender.email)):
        if value:
            customer, _created = customer_get_or_create_by_contact(
                actor=None, kind=kind, value=value, name=sender.name, source=source, now=now
            )
            break
    if customer is None and channel.kind == Channel.Kind.WECHAT:
        customer, _created = customer_get_or_create_by_contact(
            actor=None,
            kind=ContactPoint.Kind.WECHAT_OPENID,
            value=sender.key,
            name=sender.name or _("WeChat user %(tail)s") % {"tail": sender.key[-4:]},
            source=source,
            now=now,
        )
    if customer is None:
        name = sender.name.strip() or _("Visitor %(tail)s") % {"tail": sender.key[-4:].upper()}
        customer = customer_create(
            actor=None, data={"name": name[:100], "source": source}, contacts=[], now=now
        )
    identity = ChannelIdentity.objects.create(channel=channel, key=sender.key, customer=customer)
    return customer, identity


# --- Inbound ---------------------------------------------------------------------------------
@dataclass
class Received:
    """What `message_receive` did: the stored message (or the one stored by an earlier try)."""

    message: Message | None
    conversation: Conversation | None
    created: bool
    automatic: list[Message] = field(default_factory=list)
    rated: bool = False


def _automatic_text(conversation: Conversation, *, is_new: bool, now: dt.datetime) -> str:
    channel = conversation.channel
    parts = []
    if is_new and channel.greeting:
        parts.append(channel.greeting)
        conversation.greeted_at = now
    if conversation.away_replied_at is not None and not is_new:
        return "\n".join(parts)  # told once per conversation
    away = not work_calendar_get().is_open(now) or (
        (is_new or conversation.assignee_id is None)
        and not agents_online(queue_id=conversation.queue_id)
    )
    if away and conversation.away_replied_at is None:
        parts.append(
            channel.away_message
            or _(
                "Our agents are not online right now. Leave your message and we will answer "
                "first thing when we are back."
            )
        )
        conversation.away_replied_at = now
    if is_new and away:
        conversation.is_offline = True
    return "\n".join(parts)


def _conversation_find(
    channel: Channel, customer: Customer, identity: ChannelIdentity, inbound: Inbound
) -> Conversation | None:
    open_one = (
        Conversation.objects.select_for_update(of=("self",))
        .open()
        .filter(customer=customer, channel=channel)
        .first()
    )
    if open_one is not None or not inbound.thread_refs:
        return open_one
    # An e-mail answering a closed thread reopens it.
    return (
        Conversation.objects.select_for_update(of=("self",))
        .filter(channel=channel, customer=customer, thread_key__in=inbound.thread_refs)
        .order_by("-id")
        .first()
    )


def _survey_answer(
    channel: Channel, customer: Customer, inbound: Inbound, *, now: dt.datetime
) -> Conversation | None:
    """A WeChat reply of "1".."5" just after a closed chat is its rating, not a new chat."""
    if channel.kind != Channel.Kind.WECHAT or not re.fullmatch(r"\s*[1-5]\s*", inbound.body):
        return None
    last = (
        Conversation.objects.filter(channel=channel, customer=customer)
        .order_by("-id")
        .only("id", "status", "closed_at", "rated_at")
        .first()
    )
    if (
        last is None
        or last.status != Conversation.Status.CLOSED
        or last.rated_at is not None
        or not channel.has_survey
        or last.closed_at is None
        or now - last.closed_at > SURVEY_WINDOW
    ):
        return None
    return last


def message_receive(
    *, channel: Channel, inbound: Inbound, now: dt.datetime | None = None, passive: bool = False
) -> Received:
    """Store a customer's message once, in their open conversation on the channel (a new one
    routed to an agent if there is none), with the greeting or away reply the rules call for.

    A retried delivery (same external id) returns the stored message with created=False. With
    `passive`, automatic answers are returned for the caller to put in its HTTP reply (WeChat's
    passive reply) instead of being sent by the worker.
    """
    now = now or timezone.now()
    if not inbound.sender.key:
        raise ValidationFailed({"sender": [_("Who sent the message is missing.")]})
    if not (inbound.body.strip() or inbound.media_url or inbound.attachments):
        raise ValidationFailed({"body": [_("The message is empty.")]})
    if inbound.media_url and not is_http_url(inbound.media_url):
        raise ValidationFailed({"media_url": [_("Must be an http or https URL.")]})
    for name, _content in inbound.attachments:
        # Channels drop what is not accepted (with a note); this is the last line.
        if not attachment_is_accepted(name):
            raise ValidationFailed({"attachments": [attachment_refusal(name)]})
    if inbound.external_id:
        stored = _stored(channel, inbound.external_id)
        if stored is not None:
            return Received(stored, stored.conversation, created=False)
    for attempt in range(3):
        try:
            return _receive(channel, inbound, now=now, passive=passive)
        except IntegrityError:
            # Two deliveries of one message, or two first messages of one customer, raced:
            # the other one committed. Read what it stored, or try again into its conversation.
            if inbound.external_id:
                stored = _stored(channel, inbound.external_id)
                if stored is not None:
                    return Received(stored, stored.conversation, created=False)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _stored(channel: Channel, external_id: str) -> Message | None:
    # Asked for every inbound message and nearly always empty: the cheapest query first.
    found = list(
        Message.objects.filter(channel=channel, external_id=external_id[:250]).values_list(
            "pk", flat=True
        )[:1]
    )
    if not found:
        return None
    return Message.objects.select_related("conversation").get(pk=found[0])


@transaction.atomic
def _receive(channel: Channel, inbound: Inbound, *, now: dt.datetime, passive: bool) -> Received:
    customer, identity = _identity_resolve(channel, inbound, now=now)
    rated = _survey_answer(channel, customer, inbound, now=now)
    if rated is not None:
        _rate(rated, rating=int(inbound.body), comment="", now=now)
        # Kept with its external id, so WeChat's retry of the answer is recognised.
        answer = Message.objects.create(
            created_at=now,
            conversation=rated,
            channel=channel,
            direction=Message.Direction.IN,
            body=inbound.body,
            external_id=inbound.external_id[:250],
            status=Message.Status.RECEIVED,
            data={"survey_answer": True},
        )
        return Received(answer, rated, created=True, rated=True)
    is_event = inbound.kind == Message.Kind.EVENT
    if is_event and inbound.data.get("event") == "unsubscribe":
        # Unfollowing opens no conversation and waits for no answer.
        open_one = Conversation.objects.open().filter(customer=customer, channel=channel).first()
        if open_one is None:
            return Received(None, None, created=True)
    conversation = _conversation_find(channel, customer, identity, inbound)
    is_new = conversation is None
    if conversation is not None:
        conversation.channel = channel  # no second query for it below
    if conversation is None:
        conversation = Conversation.objects.create(
            channel=channel,
            customer=customer,
            identity=identity,
            queue=_queue_for(channel, inbound),
            subject=(inbound.subject or "")[:200],
            thread_key=inbound.external_id if channel.kind == Channel.Kind.EMAIL else "",
        )
        _event(conversation, ConversationEvent.Kind.CREATED, actor=None, now=now)
        CustomerEvent.objects.create(
            customer=customer,
            kind=CustomerEvent.Kind.CONVERSATION_STARTED,
            data={"conversation": conversation.pk, "channel": channel.name},
        )
    reopened = not is_new and conversation.is_closed
    if reopened:
        conversation.status = (
            Conversation.Status.OPEN if conversation.assignee_id else Conversation.Status.QUEUED
        )
        conversation.closed_at = None
        _event(conversation, ConversationEvent.Kind.REOPENED, actor=None, now=now)
    # A new chat, or a closed thread taken up again with nobody on it, goes in line.
    needs_agent = conversation.status == Conversation.Status.QUEUED and (is_new or reopened)
    message = Message(
        created_at=now,
        conversation=conversation,
        channel=channel,
        direction=Message.Direction.IN,
        kind=inbound.kind,
        body=inbound.body,
        external_id=inbound.external_id[:250],
        media_url=inbound.media_url[:500],
        data=inbound.data,
        status=Message.Status.RECEIVED,
    )
    if inbound.attachments:
        name, content = inbound.attachments[0]
        message.attachment_name = name[:200]
        message.attachment.save(name, ContentFile(content), save=False)
    message.save()
    for name, content in inbound.attachments[1:]:
        extra = Message(
            created_at=now,
            conversation=conversation,
            channel=channel,
            direction=Message.Direction.IN,
            kind=Message.Kind.FILE,
            attachment_name=name[:200],
            status=Message.Status.RECEIVED,
        )
        extra.attachment.save(name, ContentFile(content), save=False)
        extra.save()
    conversation.last_message_at = now
    conversation.last_message_preview = _preview(inbound.body or inbound.kind)
    if conversation.waiting_since is None and not is_event:
        conversation.waiting_since = now
        conversation.wait_alert_level = 0
    text = _automatic_text(conversation, is_new=is_new, now=now)
    conversation.save()
    if needs_agent:
        _route(conversation, now=now)
    _publish_message(message)
    if is_new:
        _publish_conversation(conversation, kind="new_conversation")
    automatic = []
    if text:
        automatic.append(_send_automatic(conversation, text, now=now, passive=passive))
    if is_new:
        _wait_check_schedule(conversation.pk)
    return Received(message, conversation, created=True, automatic=automatic)


def _queue_for(channel: Channel, inbound: Inbound) -> InboxQueue | None:
    topic = str(inbound.data.get("topic") or "").strip()
    if topic:
        by_skill = InboxQueue.objects.filter(skill=topic).first()
        if by_skill is not None:
            return by_skill
    return channel.queue


def _preview(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_LENGTH else text[: PREVIEW_LENGTH - 1] + "…"


def _send_automatic(
    conversation: Conversation, text: str, *, now: dt.datetime, passive: bool
) -> Message:
    message = Message.objects.create(
        created_at=now,
        conversation=conversation,
        channel=conversation.channel,
        direction=Message.Direction.OUT,
        body=text,
        is_automatic=True,
        status=Message.Status.SENT if passive else Message.Status.QUEUED,
        sent_at=now if passive else None,
    )
    _publish_message(message)
    if not passive:
        _deliver_on_commit(message)
    return message


def _deliver_on_commit(message: Message) -> None:
    from kefu.conversations.tasks import message_deliver_task

    if message.channel.kind in (Channel.Kind.WEB_CHAT, Channel.Kind.PHONE, Channel.Kind.WALK_IN):
        # The widget's socket carries it; nothing to hand to a provider.
        Message.objects.filter(pk=message.pk).update(
            status=Message.Status.SENT, sent_at=timezone.now()
        )
        message.status = Message.Status.SENT
        return
    message_id = message.pk
    transaction.on_commit(lambda: message_deliver_task(message_id))


def _wait_check_schedule(conversation_id: int) -> None:
    from kefu.conversations.tasks import conversation_wait_check_task

    transaction.on_commit(
        lambda: conversation_wait_check_task.schedule(
            (conversation_id,), delay=int(WAIT_ALERT_AGENT.total_seconds()) + 1
        )
    )


# --- Agents answering ------------------------------------------------------------------------
def _lock(conversation_id: int) -> Conversation:
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("channel", "customer")
        .filter(pk=conversation_id)
        .first()
    )
    if conversation is None:
        raise NotFound(_("Conversation not found."))
    return conversation


def _can_work(actor: User | None, conversation: Conversation) -> bool:
    if actor is None:
        return True
    if not has_perm(actor, "conversations.reply_conversation"):
        return False
    return conversation.assignee_id in (None, actor.pk) or has_perm(
        actor, "conversations.assign_conversation"
    )


def _require_work(actor: User | None, conversation: Conversation) -> None:
    if not _can_work(actor, conversation):
        raise Forbidden(_("This conversation belongs to another agent."))


@transaction.atomic
def conversation_call(*, actor: User, conversation_id: int, ip: str | None = None) -> ContactPoint:
    """The customer's full number to call about the conversation (the chat went quiet, the
    customer asked to be phoned): for its agent, or a team lead; audited as a reveal for this
    conversation. The chat keeps showing it masked."""
    require_perm(actor, "conversations.reply_conversation")
    conversation = conversation_get_for_user(user=actor, conversation_id=conversation_id)
    if conversation.assignee_id != actor.pk and not has_perm(
        actor, "conversations.assign_conversation"
    ):
        raise Forbidden(_("This conversation belongs to another agent."))
    return customer_phone_reveal_for_call(
        actor=actor,
        customer_id=conversation.customer_id,
        call_for={"type": "conversation", "id": conversation.pk},
        ip=ip,
    )


@transaction.atomic
def message_send(
    *,
    actor: User,
    conversation_id: int,
    body: str,
    attachment: tuple[str, bytes] | None = None,
    now: dt.datetime | None = None,
) -> Message:
    """An agent answers: the message is stored, shown at once and delivered by the channel.
    An unassigned conversation becomes the agent's."""
    now = now or timezone.now()
    conversation = _lock(conversation_id)
    _require_work(actor, conversation)
    body = (body or "").strip()
    if not body and attachment is None:
        raise ValidationFailed({"body": [_("Write a message first.")]})
    if len(body) > 5000:
        raise ValidationFailed({"body": [_("At most 5000 characters.")]})
    if attachment is not None:
        attachment_check(attachment[0], len(attachment[1]), field="attachment")
    if conversation.is_closed:
        raise Conflict(_("The conversation is closed."), code="conversation_closed")
    if conversation.assignee_id is None:
        routing_lock()
        _assign(conversation, actor, actor=actor, now=now)
    message = Message(
        created_at=now,
        conversation=conversation,
        channel=conversation.channel,
        direction=Message.Direction.OUT,
        kind=Message.Kind.TEXT if attachment is None else Message.Kind.FILE,
        body=body,
        author=actor,
        status=Message.Status.QUEUED,
    )
    if attachment is not None:
        message.attachment_name = attachment[0][:200]
        message.attachment.save(attachment[0], ContentFile(attachment[1]), save=False)
    message.save()
    if conversation.first_response_at is None:
        conversation.first_response_at = now
    conversation.waiting_since = None
    conversation.wait_alert_level = 0
    conversation.last_message_at = now
    conversation.last_message_preview = _preview(body or message.attachment_name)
    conversation.save(
        update_fields=[
            "first_response_at",
            "waiting_since",
            "wait_alert_level",
            "last_message_at",
            "last_message_preview",
            "updated_at",
        ]
    )
    _deliver_on_commit(message)
    _publish_message(message)
    return message


@transaction.atomic
def note_add(
    *, actor: User, conversation_id: int, body: str, now: dt.datetime | None = None
) -> Message:
    """An internal note: agents see it beside the chat, the customer never does."""
    now = now or timezone.now()
    conversation = _lock(conversation_id)
    _require_work(actor, conversation)
    body = (body or "").strip()
    if not body:
        raise ValidationFailed({"body": [_("Write a note first.")]})
    message = Message.objects.create(
        created_at=now,
        conversation=conversation,
        channel=conversation.channel,
        direction=Message.Direction.NOTE,
        body=body,
        author=actor,
        status=Message.Status.SENT,
    )
    _publish_message(message)
    return message


class DeliveryRetry(Exception):
    """The provider failed and attempts are left: the task runs again later."""


def message_deliver(
    *, message_id: int, now: dt.datetime | None = None, final: bool = True
) -> Message | None:
    """Hand a queued outgoing message to its channel's provider, at most once.

    The message is claimed (queued → sending) in a short transaction and the provider is called
    outside any, so a slow or dead provider never holds the database. A failure marks it failed
    on the `final` attempt; before that it goes back to queued and DeliveryRetry asks the task
    to try again. A crash while sending leaves it 'sending' (never sent twice).
    """
    from kefu.conversations.adapters import DeliveryFailed

    now = now or timezone.now()
    with transaction.atomic():
        claimed = Message.objects.filter(pk=message_id, status=Message.Status.QUEUED).update(
            status=Message.Status.SENDING
        )
    message = (
        Message.objects.select_related(
            "channel", "conversation__customer", "conversation__identity", "author"
        )
        .filter(pk=message_id)
        .first()
    )
    if message is None or not claimed:
        return message
    try:
        provider_id = adapter_for(message.channel).send(message.channel, message)
    except DeliveryFailed as exc:
        message.error = str(exc)[:300]
        message.status = Message.Status.FAILED if final else Message.Status.QUEUED
        message.save(update_fields=["status", "error"])
        if not final:
            raise DeliveryRetry(message.error) from exc
    else:
        message.status = Message.Status.SENT
        message.sent_at = now
        message.error = ""
        if provider_id:
            message.data = {**message.data, "provider_id": provider_id}
            if message.channel.kind == Channel.Kind.EMAIL and not message.external_id:
                # Our Message-ID: the customer's answer threads to it through the index.
                message.external_id = provider_id[:250]
        message.save(update_fields=["status", "error", "sent_at", "data", "external_id"])
    realtime.publish(
        [
            realtime.conversation_group(message.conversation_id),
            realtime.staff_group(message.conversation_id),
        ],
        {"type": "delivery", "message": {"id": message.pk, "status": message.status}},
    )
    return message


# --- Transfer, close, rate -------------------------------------------------------------------
@transaction.atomic
def conversation_transfer(
    *,
    actor: User,
    conversation_id: int,
    agent_id: int | None = None,
    queue_id: int | None = None,
    note: str = "",
    now: dt.datetime | None = None,
) -> Conversation:
    """Hand the conversation to another agent or queue with a note. Agents transfer their own
    chats; supervisors reassign any."""
    now = now or timezone.now()
    conversation = _lock(conversation_id)
    if conversation.assignee_id != actor.pk:
        require_perm(actor, "conversations.assign_conversation")
    else:
        require_perm(actor, "conversations.reply_conversation")
    if conversation.is_closed:
        raise Conflict(_("The conversation is closed."), code="conversation_closed")
    if (agent_id is None) == (queue_id is None):
        raise ValidationFailed({"agent": [_("Choose an agent or a queue.")]})
    routing_lock()
    if agent_id is not None:
        agent = User.objects.filter(pk=agent_id, is_active=True).first()
        if agent is None or not agent.has_perm("conversations.reply_conversation"):
            raise ValidationFailed({"agent": [_("Not an agent who answers chats.")]})
        _assign(
            conversation,
            agent,
            actor=actor,
            now=now,
            note=note,
            kind=ConversationEvent.Kind.TRANSFERRED,
        )
        _hand_out(now=now)  # the place it leaves goes to whoever waits
    else:
        queue = InboxQueue.objects.filter(pk=queue_id).first()
        if queue is None:
            raise ValidationFailed({"queue": [_("Unknown queue.")]})
        previous = conversation.assignee_id
        conversation.queue = queue
        conversation.assignee = None
        conversation.status = Conversation.Status.QUEUED
        conversation.save(update_fields=["queue", "assignee", "status", "updated_at"])
        _event(
            conversation,
            ConversationEvent.Kind.TRANSFERRED,
            actor=actor,
            now=now,
            queue=queue.pk,
            previous=previous,
            note=note,
        )
        if previous:
            realtime.publish(
                [realtime.agent_group(previous)],
                {"type": "unassigned", "conversation": {"id": conversation.pk}},
            )
        _route(conversation, now=now)
        if conversation.assignee_id is None:
            _publish_conversation(conversation)
    return conversation


@transaction.atomic
def conversation_close(
    *,
    actor: User | None,
    conversation_id: int,
    topic: str,
    outcome: str,
    note: str = "",
    now: dt.datetime | None = None,
) -> Conversation:
    """End the consultation and fill its record (客户咨询即时记录表): topic and outcome. Web chat
    and WeChat customers are then asked to rate the service."""
    now = now or timezone.now()
    conversation = _lock(conversation_id)
    _require_work(actor, conversation)
    errors = {}
    topic = (topic or "").strip()
    if not topic:
        errors["topic"] = [_("Say what the customer asked about.")]
    elif len(topic) > 200:
        errors["topic"] = [_("At most 200 characters.")]
    if outcome not in Conversation.Outcome.values:
        errors["outcome"] = [pgettext("consultation", "Choose an outcome.")]
    if errors:
        raise ValidationFailed(errors)
    if conversation.is_closed:
        raise Conflict(_("The conversation is already closed."), code="conversation_closed")
    conversation.status = Conversation.Status.CLOSED
    conversation.closed_at = now
    conversation.closed_by = actor
    conversation.topic = topic
    conversation.outcome = outcome
    conversation.outcome_note = (note or "").strip()
    conversation.waiting_since = None
    conversation.save()
    _event(
        conversation,
        ConversationEvent.Kind.CLOSED,
        actor=actor,
        now=now,
        topic=topic,
        outcome=outcome,
    )
    CustomerEvent.objects.create(
        customer=conversation.customer,
        kind=CustomerEvent.Kind.CONVERSATION_CLOSED,
        actor=actor,
        data={
            "conversation": conversation.pk,
            "channel": conversation.channel.name,
            "topic": topic,
            "outcome": outcome,
        },
    )
    channel = conversation.channel
    if channel.has_survey and channel.kind in (Channel.Kind.WEB_CHAT, Channel.Kind.WECHAT):
        text = (
            _("Please rate our service: reply with a number from 1 (poor) to 5 (excellent).")
            if channel.kind == Channel.Kind.WECHAT
            else _("Thank you for chatting with us. How did we do?")
        )
        survey = Message.objects.create(
            created_at=now,
            conversation=conversation,
            channel=channel,
            direction=Message.Direction.OUT,
            kind=Message.Kind.EVENT,
            body=text,
            is_automatic=True,
            status=Message.Status.QUEUED,
            data={"survey": True},
        )
        _deliver_on_commit(survey)
        _publish_message(survey)
    _publish_conversation(conversation, kind="closed")
    if conversation.assignee_id is not None:
        routing_lock()
        _hand_out(now=now)  # the agent has room for the next one waiting
    return conversation


def _rate(conversation: Conversation, *, rating: int, comment: str, now: dt.datetime) -> None:
    conversation.rating = rating
    conversation.rating_comment = comment
    conversation.rated_at = now
    conversation.rated_agent_id = conversation.assignee_id
    conversation.save(
        update_fields=["rating", "rating_comment", "rated_at", "rated_agent", "updated_at"]
    )
    _event(conversation, ConversationEvent.Kind.RATED, actor=None, now=now, rating=rating)
    _publish_conversation(conversation, kind="rated")


@transaction.atomic
def conversation_rate(
    *, conversation_id: int, rating: Any, comment: str = "", now: dt.datetime | None = None
) -> Conversation:
    """The customer's satisfaction rating, 1 to 5 with an optional comment; once per chat."""
    now = now or timezone.now()
    conversation = _lock(conversation_id)
    try:
        value = int(rating)
    except (TypeError, ValueError):
        value = 0
    errors = {}
    if not 1 <= value <= 5:
        errors["rating"] = [_("Choose 1 to 5 stars.")]
    comment = (comment or "").strip()
    if len(comment) > 1000:
        errors["comment"] = [_("At most 1000 characters.")]
    if errors:
        raise ValidationFailed(errors)
    if conversation.rated_at is not None:
        raise Conflict(_("This conversation has been rated already."), code="already_rated")
    _rate(conversation, rating=value, comment=comment, now=now)
    return conversation


@transaction.atomic
def conversation_open_ticket(
    *, actor: User, conversation_id: int, data: dict[str, Any], now: dt.datetime | None = None
):
    """Open a ticket straight from a conversation: its customer, channel and transcript."""
    from kefu.tickets.models import Ticket
    from kefu.tickets.services import ticket_create

    now = now or timezone.now()
    conversation = _lock(conversation_id)
    _require_work(actor, conversation)
    if conversation.ticket_id:
        raise Conflict(_("A ticket was already opened from this conversation."))
    channel_map = {
        Channel.Kind.WEB_CHAT: Ticket.Channel.WEB_CHAT,
        Channel.Kind.WECHAT: Ticket.Channel.WECHAT,
        Channel.Kind.EMAIL: Ticket.Channel.EMAIL,
        Channel.Kind.PHONE: Ticket.Channel.PHONE,
        Channel.Kind.WEBHOOK: Ticket.Channel.PLATFORM,
        Channel.Kind.WALK_IN: Ticket.Channel.STORE,
    }
    data = dict(data)
    data["customer"] = conversation.customer_id
    data.setdefault("channel", channel_map.get(conversation.channel.kind, Ticket.Channel.OTHER))
    if not data.get("description"):
        data["description"] = _transcript(conversation)
    ticket = ticket_create(actor=actor, data=data, now=now)
    conversation.ticket = ticket
    conversation.save(update_fields=["ticket", "updated_at"])
    _event(
        conversation, ConversationEvent.Kind.TICKET_OPENED, actor=actor, now=now, ticket=ticket.pk
    )
    return ticket


def _transcript(conversation: Conversation, limit: int = 50) -> str:
    lines = []
    messages = conversation.messages.exclude(direction=Message.Direction.NOTE).order_by("-id")
    for message in reversed(list(messages[:limit])):
        who = conversation.customer.name if message.direction == Message.Direction.IN else _("Us")
        stamp = timezone.localtime(message.created_at).strftime("%H:%M")
        lines.append(f"[{stamp}] {who}: {message.body or message.attachment_name}")
    return "\n".join(lines)


# --- The 60-second rule ----------------------------------------------------------------------
def _supervisors(conversation: Conversation) -> list[User]:
    if conversation.queue_id:
        chosen = list(conversation.queue.supervisors.filter(is_active=True))
        if chosen:
            return chosen
    return list(User.objects.filter(role=Role.SUPERVISOR, is_active=True))


@transaction.atomic
def conversation_wait_check(*, conversation_id: int, now: dt.datetime) -> int:
    """Alert the agent when a customer has waited a minute, the supervisor after two. Returns the
    alert level reached (0 when nobody is waiting)."""
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("customer", "queue", "assignee")
        .filter(pk=conversation_id)
        .first()
    )
    if conversation is None or conversation.is_closed or conversation.waiting_since is None:
        return 0
    waited = now - conversation.waiting_since
    level = conversation.wait_alert_level
    seconds = int(waited.total_seconds())
    if level < 1 and waited >= WAIT_ALERT_AGENT:
        if conversation.assignee_id:
            agents = [conversation.assignee]
        elif conversation.queue_id:
            agents = list(conversation.queue.members.filter(is_active=True))
        else:
            agents = list(
                User.objects.filter(agent_status__status=AgentStatus.Status.ONLINE, is_active=True)
            )
        notify(
            agents,
            kind="conversation_waiting",
            title=_("%(customer)s has waited %(seconds)s s for an answer")
            % {"customer": conversation.customer.name, "seconds": seconds},
            url=conversation.get_absolute_url(),
            email=False,
        )
        level = 1
    if level < 2 and waited >= WAIT_ALERT_SUPERVISOR:
        notify(
            _supervisors(conversation),
            kind="conversation_waiting",
            title=_("%(customer)s has waited %(seconds)s s without an answer")
            % {"customer": conversation.customer.name, "seconds": seconds},
            url=conversation.get_absolute_url(),
            email=False,
        )
        level = 2
    if level != conversation.wait_alert_level:
        conversation.wait_alert_level = level
        conversation.save(update_fields=["wait_alert_level"])
        _event(
            conversation,
            ConversationEvent.Kind.WAIT_ALERT,
            actor=None,
            now=now,
            level=level,
            waited=seconds,
        )
        _publish_conversation(conversation, kind="wait_alert")
    return level


def conversation_timers_run(*, now: dt.datetime) -> int:
    """Check every conversation whose customer has waited a minute or more; returns alerts."""
    due = Conversation.objects.waiting(since=now - WAIT_ALERT_AGENT).filter(
        Q(wait_alert_level=0)
        | Q(wait_alert_level=1, waiting_since__lte=now - WAIT_ALERT_SUPERVISOR)
    )
    raised = 0
    for conversation_id, level_before in due.values_list("pk", "wait_alert_level")[:500]:
        if conversation_wait_check(conversation_id=conversation_id, now=now) > level_before:
            raised += 1
    return raised


# --- Calls on the hotline -------------------------------------------------------------------
def _when(value: Any, field_name: str, errors: dict[str, list[str]]) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        moment = value
    else:
        from django.utils.dateparse import parse_datetime

        moment = parse_datetime(str(value))
        if moment is None:
            errors[field_name] = [_("Not a date and time.")]
            return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def call_record(
    *, actor: User | None, data: dict[str, Any], now: dt.datetime | None = None
) -> tuple[CallRecord, bool]:
    """Record a call (by hand or from the telephony system). A missed or dropped call gets a
    callback task due at once (000 电话 11). A repeated report (same call id) is stored once,
    also when two copies arrive at the same moment."""
    external_id = str(data.get("external_id") or "").strip()[:100]
    for attempt in range(2):
        try:
            return _call_record(actor=actor, data=data, now=now)
        except IntegrityError:
            # The same call (or the caller's first contact) was stored by a concurrent report.
            existing = (
                CallRecord.objects.filter(external_id=external_id).first() if external_id else None
            )
            if existing is not None:
                return existing, False
            if attempt == 1:
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def _call_record(
    *, actor: User | None, data: dict[str, Any], now: dt.datetime | None = None
) -> tuple[CallRecord, bool]:
    from kefu.followups.models import FollowUp
    from kefu.followups.services import followup_create

    require_perm(actor, "conversations.add_callrecord")
    now = now or timezone.now()
    external_id = str(data.get("external_id") or "").strip()[:100]
    if external_id:
        existing = CallRecord.objects.filter(external_id=external_id).first()
        if existing is not None:
            return existing, False
    errors: dict[str, list[str]] = {}
    phone = str(data.get("phone") or "").strip()
    if not phone:
        errors["phone"] = [_("The caller's number is required.")]
    result = data.get("result")
    if result not in CallRecord.Result.values:
        errors["result"] = [_("Answered, missed or dropped.")]
    direction = data.get("direction") or CallRecord.Direction.IN
    if direction not in CallRecord.Direction.values:
        errors["direction"] = [_("In or out.")]
    started_at = _when(data.get("started_at"), "started_at", errors) or now
    answered_at = _when(data.get("answered_at"), "answered_at", errors)
    ended_at = _when(data.get("ended_at"), "ended_at", errors)
    if answered_at and answered_at < started_at:
        errors["answered_at"] = [_("A call is answered after it starts.")]
    if ended_at and ended_at < (answered_at or started_at):
        errors["ended_at"] = [_("A call ends after it starts.")]
    if result == CallRecord.Result.ANSWERED and answered_at is None:
        answered_at = started_at
    agent = None
    if data.get("agent"):
        agent = User.objects.filter(pk=data["agent"], is_active=True).first()
        if agent is None:
            errors["agent"] = [_("Unknown agent.")]
    elif actor is not None and result == CallRecord.Result.ANSWERED:
        agent = actor
    recording_url = str(data.get("recording_url") or "").strip()
    if recording_url and not is_http_url(recording_url):
        errors["recording_url"] = [_("A web address (http or https).")]
    if errors:
        raise ValidationFailed(errors)
    customer, _created = customer_get_or_create_by_contact(
        actor=actor,
        kind=ContactPoint.Kind.PHONE,
        value=phone,
        name=str(data.get("caller_name") or ""),
        source=Customer.Source.PHONE,
        now=now,
    )
    call = CallRecord.objects.create(
        customer=customer,
        phone=_phone_normalized(phone)[:40],
        direction=direction,
        agent=agent,
        started_at=started_at,
        answered_at=answered_at,
        ended_at=ended_at,
        result=result,
        recording_url=recording_url[:500],
        notes=str(data.get("notes") or "").strip(),
        external_id=external_id,
        recorded_by=actor,
    )
    if result in (CallRecord.Result.MISSED, CallRecord.Result.DROPPED):
        assignee = agent or (
            actor if actor is not None and actor.has_perm("followups.change_followup") else None
        )
        reason = (
            _("Missed call: call the customer back at once.")
            if result == CallRecord.Result.MISSED
            else _("The call dropped: call back at once, apologise and repeat what was said.")
        )
        call.callback = followup_create(
            actor=actor,
            customer=customer,
            purpose=FollowUp.Purpose.PROMISED_CALLBACK,
            due_at=now,
            assignee=assignee,
            note=reason,
        )
        call.save(update_fields=["callback"])
        if assignee is None:
            notify(
                User.objects.filter(agent_status__status=AgentStatus.Status.ONLINE, is_active=True),
                kind="callback_due",
                title=_("Call back %(customer)s now (%(result)s call)")
                % {"customer": customer.name, "result": call.get_result_display()},
                url=f"/customers/{customer.pk}/",
                email=False,
            )
    CustomerEvent.objects.create(
        customer=customer,
        kind=CustomerEvent.Kind.CALL_RECORDED,
        actor=actor,
        data={"call": call.pk, "result": result, "direction": direction},
    )
    return call, True


def _phone_normalized(phone: str) -> str:
    from kefu.customers import contacts

    try:
        return contacts.contact_normalize(contacts.PHONE, phone)
    except contacts.ContactInvalid:
        return phone


# --- Quick replies ---------------------------------------------------------------------------
_VARIABLE = re.compile(r"\{(customer_name|agent_name|order_no)\}")


def quick_reply_render(
    reply: QuickReply, *, conversation: Conversation | None, agent: User, order_no: str = ""
) -> str:
    """Fill a quick reply's variables for one conversation."""
    values = {
        "customer_name": conversation.customer.name if conversation else "",
        "agent_name": str(agent),
        "order_no": order_no,
    }
    return _VARIABLE.sub(lambda m: values[m.group(1)], reply.body)


def _quick_reply_clean(data: dict[str, Any]) -> dict[str, Any]:
    errors = {}
    shortcut = str(data.get("shortcut") or "").strip().lstrip("/")
    if not shortcut or not re.fullmatch(r"[\w-]{1,30}", shortcut):
        errors["shortcut"] = [_("Letters, digits, - or _, at most 30.")]
    title = str(data.get("title") or "").strip()
    if not title:
        errors["title"] = [_("A title is required.")]
    body = str(data.get("body") or "").strip()
    if not body:
        errors["body"] = [_("The text is required.")]
    unknown = set(re.findall(r"\{(\w+)\}", body)) - {"customer_name", "agent_name", "order_no"}
    if unknown:
        errors["body"] = [_("Unknown variable: %(names)s.") % {"names": ", ".join(sorted(unknown))}]
    if errors:
        raise ValidationFailed(errors)
    return {"shortcut": shortcut, "title": title[:100], "body": body}


@transaction.atomic
def quick_reply_save(
    *, actor: User, data: dict[str, Any], team: bool = False, reply_id: int | None = None
) -> QuickReply:
    """Create or change a quick reply: the agent's own, or a team reply (supervisors)."""
    require_perm(actor, "conversations.reply_conversation")
    if team:
        require_perm(actor, "conversations.change_quickreply")
    cleaned = _quick_reply_clean(data)
    owner = None if team else actor
    if reply_id is not None:
        reply = QuickReply.objects.select_for_update().filter(pk=reply_id).first()
        if reply is None:
            raise NotFound(_("Quick reply not found."))
        if reply.owner_id != actor.pk:
            require_perm(actor, "conversations.change_quickreply")
        owner = reply.owner
    clash = QuickReply.objects.filter(owner=owner, shortcut=cleaned["shortcut"])
    if reply_id is not None:
        clash = clash.exclude(pk=reply_id)
    if clash.exists():
        raise ValidationFailed({"shortcut": [_("This shortcut is taken.")]})
    if reply_id is None:
        return QuickReply.objects.create(owner=owner, **cleaned)
    for key, value in cleaned.items():
        setattr(reply, key, value)
    reply.save()
    return reply


@transaction.atomic
def quick_reply_delete(*, actor: User, reply_id: int) -> None:
    reply = QuickReply.objects.filter(pk=reply_id).first()
    if reply is None:
        raise NotFound(_("Quick reply not found."))
    if reply.owner_id != actor.pk:
        require_perm(actor, "conversations.delete_quickreply")
    reply.delete()
