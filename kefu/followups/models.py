"""Follow-up tasks (回访): promised callbacks, complaint aftercare and the other calls an agent owes
a customer, each with a due time, an assignee and an outcome."""

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

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

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

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
    note = models.TextField(_("what to do"), blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status, default=Status.OPEN)
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome, blank=True)
    outcome_note = models.TextField(_("outcome notes"), blank=True)
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

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} {self.customer_id} {self.due_at:%Y-%m-%d %H:%M}"
