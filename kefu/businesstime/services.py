"""Writes to the holiday calendar."""

import datetime as dt

from chinese_calendar import constants as official
from django.db import transaction

from kefu.businesstime.models import CalendarDay
from kefu.businesstime.selectors import work_calendar_forget


@transaction.atomic
def calendar_seed_official(*, years: list[int] | None = None) -> int:
    """Copy public holidays and make-up workdays from chinese-calendar into the calendar table.

    Days an administrator entered or changed (source manual) are kept as they are. Returns the
    number of days written.
    """
    entries: dict[dt.date, tuple[str, str]] = {}
    for day, name in official.holidays.items():
        entries[day] = (CalendarDay.Kind.HOLIDAY, str(name))
    for day, name in official.workdays.items():
        entries[day] = (CalendarDay.Kind.WORKDAY, str(name))
    if years is not None:
        entries = {d: v for d, v in entries.items() if d.year in years}
    manual = set(
        CalendarDay.objects.filter(source=CalendarDay.Source.MANUAL).values_list("date", flat=True)
    )
    rows = [
        CalendarDay(date=day, kind=kind, name=name, source=CalendarDay.Source.LIBRARY)
        for day, (kind, name) in sorted(entries.items())
        if day not in manual
    ]
    CalendarDay.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["date"],
        update_fields=["kind", "name", "source"],
    )
    work_calendar_forget()
    return len(rows)
