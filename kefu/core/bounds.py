"""The bounds every list and filter holds its input to: ids, page numbers, offsets and dates.

A client may send any number and any date. Past these bounds a number no longer fits the
database's integers (an offset of 10**20 is an error in SQL, not an empty page) and a date no
longer fits Python's (0001-01-01 at local midnight is before year 1 in UTC). The API refuses
numbers out of bounds with 422; dates in filters are clamped, so a filter from 0001-01-01 means
"from the beginning". Pages clamp their page number the same way (`page_number`).
"""

import datetime as dt
from typing import Annotated

from django.utils import timezone
from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

# The widest id column (bigint) holds 2**63 - 1 on SQLite and PostgreSQL alike.
ID_MAX = 2**63 - 1
# Digits of an id given as text (`assignee=123`): 18 of them always fit ID_MAX.
ID_DIGITS_MAX = 18
# Nobody pages to page 100,000; the bound keeps page * page size far inside the integers.
PAGE_MAX = 100_000
OFFSET_MAX = 10_000_000
# Days before or after these hold no record of Kefu; filters on them mean "no bound".
DATE_MIN = dt.date(1900, 1, 1)
DATE_MAX = dt.date(2999, 12, 31)

ID_PATTERN = rf"\d{{1,{ID_DIGITS_MAX}}}"


def date_clamp(value: dt.date | None) -> dt.date | None:
    """The day, moved inside DATE_MIN … DATE_MAX."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):  # a datetime is a date too; keep its type
        return value
    return min(max(value, DATE_MIN), DATE_MAX)


def page_number(value: str | int | None) -> int:
    """The page a page view shows for `?page=`: 1 for anything that is not a number, at most
    PAGE_MAX (a page past the last one is simply empty)."""
    try:
        number = int(value or 1)
    except (TypeError, ValueError):
        return 1
    return max(1, min(number, PAGE_MAX))


def _day_in_bounds(value: dt.date) -> dt.date:
    if not DATE_MIN <= value <= DATE_MAX:
        raise PydanticCustomError(
            "date_out_of_bounds",
            "Enter a day from {min} to {max}.",
            {"min": DATE_MIN.isoformat(), "max": DATE_MAX.isoformat()},
        )
    return value


def _moment_in_bounds(value: dt.datetime) -> dt.datetime:
    """The time, aware: one given without an offset is local time (settings.TIME_ZONE)."""
    if not DATE_MIN <= value.date() <= DATE_MAX:
        raise PydanticCustomError(
            "datetime_out_of_bounds",
            "Enter a time from {min} to {max}.",
            {"min": DATE_MIN.isoformat(), "max": DATE_MAX.isoformat()},
        )
    return timezone.make_aware(value) if timezone.is_naive(value) else value


# --- Types for the API's schemas ---------------------------------------------------------------

Id = Annotated[int, Field(ge=1, le=ID_MAX)]
PageNumber = Annotated[int, Field(ge=1, le=PAGE_MAX)]
Offset = Annotated[int, Field(ge=0, le=OFFSET_MAX, description="Rows to skip.")]
# A day or a time a body gives, to be stored or computed with: refused outside the bounds.
DateIn = Annotated[dt.date, AfterValidator(_day_in_bounds)]
DateTimeIn = Annotated[
    dt.datetime,
    AfterValidator(_moment_in_bounds),
    Field(description="Without an offset, local time."),
]
FilterDate = Annotated[
    dt.date,
    AfterValidator(date_clamp),
    Field(description=f"A local day; days before {DATE_MIN} or after {DATE_MAX} count as those."),
]
