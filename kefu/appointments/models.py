"""Store appointments (预约到店): opening hours and capacity per slot, bookings, visits.

A slot row per store and start time counts its bookings; booking locks that row, so a full slot
refuses the next booking even when two agents book at the same moment.
"""

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from kefu.core.models import TimeStampedModel


class StoreSchedule(models.Model):
    """How a store takes appointments: slot length and how many customers per slot."""

    store = models.OneToOneField(
        "accounts.Store", models.CASCADE, primary_key=True, related_name="appointment_schedule"
    )
    slot_minutes = models.PositiveSmallIntegerField(_("slot length (minutes)"), default=60)
    capacity = models.PositiveSmallIntegerField(_("customers per slot"), default=3)
    is_open_for_booking = models.BooleanField(_("takes appointments"), default=True)

    class Meta:
        verbose_name = _("appointment schedule")
        verbose_name_plural = _("appointment schedules")

    def __str__(self) -> str:
        return f"{self.store_id} {self.slot_minutes}min × {self.capacity}"


class OpeningHours(models.Model):
    """One opening period of a store on a weekday (0 Monday … 6 Sunday)."""

    store = models.ForeignKey("accounts.Store", models.CASCADE, related_name="opening_hours")
    weekday = models.PositiveSmallIntegerField(_("weekday"))
    opens_at = models.TimeField(_("opens"))
    closes_at = models.TimeField(_("closes"))

    class Meta:
        ordering = ["store", "weekday", "opens_at"]
        verbose_name = _("opening hours")
        verbose_name_plural = _("opening hours")
        constraints = [
            models.CheckConstraint(
                condition=Q(weekday__gte=0, weekday__lte=6), name="opening_weekday_0_6"
            ),
            models.CheckConstraint(
                condition=Q(closes_at__gt=models.F("opens_at")), name="opening_closes_after"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.store_id} {self.weekday} {self.opens_at:%H:%M}-{self.closes_at:%H:%M}"


class AppointmentSlot(models.Model):
    """How many are booked into one slot of a store (the row booking locks)."""

    store = models.ForeignKey("accounts.Store", models.CASCADE, related_name="+")
    starts_at = models.DateTimeField()
    booked = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "starts_at"], name="slot_store_start_unique")
        ]

    def __str__(self) -> str:
        return f"{self.store_id} {self.starts_at:%Y-%m-%d %H:%M} {self.booked}"


class Appointment(TimeStampedModel):
    """A customer booked into a store, and what came of the visit."""

    class Status(models.TextChoices):
        BOOKED = "booked", _("Booked")
        ARRIVED = "arrived", _("Arrived")
        NO_SHOW = "no_show", _("No-show")
        CANCELLED = "cancelled", _("Cancelled")

    class Source(models.TextChoices):
        CONVERSATION = "conversation", _("Consultation")
        TICKET = "ticket", _("Ticket")
        PROFILE = "profile", _("Customer profile")
        PHONE = "phone", _("Phone")

    customer = models.ForeignKey(
        "customers.Customer",
        models.CASCADE,
        related_name="appointments",
        verbose_name=_("customer"),
    )
    store = models.ForeignKey(
        "accounts.Store", models.PROTECT, related_name="appointments", verbose_name=_("store")
    )
    starts_at = models.DateTimeField(_("time"))
    ends_at = models.DateTimeField()
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.BOOKED)
    source = models.CharField(_("booked from"), max_length=15, choices=Source)
    conversation = models.ForeignKey(
        "conversations.Conversation",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="appointments",
    )
    ticket = models.ForeignKey(
        "tickets.Ticket", models.SET_NULL, null=True, blank=True, related_name="appointments"
    )
    purpose = models.CharField(pgettext_lazy("appointment", "purpose"), max_length=200, blank=True)
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reminder_sent_at = models.DateTimeField(_("reminder sent"), null=True, blank=True)
    visited_at = models.DateTimeField(_("visit recorded"), null=True, blank=True)
    visit_note = models.TextField(_("visit outcome"), blank=True)
    purchase_amount = models.DecimalField(
        _("purchase amount"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    order_no = models.CharField(_("order number"), max_length=50, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["starts_at", "id"]
        verbose_name = _("appointment")
        verbose_name_plural = _("appointments")
        indexes = [
            models.Index(fields=["store", "starts_at"], name="appointment_store_day"),
            models.Index(fields=["status", "starts_at"], name="appointment_status_time"),
        ]
        permissions = [("record_visit", "Can record store visits")]

    def __str__(self) -> str:
        return f"{self.customer_id} @ {self.store_id} {self.starts_at:%Y-%m-%d %H:%M}"

    def get_absolute_url(self) -> str:
        return f"/appointments/{self.pk}/"

    @property
    def is_order(self) -> bool:
        return bool(self.order_no) or bool(self.purchase_amount)

    def reminder_due_at(self) -> dt.datetime:
        """The day before at 10:00 local time (at once when booked later than that)."""
        from django.utils import timezone

        local = timezone.localtime(self.starts_at)
        day_before = (local - dt.timedelta(days=1)).replace(
            hour=10, minute=0, second=0, microsecond=0
        )
        return day_before
