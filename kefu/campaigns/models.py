"""Bulk messages (群发) and member care: templates, saved segments, campaigns with one row per
recipient, the local outbox, opt-outs and the benefits members were given.

A recipient row is unique per campaign and customer and moves pending → sent (or failed /
skipped). The local outbox claims and records a batch in one transaction; a provider outside Kefu
is handed one claimed row at a time (pending → sending → sent), and a row a stopped worker left in
`sending` is resolved by the next dispatch (see services.py). A retried send takes only pending
rows, so nobody is messaged twice.

Marketing and transactional messages differ by the template's purpose: reminders, appointment
reminders and verification codes are transactional (no opt-out footer, no quiet hours).
"""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from kefu.core.models import TimeStampedModel


class Gateway(models.TextChoices):
    SMS = "sms", _("SMS")
    EMAIL = "email", _("E-mail")
    WECHAT = "wechat", _("WeChat template message")


class OptOut(models.Model):
    """A customer who asked not to get bulk messages on a channel (or on any: `all`)."""

    class Channel(models.TextChoices):
        ALL = "all", _("All channels")
        SMS = "sms", _("SMS")
        EMAIL = "email", _("E-mail")
        WECHAT = "wechat", _("WeChat")

    customer = models.ForeignKey(
        "customers.Customer", models.CASCADE, related_name="opt_outs", verbose_name=_("customer")
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel)
    source = models.CharField(
        _("how"), max_length=100, blank=True, help_text=_("Reply TD, unsubscribe link, call...")
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("since"), auto_now_add=True)

    class Meta:
        verbose_name = _("opt-out")
        verbose_name_plural = _("opt-outs")
        constraints = [
            models.UniqueConstraint(fields=["customer", "channel"], name="optout_customer_channel")
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.channel}"


