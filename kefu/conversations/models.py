"""Consultations (咨询): channels, conversations and their messages, calls, queues and agent status.

A customer has at most one open conversation per channel; every message in or out is a row with a
delivery state; what happened to a conversation is kept as ConversationEvent rows.
"""

import datetime as dt
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from kefu.core.models import TimeStampedModel


class InboxQueue(TimeStampedModel):
    """Agents who answer a set of channels or a skill (pre-sales, after-sales, VIP...)."""

    class Strategy(models.TextChoices):
        ROUND_ROBIN = "round_robin", _("Round robin")
        LEAST_BUSY = "least_busy", _("Least busy")

    name = models.CharField(_("name"), max_length=100, unique=True)
    skill = models.CharField(
        _("skill"),
        max_length=50,
        blank=True,
        help_text=_("Topic chosen in the pre-chat form that sends a chat to this queue."),
    )
    strategy = models.CharField(
        _("assignment"), max_length=20, choices=Strategy, default=Strategy.LEAST_BUSY
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="inbox_queues", verbose_name=_("agents")
    )
    supervisors = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="supervised_inbox_queues",
        verbose_name=_("supervisors"),
    )
    # Overflow (溢出): a customer who has waited this long while no agent of the queue had
    # room goes to any online agent with room. None: the queue's chats wait for its own agents.
    overflow_after = models.PositiveIntegerField(
        _("overflow after (seconds)"),
        null=True,
        blank=True,
        default=120,
        help_text=_(
            "When no agent of this queue has room and the customer has waited this many seconds, "
            "the chat goes to any online agent. 0: at once. Empty: never."
        ),
    )
    last_assigned = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("inbox queue")
        verbose_name_plural = _("inbox queues")

    def __str__(self) -> str:
        return self.name


class Channel(TimeStampedModel):
    """One way in: the web chat of a site, a WeChat official account, a mailbox, a platform."""

    class Kind(models.TextChoices):
        WEB_CHAT = "web_chat", _("Web chat")
        WECHAT = "wechat", _("WeChat official account")
        EMAIL = "email", _("E-mail")
        WEBHOOK = "webhook", _("Platform webhook")
        PHONE = "phone", _("Phone")
        SMS = "sms", _("SMS")
        WALK_IN = "walk_in", _("Walk-in")

    kind = models.CharField(_("kind"), max_length=20, choices=Kind)
    code = models.SlugField(
        _("code"), max_length=50, unique=True, help_text=_("Used in the channel's URLs.")
    )
    name = models.CharField(_("name"), max_length=100)
    platform = models.CharField(
        _("platform"), max_length=50, blank=True, help_text=_("QQ, Baidu Shangqiao, Douyin...")
    )
    is_active = models.BooleanField(_("active"), default=True)
    queue = models.ForeignKey(
        InboxQueue,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="channels",
        verbose_name=_("queue"),
    )
    greeting = models.TextField(
        _("greeting"), blank=True, help_text=_("Sent at once when a customer starts a chat.")
    )
    away_message = models.TextField(
        _("auto-reply when away"),
        blank=True,
        help_text=_("Sent when no agent is online or outside business hours."),
    )
    has_prechat_form = models.BooleanField(_("pre-chat form"), default=False)
    has_survey = models.BooleanField(_("satisfaction survey"), default=True)
    # Secrets and addresses of the channel: WeChat appid/token/aes key/secret, the webhook's
    # HMAC secret and outbound URL, the mailbox address and its IMAP account.
    config = models.JSONField(_("settings"), default=dict, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("channel")
        verbose_name_plural = _("channels")

    def __str__(self) -> str:
        return self.name

    def setting(self, key: str, default: str = "") -> str:
        return str(self.config.get(key) or default)


class ChannelIdentity(models.Model):
    """Who a customer is on one channel: an openid, a mailbox, a platform user, a chat visitor."""

    channel = models.ForeignKey(Channel, models.CASCADE, related_name="identities")
    key = models.CharField(max_length=200)
    customer = models.ForeignKey(
        "customers.Customer", models.CASCADE, related_name="channel_identities"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "key"], name="identity_channel_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.key}"


class AgentStatus(models.Model):
    """Whether an agent takes chats now, and how many at once."""

    class Status(models.TextChoices):
        ONLINE = "online", _("Online")
        BUSY = "busy", _("Busy")
        AWAY = "away", _("Away")
        OFFLINE = "offline", _("Offline")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, models.CASCADE, primary_key=True, related_name="agent_status"
    )
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.OFFLINE)
    capacity = models.PositiveSmallIntegerField(_("chats at once"), default=5)
    changed_at = models.DateTimeField(_("since"), null=True, blank=True)
    # When the agent last got a chat: among equally busy agents, the one waiting longest next.
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("agent status")
        verbose_name_plural = _("agent statuses")

    def __str__(self) -> str:
        return f"{self.user_id} {self.status}"


