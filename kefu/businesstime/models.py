import datetime as dt

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


class CalendarDay(models.Model):
    """A date that breaks the weekly pattern: a public holiday or a make-up workday (调休)."""

    class Kind(models.TextChoices):
        HOLIDAY = "holiday", _("Public holiday")
        WORKDAY = "workday", _("Make-up workday")

    class Source(models.TextChoices):
        LIBRARY = "chinese_calendar", _("Official calendar")
        MANUAL = "manual", _("Entered by an administrator")

    date = models.DateField(_("date"), unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=50, blank=True)
    source = models.CharField(
        _("source"), max_length=20, choices=Source.choices, default=Source.MANUAL
    )

    class Meta:
        ordering = ["date"]
        verbose_name = _("holiday or make-up workday")
        verbose_name_plural = _("holidays and make-up workdays")

    def __str__(self) -> str:
        return f"{self.date} {self.get_kind_display()} {self.name}".strip()


class BusinessSchedule(models.Model):
    """Working periods of a normal workday (several a day: a lunch break is common) and the
    weekdays that are normally worked."""

    name = models.CharField(_("name"), max_length=50, unique=True)
    # [["09:00", "12:00"], ["13:30", "18:00"]], in Asia/Shanghai time
    periods = models.JSONField(_("working periods"), default=list)
    # Monday is 0, as in Python's date.weekday()
    weekdays = models.JSONField(_("working weekdays"), default=list)

    class Meta:
        ordering = ["name"]
        verbose_name = _("business schedule")
        verbose_name_plural = _("business schedules")

    def __str__(self) -> str:
        return self.name

    def period_times(self) -> list[tuple[dt.time, dt.time]]:
        """The working periods as times: [(09:00, 12:00), (13:30, 18:00)]."""
        return [
            (dt.time.fromisoformat(start), dt.time.fromisoformat(end))
            for start, end in self.periods
        ]

    def clean(self) -> None:
        try:
            periods = self.period_times()
        except (TypeError, ValueError):
            raise ValidationError(
                {"periods": _('Give periods as [["09:00", "12:00"], ...].')}
            ) from None
        previous_end = dt.time.min
        for start, end in periods:
            if not previous_end <= start < end:
                raise ValidationError(
                    {"periods": _("Periods must be in order and must not overlap.")}
                )
            previous_end = end
        if not self.weekdays or any(d not in range(7) for d in self.weekdays):
            raise ValidationError(
                {"weekdays": _("Give weekdays as numbers, Monday = 0 … Sunday = 6.")}
            )
