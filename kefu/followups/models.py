"""Follow-up tasks (回访): promised callbacks, complaint aftercare and the other calls an agent owes
a customer, each with a due time, an assignee and an outcome."""

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from kefu.core.models import TimeStampedModel


class FollowUpQuerySet(models.QuerySet["FollowUp"]):
    def open(self) -> "FollowUpQuerySet":
        return self.filter(status=FollowUp.Status.OPEN)

    def overdue(self, *, now: dt.datetime) -> "FollowUpQuerySet":
        return self.open().filter(due_at__lt=now)


class FollowUp(TimeStampedModel):
    """A call or message owed to a customer by a due time."""

    class Purpose(models.TextChoices):
        PROMISED_CALLBACK = "promised_callback", _("Promised callback")
        COMPLAINT_AFTERCARE = "complaint_aftercare", _("Complaint aftercare")
        IMPACT_WATCH = "impact_watch", _("Negative impact watch")
        SATISFACTION = "satisfaction", _("Satisfaction")
        SECOND_FOLLOWUP = "second_followup", _("Second follow-up")
        CHURN_RESCUE = "churn_rescue", _("Churn rescue")
        MEMBER_CARE = "member_care", _("Member care")
        BIRTHDAY_GREETING = "birthday_greeting", _("Birthday greeting")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    class Priority(models.IntegerChoices):
        HIGH = 1, _("High")
        NORMAL = 2, pgettext_lazy("priority", "Normal")
        LOW = 3, _("Low")

    class Outcome(models.TextChoices):
        REACHED = "reached", _("Reached")
        NOT_REACHED = "not_reached", _("Not reached")
        WRONG_NUMBER = "wrong_number", _("Wrong number")
        REFUSED = "refused", _("Refused")
        DONE = "done", _("Done")

    customer = models.ForeignKey(
        "customers.Customer", models.CASCADE, related_name="followups", verbose_name=_("customer")
    )
    ticket = models.ForeignKey(
        "tickets.Ticket",
        models.CASCADE,
        null=True,
        blank=True,
        related_name="followups",
        verbose_name=_("ticket"),
    )
    purpose = models.CharField(_("purpose"), max_length=30, choices=Purpose)
    due_at = models.DateTimeField(_("due"), db_index=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="followups",
        verbose_name=_("assignee"),
    )
    team = models.ForeignKey(
        "accounts.Team",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="followups",
        verbose_name=_("team"),
        help_text=_("Without an assignee: anyone of the team takes it."),
    )
    priority = models.PositiveSmallIntegerField(
        _("priority"), choices=Priority, default=Priority.NORMAL
    )
    attempt = models.PositiveSmallIntegerField(_("attempt"), default=1)
    previous = models.ForeignKey(
        "self", models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("after")
    )
    care_list = models.ForeignKey(
        "followups.CareList",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="followups",
        verbose_name=_("list"),
    )
    note = models.TextField(_("what to do"), blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status, default=Status.OPEN)
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome, blank=True)
    outcome_note = models.TextField(_("outcome notes"), blank=True)
    # Whether the outcome counts as an effective follow-up for its purpose (the KPI), fixed when
    # it is recorded by the purpose's rule.
    is_effective = models.BooleanField(_("effective"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = FollowUpQuerySet.as_manager()

    class Meta:
        ordering = ["due_at", "id"]
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        indexes = [
            models.Index(fields=["assignee", "status", "due_at"], name="followup_assignee_due"),
            models.Index(fields=["status", "due_at"], name="followup_status_due"),
        ]
        constraints = [
            # A customer has at most one open follow-up per purpose: a second missed call, a
            # list built twice or by two people at once joins the open one. A ticket's own
            # schedule (aftercare 1 of 3, 2 of 3 ...) is the ticket's and is not counted here.
            models.UniqueConstraint(
                fields=["customer", "purpose"],
                condition=models.Q(status="open", ticket__isnull=True),
                name="followup_one_open_per_purpose",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} {self.customer_id} {self.due_at:%Y-%m-%d %H:%M}"


class FollowUpRule(models.Model):
    """What a follow-up of one purpose needs: which outcomes make it effective (the KPI), when a
    customer not reached is tried again, and what comes after a success."""

    purpose = models.CharField(
        _("purpose"), max_length=30, choices=FollowUp.Purpose, primary_key=True
    )
    effective_outcomes = models.JSONField(
        _("effective outcomes"), default=list, help_text=_("Outcomes that count as effective.")
    )
    retry_after_hours = models.PositiveIntegerField(_("try again after (hours)"), default=24)
    max_attempts = models.PositiveSmallIntegerField(_("attempts at most"), default=3)
    next_purpose = models.CharField(_("then"), max_length=30, choices=FollowUp.Purpose, blank=True)
    next_after_days = models.PositiveIntegerField(_("that many days later"), null=True, blank=True)
    calls_per_day = models.PositiveSmallIntegerField(
        _("calls per person per working day"),
        default=20,
        help_text=_(
            "Periodic calls of this purpose (key accounts, churn risk) are spread over the "
            "working days so that nobody gets more than this many a day."
        ),
    )

    class Meta:
        verbose_name = _("follow-up rule")
        verbose_name_plural = _("follow-up rules")

    def __str__(self) -> str:
        return self.get_purpose_display()


class FollowUpPlan(models.Model):
    """A periodic follow-up for every customer of a level: key accounts monthly, say."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    level = models.CharField(_("customer level"), max_length=20)
    purpose = models.CharField(
        _("purpose"), max_length=30, choices=FollowUp.Purpose, default=FollowUp.Purpose.MEMBER_CARE
    )
    interval_days = models.PositiveIntegerField(
        _("every (days)"),
        default=30,
        help_text=_(
            "Each customer of the level is called once in this period; the first round is "
            "spread over its working days."
        ),
    )
    assignee_role = models.CharField(_("handed to"), max_length=32)
    priority = models.PositiveSmallIntegerField(
        _("priority"), choices=FollowUp.Priority, default=FollowUp.Priority.NORMAL
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("follow-up plan")
        verbose_name_plural = _("follow-up plans")

    def __str__(self) -> str:
        return self.name


class CareList(models.Model):
    """A list the records officer builds and hands over as follow-ups (001 §五 职责二)."""

    class Kind(models.TextChoices):
        KEY_ACCOUNTS = "key_accounts", _("Key accounts")
        CHURN_RISK = "churn_risk", _("Churn risk")
        BIRTHDAYS = "birthdays", _("Birthdays")

    kind = models.CharField(_("list"), max_length=20, choices=Kind)
    built_at = models.DateTimeField(_("built at"))
    built_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    days = models.PositiveSmallIntegerField(_("days ahead"), null=True, blank=True)
    customers = models.PositiveIntegerField(_("customers"), default=0)
    handed_over = models.PositiveIntegerField(_("follow-ups created"), default=0)

    class Meta:
        ordering = ["-built_at"]
        verbose_name = _("customer list")
        verbose_name_plural = _("customer lists")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.built_at:%Y-%m-%d}"