class ConversationQuerySet(models.QuerySet["Conversation"]):
    def open(self) -> "ConversationQuerySet":
        return self.exclude(status=Conversation.Status.CLOSED)

    def waiting(self, *, since: dt.datetime) -> "ConversationQuerySet":
        """Open conversations whose oldest unanswered customer message is older than `since`."""
        return self.open().filter(waiting_since__lte=since)

    def unassigned(self) -> "ConversationQuerySet":
        """Waiting for an agent, in the order they are handed out: offline messages first (000
        在线咨询规范 2), then the customer who has waited longest."""
        return self.filter(status=Conversation.Status.QUEUED, assignee__isnull=True).order_by(
            "-is_offline",
            models.F("waiting_since").asc(nulls_last=True),
            "created_at",
            "id",
        )


def _visitor_token() -> str:
    return secrets.token_urlsafe(24)


class Conversation(TimeStampedModel):
    """One consultation with a customer on one channel, from the first message to its record."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Waiting for an agent")
        OPEN = "open", pgettext_lazy("conversation status", "Open")
        CLOSED = "closed", pgettext_lazy("conversation status", "Closed")

    class Outcome(models.TextChoices):
        ANSWERED = "answered", pgettext_lazy("consultation outcome", "Answered")
        APPOINTMENT = "appointment", _("Store appointment")
        ORDER = "order", pgettext_lazy("consultation outcome", "Order")
        TICKET = "ticket", _("Complaint ticket")
        NO_RESULT = "no_result", _("No result")

    channel = models.ForeignKey(
        Channel, models.PROTECT, related_name="conversations", verbose_name=_("channel")
    )
    customer = models.ForeignKey(
        "customers.Customer",
        models.CASCADE,
        related_name="conversations",
        verbose_name=_("customer"),
    )
    identity = models.ForeignKey(
        ChannelIdentity, models.SET_NULL, null=True, blank=True, related_name="conversations"
    )
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.QUEUED)
    queue = models.ForeignKey(
        InboxQueue,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
        verbose_name=_("queue"),
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
        verbose_name=_("agent"),
    )
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    # Email threads: the Message-ID of the first mail, to thread replies.
    thread_key = models.CharField(max_length=250, blank=True, db_index=True)
    # The secret a web chat visitor presents to read and write this conversation.
    visitor_token = models.CharField(max_length=64, default=_visitor_token, unique=True)
    # Started while nobody was online: answered first when an agent logs in (000 规范 1-2).
    is_offline = models.BooleanField(_("offline message"), default=False)
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_message_preview = models.CharField(max_length=120, blank=True)
    # The oldest customer message not answered yet, and how far the wait alert has gone
    # (0 none, 1 agent alerted, 2 supervisor alerted).
    waiting_since = models.DateTimeField(null=True, blank=True, db_index=True)
    wait_alert_level = models.PositiveSmallIntegerField(default=0)
    greeted_at = models.DateTimeField(null=True, blank=True)
    away_replied_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(_("first response"), null=True, blank=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The consultation record (客户咨询即时记录表), filled in when the conversation is closed.
    topic = models.CharField(_("topic"), max_length=200, blank=True)
    outcome = models.CharField(
        pgettext_lazy("consultation", "outcome"), max_length=20, choices=Outcome, blank=True
    )
    outcome_note = models.TextField(pgettext_lazy("consultation", "record"), blank=True)
    ticket = models.ForeignKey(
        "tickets.Ticket",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
        verbose_name=_("ticket"),
    )
    # The satisfaction survey at the end, kept with the agent who served.
    rating = models.PositiveSmallIntegerField(_("rating"), null=True, blank=True)
    rating_comment = models.TextField(_("comment"), blank=True)
    rated_at = models.DateTimeField(null=True, blank=True)
    rated_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = ConversationQuerySet.as_manager()

    class Meta:
        ordering = ["-last_message_at", "-id"]
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        permissions = [
            ("reply_conversation", "Can answer conversations"),
            ("assign_conversation", "Can reassign any conversation"),
            ("view_all_conversations", "Can see every conversation"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "channel"],
                condition=~Q(status="closed"),
                name="conversation_one_open_per_channel",
            ),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                name="conversation_rating_1_5",
            ),
        ]
        indexes = [
            # The agent's open chats, newest first; closed ones (nearly all) are not in it.
            models.Index(
                fields=["assignee", "-last_message_at"],
                condition=~Q(status="closed"),
                name="conversation_open_agent",
            ),
            models.Index(
                fields=["-closed_at"],
                condition=Q(status="closed"),
                name="conversation_closed_recent",
            ),
            models.Index(fields=["status", "-last_message_at"], name="conversation_status_recent"),
            models.Index(fields=["customer", "-created_at"], name="conversation_customer"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.channel_id} {self.customer_id}"

    def get_absolute_url(self) -> str:
        return f"/inbox/{self.pk}/"

    @property
    def is_closed(self) -> bool:
        return self.status == self.Status.CLOSED


class Message(models.Model):
    """One message in a conversation: from the customer, from an agent, automatic, or a note."""

    class Direction(models.TextChoices):
        IN = "in", _("From the customer")
        OUT = "out", _("To the customer")
        NOTE = "note", _("Internal note")

    class Kind(models.TextChoices):
        TEXT = "text", _("Text")
        IMAGE = "image", _("Image")
        VOICE = "voice", _("Voice")
        FILE = "file", _("File")
        EVENT = "event", _("Event")

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        READ = "read", _("Read")
        FAILED = "failed", _("Failed")

    # Indexed by message_conversation (conversation, id), which also serves the foreign key.
    conversation = models.ForeignKey(
        Conversation, models.CASCADE, related_name="messages", db_index=False
    )
    channel = models.ForeignKey(Channel, models.PROTECT, related_name="+")
    direction = models.CharField(max_length=4, choices=Direction)
    kind = models.CharField(max_length=10, choices=Kind, default=Kind.TEXT)
    body = models.TextField(blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Automatic greeting, away reply or survey: written by the system, not counted as an answer.
    is_automatic = models.BooleanField(default=False)
    # The id the channel gave the message (WeChat MsgId, Message-ID, a platform's id, the
    # widget's client id): a retried delivery finds it and is stored once.
    external_id = models.CharField(max_length=250, blank=True)
    status = models.CharField(max_length=10, choices=Status, default=Status.RECEIVED)
    error = models.CharField(max_length=300, blank=True)
    attachment = models.FileField(upload_to="messages/%Y/%m/", blank=True)
    attachment_name = models.CharField(max_length=200, blank=True)
    media_url = models.URLField(max_length=500, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"],
                condition=~Q(external_id=""),
                name="message_channel_external_unique",
            )
        ]
        indexes = [models.Index(fields=["conversation", "id"], name="message_conversation")]

    def __str__(self) -> str:
        return f"{self.conversation_id}/{self.pk} {self.direction}"

    @property
    def is_visible_to_customer(self) -> bool:
        return self.direction != self.Direction.NOTE


class ConversationEvent(models.Model):
    """What happened to a conversation: assigned, transferred, alerted, closed, rated."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Started")
        ASSIGNED = "assigned", _("Assigned")
        TRANSFERRED = "transferred", _("Transferred")
        WAIT_ALERT = "wait_alert", _("Wait alert")
        CLOSED = "closed", pgettext_lazy("conversation event", "Closed")
        REOPENED = "reopened", _("Reopened")
        RATED = "rated", _("Rated")
        TICKET_OPENED = "ticket_opened", _("Ticket opened")

    conversation = models.ForeignKey(Conversation, models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.conversation_id} {self.kind}"


