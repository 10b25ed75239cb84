import datetime as dt
import logging
import time
from zoneinfo import ZoneInfo

from django.conf import settings

from kefu.businesstime.clock import WorkCalendar
from kefu.businesstime.models import BusinessSchedule, CalendarDay

logger = logging.getLogger(__name__)

DEFAULT_SCHEDULE = "default"

# The calendar is read on every ticket write and timer; it changes a few times a year. Each
# process keeps it for CACHE_SECONDS; a change in this process forgets it at once (signals in
# apps.py), other processes (the worker) see it within CACHE_SECONDS.
CACHE_SECONDS = 60.0
_cache: dict[str, tuple[float, WorkCalendar]] = {}


def work_calendar_forget(**kwargs) -> None:
    _cache.clear()


def work_calendar_get(*, schedule: str = DEFAULT_SCHEDULE) -> WorkCalendar:
    """The working calendar as entered in the database, cached per process for a minute."""
    hit = _cache.get(schedule)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    calendar = _work_calendar_load(schedule)
    _cache[schedule] = (time.monotonic() + CACHE_SECONDS, calendar)
    return calendar


# What migration 0002 enters; used if the row has gone (deleted, or a test flushed the tables).
DEFAULT_PERIODS = [["09:00", "12:00"], ["13:30", "18:00"]]
DEFAULT_WEEKDAYS = [0, 1, 2, 3, 4]


def _work_calendar_load(schedule: str) -> WorkCalendar:
    row = BusinessSchedule.objects.filter(name=schedule).first()
    if row is None:
        logger.warning(
            "Business schedule %r is missing: 09:00-12:00, 13:30-18:00 Mon-Fri", schedule
        )
        row = BusinessSchedule(name=schedule, periods=DEFAULT_PERIODS, weekdays=DEFAULT_WEEKDAYS)
    holidays, workdays = set(), set()
    for day, kind in CalendarDay.objects.values_list("date", "kind"):
        (holidays if kind == CalendarDay.Kind.HOLIDAY else workdays).add(day)
    return WorkCalendar(
        periods=tuple(row.period_times()),
        weekdays=frozenset(row.weekdays),
        holidays=frozenset(holidays),
        workdays=frozenset(workdays),
        tz=ZoneInfo(settings.TIME_ZONE),
    )


def calendar_years_missing(*, today: dt.date) -> list[int]:
    """This year and next, where no holiday has been entered: SLA clocks there would count public
    holidays as workdays, so administrators are told."""
    years = [today.year, today.year + 1]
    known = set(
        CalendarDay.objects.filter(date__year__in=years, kind=CalendarDay.Kind.HOLIDAY).dates(
            "date", "year"
        )
    )
    known_years = {d.year for d in known}
    return [y for y in years if y not in known_years]
