"""Reads of consultations: who sees which conversation, the inbox lists, a chat's messages."""

import datetime as dt

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from kefu.accounts.models import User
from kefu.conversations.models import CallRecord, Conversation, Message, QuickReply
from kefu.core.exceptions import NotFound
from kefu.core.permissions import has_perm, require_perm


def conversation_list_visible_to(*, user: User) -> QuerySet[Conversation]:
    """Supervisors see every conversation; agents their own and the ones still waiting for one."""
    conversations = Conversation.objects.all()
    if not has_perm(user, "conversations.view_conversation"):
        return conversations.none()
    if has_perm(user, "conversations.view_all_conversations"):
        return conversations
    return conversations.filter(Q(assignee=user) | Q(assignee__isnull=True))


def conversation_get_for_user(*, user: User, conversation_id: int) -> Conversation:
    conversation = (
        conversation_list_visible_to(user=user)
        .select_related("channel", "customer", "assignee", "queue", "ticket")
        .filter(pk=conversation_id)
        .first()
    )
    if conversation is None:
        raise NotFound(_("Conversation not found."))
    return conversation


def inbox_list(*, user: User, view: str = "mine", limit: int = 50) -> QuerySet[Conversation]:
    """The agent's inbox: `mine` (open, assigned to me), `waiting` (no agent yet, in the order
    they are handed out: offline messages first, then the longest waiting), `all` (every open
    one, leads) or `closed` (recent)."""
    base = conversation_list_visible_to(user=user).select_related(
        "channel", "customer", "assignee", "queue"
    )
    if view == "waiting":
        return base.unassigned()[:limit]
    if view == "all":
        return base.exclude(status=Conversation.Status.CLOSED).order_by("-last_message_at")[:limit]
    if view == "closed":
        return base.filter(status=Conversation.Status.CLOSED).order_by("-closed_at")[:limit]
    return (
        base.filter(assignee=user)
        .exclude(status=Conversation.Status.CLOSED)
        .order_by("-last_message_at")[:limit]
    )


def message_list(
    *,
    conversation: Conversation,
    after_id: int = 0,
    before_id: int | None = None,
    limit: int = 100,
    customer_view: bool = False,
) -> list[Message]:
    """Messages of a conversation in order. `after_id` resumes a reconnecting client; without it,
    the latest `limit` messages. The customer never sees internal notes."""
    messages = Message.objects.filter(conversation=conversation).select_related("author")
    if customer_view:
        messages = messages.exclude(direction=Message.Direction.NOTE)
    if after_id:
        return list(messages.filter(id__gt=after_id).order_by("id")[:limit])
    if before_id:
        messages = messages.filter(id__lt=before_id)
    return list(reversed(messages.order_by("-id")[:limit]))


def customer_conversation_history(*, customer_id: int, limit: int = 10) -> QuerySet[Conversation]:
    return (
        Conversation.objects.filter(customer_id=customer_id)
        .select_related("channel", "assignee")
        .order_by("-created_at")[:limit]
    )


def customer_call_history(*, customer_id: int, limit: int = 10) -> QuerySet[CallRecord]:
    return (
        CallRecord.objects.filter(customer_id=customer_id)
        .select_related("agent")
        .order_by("-started_at")[:limit]
    )


def quick_reply_list_for(*, user: User, query: str = "") -> QuerySet[QuickReply]:
    """The agent's own replies and the team's; `query` matches the shortcut or the title."""
    replies = QuickReply.objects.filter(Q(owner=user) | Q(owner__isnull=True), is_active=True)
    query = query.strip().lstrip("/")
    if query:
        replies = replies.filter(Q(shortcut__istartswith=query) | Q(title__icontains=query))
    return replies.order_by("owner_id", "shortcut")


def call_list_filtered(
    *,
    user: User,
    result: str | None = None,
    direction: str | None = None,
    agent: User | int | None = None,
    customer_id: int | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> QuerySet[CallRecord]:
    """Calls on the hotline, newest first, for holders of conversations.view_callrecord.
    Dates are local days, both ends included."""
    require_perm(user, "conversations.view_callrecord")
    calls = CallRecord.objects.select_related("customer", "agent", "callback__assignee")
    if result:
        calls = calls.filter(result=result)
    if direction:
        calls = calls.filter(direction=direction)
    if agent is not None:
        calls = calls.filter(agent=agent)
    if customer_id is not None:
        calls = calls.filter(customer_id=customer_id)
    if date_from is not None:
        calls = calls.filter(started_at__gte=_local_midnight(date_from))
    if date_to is not None:
        calls = calls.filter(started_at__lt=_local_midnight(date_to + dt.timedelta(days=1)))
    return calls.order_by("-started_at", "-id")


def _local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))