class CallRecord(TimeStampedModel):
    """One call on the hotline (400), in or out, answered or not."""

    class Direction(models.TextChoices):
        IN = "in", _("Incoming")
        OUT = "out", _("Outgoing")

    class Result(models.TextChoices):
        ANSWERED = "answered", pgettext_lazy("call result", "Answered")
        MISSED = "missed", pgettext_lazy("call result", "Missed")
        DROPPED = "dropped", pgettext_lazy("call result", "Dropped")

    customer = models.ForeignKey(
        "customers.Customer", models.CASCADE, related_name="calls", verbose_name=_("customer")
    )
    phone = models.CharField(_("phone"), max_length=40)
    direction = models.CharField(
        _("direction"), max_length=3, choices=Direction, default=Direction.IN
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("agent"),
    )
    started_at = models.DateTimeField(_("started"))
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    result = models.CharField(_("result"), max_length=10, choices=Result)
    recording_url = models.URLField(_("recording"), max_length=500, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    # The telephony system's call id: a repeated report of the same call is stored once.
    external_id = models.CharField(max_length=100, blank=True)
    callback = models.ForeignKey(
        "followups.FollowUp",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("callback"),
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("call")
        verbose_name_plural = _("calls")
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"], condition=~Q(external_id=""), name="call_external_unique"
            )
        ]
        indexes = [models.Index(fields=["customer", "-started_at"], name="call_customer")]

    def __str__(self) -> str:
        return f"{self.phone} {self.started_at:%Y-%m-%d %H:%M} {self.result}"

    @property
    def duration(self) -> dt.timedelta | None:
        if self.answered_at and self.ended_at:
            return self.ended_at - self.answered_at
        return None


class QuickReply(TimeStampedModel):
    """A canned answer (话术): the agent's own or the team's, typed as /shortcut."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.CASCADE,
        null=True,
        blank=True,
        related_name="quick_replies",
        verbose_name=_("owner"),
        help_text=_("Empty for a team reply everybody can use."),
    )
    shortcut = models.SlugField(_("shortcut"), max_length=30, allow_unicode=True)
    title = models.CharField(_("title"), max_length=100)
    body = models.TextField(
        _("text"), help_text=_("Variables: {customer_name}, {agent_name}, {order_no}.")
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["shortcut"]
        verbose_name = _("quick reply")
        verbose_name_plural = _("quick replies")
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "shortcut"], name="quickreply_owner_shortcut_unique"
            ),
            models.UniqueConstraint(
                fields=["shortcut"],
                condition=Q(owner__isnull=True),
                name="quickreply_team_shortcut_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"/{self.shortcut}"
