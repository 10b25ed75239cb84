"""Business-time arithmetic on Chinese workdays: working periods, public holidays, make-up days.

Pure functions over a `WorkCalendar` loaded from the database (selectors.work_calendar_get), so
SLA clocks and business-hours rules never read chinese-calendar directly and take `now` as an
argument. A date in a year with no calendar entered follows the weekly pattern; the missing year
is flagged to administrators (selectors.calendar_years_missing) rather than crashing.
"""

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

# A deadline more than this many calendar days ahead is refused as a runaway (no working time).
_MAX_DAYS = 3660


@dataclass(frozen=True)
class WorkCalendar:
    periods: tuple[tuple[dt.time, dt.time], ...]
    weekdays: frozenset[int]
    holidays: frozenset[dt.date]
    workdays: frozenset[dt.date]
    tz: ZoneInfo

    def is_workday(self, day: dt.date) -> bool:
        if day in self.holidays:
            return False
        if day in self.workdays:
            return True
        return day.weekday() in self.weekdays

    def _windows(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        if not self.is_workday(day):
            return []
        return [
            (dt.datetime.combine(day, start, self.tz), dt.datetime.combine(day, end, self.tz))
            for start, end in self.periods
        ]

    def add(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        """The moment `duration` of working time after `start` has passed."""
        remaining = duration
        moment = start.astimezone(self.tz)
        day = moment.date()
        for _ in range(_MAX_DAYS):
            for window_start, window_end in self._windows(day):
                if window_end <= moment:
                    continue
                begin = max(window_start, moment)
                available = window_end - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
            day += dt.timedelta(days=1)
            moment = dt.datetime.combine(day, dt.time.min, self.tz)
        raise ValueError("no working time in the calendar")

    def between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """Working time from `start` to `end` (zero if end is not after start)."""
        start, end = start.astimezone(self.tz), end.astimezone(self.tz)
        total = dt.timedelta()
        day = start.date()
        while day <= end.date():
            for window_start, window_end in self._windows(day):
                overlap = min(window_end, end) - max(window_start, start)
                if overlap > dt.timedelta():
                    total += overlap
            day += dt.timedelta(days=1)
        return total

    def is_open(self, moment: dt.datetime) -> bool:
        """Whether `moment` falls inside working hours."""
        local = moment.astimezone(self.tz)
        return any(start <= local < end for start, end in self._windows(local.date()))
