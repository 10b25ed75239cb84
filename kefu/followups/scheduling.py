"""When the calls of the records officer's lists and of the periodic plans fall due.

* A birthday greeting is due by the close of business on the birthday; when the birthday falls
  on a day off, by the close of the last working day before it (seed 001 §五 职责二/三: the
  birthday list goes to the agents, who greet and tell how to claim the gift, 生日问候).
* Periodic calls (key accounts, churn risk) are spread over the working days of the plan's
  period, each due by the close of its day, so that nobody gets more than the purpose's calls a
  day. Customers already due again (their last call is older than the period) come first; when
  the team has not the capacity, the rest wait for the following working days, still within it.

Pure functions over a `WorkCalendar` (kefu.businesstime) and `now`: the services query, these
decide.
"""

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator

from kefu.businesstime.clock import WorkCalendar

# A spread runs at most this far past today (a team without capacity for years of calls).
MAX_SPREAD_DAYS = 366
# Without working periods in the calendar, a day closes at this time.
DEFAULT_CLOSE = dt.time(18)


def close_of_business(calendar: WorkCalendar, day: dt.date) -> dt.datetime:
    """The end of the day's last working period (18:00 by the default schedule)."""
    end = calendar.periods[-1][1] if calendar.periods else DEFAULT_CLOSE
    return dt.datetime.combine(day, end, calendar.tz)


def birthday_due_at(
    calendar: WorkCalendar, celebrated_on: dt.date, *, now: dt.datetime
) -> dt.datetime:
    """When the greeting for a birthday celebrated on `celebrated_on` is due: by the close of the
    birthday if it is a working day, else of the last working day before it (not before today).
    If that moment has passed, by the close of the birthday itself; if that has passed too (the
    list was built late on the day), now."""
    today = now.astimezone(calendar.tz).date()
    day = celebrated_on
    while day > today and not calendar.is_workday(day):
        day -= dt.timedelta(days=1)
    now_minute = now.replace(second=0, microsecond=0)
    for candidate in (close_of_business(calendar, day), close_of_business(calendar, celebrated_on)):
        if candidate > now:
            return candidate
    return now_minute


def _working_days(calendar: WorkCalendar, *, now: dt.datetime) -> Iterator[dt.date]:
    """Working days from today (if its working hours have not ended) onwards."""
    day = now.astimezone(calendar.tz).date()
    if close_of_business(calendar, day) <= now:
        day += dt.timedelta(days=1)
    last = day + dt.timedelta(days=MAX_SPREAD_DAYS)
    found = False
    while day <= last:
        if calendar.is_workday(day):
            found = True
            yield day
        day += dt.timedelta(days=1)
    if not found:  # a calendar without a single working day: every day counts
        yield now.astimezone(calendar.tz).date()


def spread_over_working_days(
    customer_ids: Iterable[int],
    *,
    assignees: list[int | None],
    calendar: WorkCalendar,
    now: dt.datetime,
    period_days: int,
    per_day: int,
    load: dict[tuple[int | None, dt.date], int] | None = None,
    due_now: Iterable[int] = (),
) -> list[tuple[int, int | None, dt.datetime]]:
    """(customer, assignee, due) for each customer: `due_now` ones on the first working days
    with room, the others evenly over the working days of the next `period_days` days; nobody
    gets more than `per_day` a day, counting the `load` they already carry ({(assignee, day):
    calls}). An empty `assignees` hands the calls to nobody (None), still `per_day` a day."""
    per_day = max(per_day, 1)
    people: list[int | None] = list(assignees) or [None]
    taken: dict[tuple[int | None, dt.date], int] = defaultdict(int, load or {})
    handed: dict[int | None, int] = defaultdict(int)  # calls given to each person by this spread
    urgent_ids = set(due_now)
    ordered = list(dict.fromkeys(customer_ids))
    urgent = [c for c in ordered if c in urgent_ids]
    even = [c for c in ordered if c not in urgent_ids]
    period_end = now.astimezone(calendar.tz).date() + dt.timedelta(days=max(period_days, 1))
    days = list(_working_days(calendar, now=now))
    in_period = sum(1 for d in days if d < period_end)
    result: list[tuple[int, int | None, dt.datetime]] = []
    for index, day in enumerate(days):
        if not urgent and not even:
            break
        free = {person: per_day - taken[(person, day)] for person in people}
        room = sum(max(n, 0) for n in free.values())
        if room <= 0:
            continue
        batch = urgent[:room]
        del urgent[: len(batch)]
        room -= len(batch)
        quota = math.ceil(len(even) / (in_period - index)) if index < in_period else len(even)
        share = even[: min(quota, room)]
        del even[: len(share)]
        due = close_of_business(calendar, day)
        for customer_id in [*batch, *share]:
            # the one with the most room that day; between equals, the one given fewer so far
            person = max(people, key=lambda p: (free[p], -handed[p]))
            free[person] -= 1
            handed[person] += 1
            taken[(person, day)] += 1
            result.append((customer_id, person, due))
    if urgent or even:  # beyond MAX_SPREAD_DAYS: the last day takes the rest
        due = close_of_business(calendar, days[-1])
        result.extend((c, people[0], due) for c in [*urgent, *even])
    return result


def local_day(calendar: WorkCalendar, moment: dt.datetime) -> dt.date:
    return moment.astimezone(calendar.tz).date()