class MessageTemplate(TimeStampedModel):
    """The text of a bulk message, with variables filled per customer."""

    class Purpose(models.TextChoices):
        BIRTHDAY = "birthday", _("Birthday greeting")
        HOLIDAY = "holiday", _("Holiday greeting")
        PROMOTION = "promotion", _("Promotion")
        MEMBER_BENEFIT = "member_benefit", _("Member benefit")
        HEALTH_TIP = "health_tip", _("Health tip")
        REMINDER = "reminder", _("Reminder")
        APPOINTMENT_REMINDER = "appointment_reminder", _("Appointment reminder")
        VERIFICATION = "verification", _("Verification code")
        OTHER = "other", _("Other")

    # Messages a customer needs whatever they think of advertising: sent at any hour, without
    # the opt-out footer. Every other purpose is marketing.
    TRANSACTIONAL = frozenset(
        {Purpose.REMINDER, Purpose.APPOINTMENT_REMINDER, Purpose.VERIFICATION}
    )

    name = models.CharField(_("name"), max_length=100, unique=True)
    gateway = models.CharField(_("sent by"), max_length=10, choices=Gateway)
    purpose = models.CharField(
        pgettext_lazy("message template", "purpose"),
        max_length=20,
        choices=Purpose,
        default=Purpose.OTHER,
    )
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(
        _("text"),
        help_text=_(
            "Variables: {name}, {number}, {store}, {birthday}, {holiday}, {gift}, {date}. An SMS"
            " starts with the sender signature, and a marketing SMS ends with the opt-out hint,"
            " automatically."
        ),
    )
    gift = models.TextField(
        _("gift-claim instructions"),
        blank=True,
        help_text=_("Birthday and holiday greetings: how to claim the gift, filled into {gift}."),
    )
    # WeChat template messages: the template id registered with WeChat; the body's lines
    # "key: value" fill its fields.
    wechat_template_id = models.CharField(_("WeChat template id"), max_length=100, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")

    def __str__(self) -> str:
        return self.name

    @property
    def is_marketing(self) -> bool:
        """Marketing messages carry the opt-out footer and respect quiet hours."""
        return self.purpose not in self.TRANSACTIONAL


class Segment(TimeStampedModel):
    """A saved audience: customers matching its filters on the day it is used."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    # levels, statuses, tags (names), stores (ids), birthday_within_days,
    # last_purchase_before_days, last_purchase_within_days, churn_risk: see segments.py.
    filters = models.JSONField(_("filters"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")

    def __str__(self) -> str:
        return self.name


class Campaign(TimeStampedModel):
    """One bulk send of a template to a segment, now or at a set time."""

    class Kind(models.TextChoices):
        MANUAL = "manual", _("Bulk message")
        BIRTHDAY = "birthday", _("Birthday greetings")
        HOLIDAY = "holiday", _("Holiday greetings")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        AWAITING_APPROVAL = "awaiting_approval", _("Awaiting approval")
        SCHEDULED = "scheduled", _("Scheduled")
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        DONE = "done", _("Sent")
        CANCELLED = "cancelled", _("Cancelled")

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind, default=Kind.MANUAL)
    template = models.ForeignKey(
        MessageTemplate, models.PROTECT, related_name="campaigns", verbose_name=_("template")
    )
    segment = models.ForeignKey(
        Segment,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="campaigns",
        verbose_name=_("segment"),
    )
    status = models.CharField(_("status"), max_length=20, choices=Status, default=Status.DRAFT)
    scheduled_at = models.DateTimeField(_("send at"), null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Automatic greetings: "birthday:2026-12-31", "holiday:2026-10-01:国庆节" — one campaign per
    # occasion, so a rerun of the daily job creates nothing new.
    occasion = models.CharField(max_length=100, null=True, blank=True, unique=True)
    gift = models.TextField(
        _("gift-claim instructions"), blank=True, help_text=_("Filled into {gift}.")
    )
    holiday = models.CharField(_("holiday"), max_length=50, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # What the person who launched it confirmed: recipients and estimated SMS segments.
    launched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    launched_at = models.DateTimeField(null=True, blank=True)
    confirmed_count = models.PositiveIntegerField(null=True, blank=True)
    estimated_segments = models.PositiveIntegerField(null=True, blank=True)
    # A manager's approval, for audiences above KEFU_CAMPAIGN_APPROVAL_THRESHOLD.
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        permissions = [
            ("send_campaign", "Can send bulk messages"),
            ("approve_campaign", "Can approve bulk messages to large audiences"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("campaigns:campaign_detail", kwargs={"pk": self.pk})


class CampaignEvent(models.Model):
    """A step in a campaign's life, with who took it: its timeline."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        LAUNCHED = "launched", _("Launched")
        APPROVAL_REQUESTED = "approval_requested", _("Approval requested")
        APPROVED = "approved", _("Approved")
        REFUSED = "refused", pgettext_lazy("campaign event", "Refused")
        STARTED = "started", _("Sending started")
        RESUMED = "resumed", _("Resumed after a stop")
        FINISHED = "finished", pgettext_lazy("campaign event", "Finished")
        CANCELLED = "cancelled", _("Cancelled")

    campaign = models.ForeignKey(Campaign, models.CASCADE, related_name="events")
    kind = models.CharField(_("what"), max_length=20, choices=Kind)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(_("at"), db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("campaign event")
        verbose_name_plural = _("campaign events")

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.kind}"


class CampaignRecipient(models.Model):
    """One customer of a campaign and what happened to their message."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        SENDING = "sending", _("Handed to the gateway")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        UNCONFIRMED = "unconfirmed", _("Not confirmed")
        OPTED_OUT = "opted_out", _("Opted out")
        NO_ADDRESS = "no_address", _("No address")

    campaign = models.ForeignKey(Campaign, models.CASCADE, related_name="recipients")
    customer = models.ForeignKey("customers.Customer", models.CASCADE, related_name="+")
    address = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=12, choices=Status, default=Status.PENDING)
    # The dispatcher (its lease holder) that handed the message to a provider outside Kefu.
    claim = models.CharField(max_length=100, blank=True)
    provider_id = models.CharField(max_length=100, blank=True)
    error = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "customer"], name="campaign_recipient_once")
        ]
        indexes = [models.Index(fields=["campaign", "status", "id"], name="recipient_queue")]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.customer_id} {self.status}"


class OutboxMessage(models.Model):
    """Every message the local outbox gateway 'sent' (the default, and in tests): shown in the
    app instead of leaving the building."""

    gateway = models.CharField(max_length=10, choices=Gateway)
    to = models.CharField(max_length=200)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    customer = models.ForeignKey(
        "customers.Customer", models.SET_NULL, null=True, blank=True, related_name="+"
    )
    recipient = models.OneToOneField(
        CampaignRecipient, models.SET_NULL, null=True, blank=True, related_name="outbox"
    )
    reference = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox")

    def __str__(self) -> str:
        return f"{self.gateway} → {self.to}"


class MemberBenefit(models.Model):
    """A birthday or holiday benefit a member was given (赠品), once per occasion."""

    class Kind(models.TextChoices):
        BIRTHDAY = "birthday", _("Birthday gift")
        HOLIDAY = "holiday", _("Holiday gift")

    customer = models.ForeignKey(
        "customers.Customer", models.CASCADE, related_name="benefits", verbose_name=_("customer")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind)
    occasion = models.CharField(_("occasion"), max_length=50, help_text=_("2026, 2026 中秋节..."))
    description = models.CharField(_("what was given"), max_length=200, blank=True)
    given_at = models.DateTimeField(_("given at"))
    given_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    store = models.ForeignKey(
        "accounts.Store", models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-given_at"]
        verbose_name = _("member benefit")
        verbose_name_plural = _("member benefits")
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "kind", "occasion"], name="benefit_once_per_occasion"
            )
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.kind} {self.occasion}"
