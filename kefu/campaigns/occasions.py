"""Dates worth a greeting: birthdays in a window (across a year end; 29 February celebrated on
28 February in other years) and Chinese holidays — public ones from the work calendar table,
lunar festivals from lunar-python (its tables reach far beyond chinese-calendar's)."""

import calendar
import datetime as dt

from django.db.models import IntegerField, QuerySet
from django.db.models.functions import ExtractDay, ExtractMonth

from kefu.customers.models import Customer

# Lunar festivals by (lunar month, day); 除夕 is the day before 春节 (腊月廿九 or 三十).
LUNAR_FESTIVALS = {
    (1, 1): "春节",
    (1, 15): "元宵节",
    (5, 5): "端午节",
    (7, 7): "七夕节",
    (8, 15): "中秋节",
    (9, 9): "重阳节",
    (12, 8): "腊八节",
}
SOLAR_FESTIVALS = {
    (1, 1): "元旦",
    (3, 8): "妇女节",
    (5, 1): "劳动节",
    (6, 1): "儿童节",
    (10, 1): "国庆节",
}


def birthday_days(start: dt.date, days: int) -> list[tuple[int, int]]:
    """(month, day) pairs whose birthdays fall on start .. start + days - 1.

    A window over New Year's Eve continues in January; in a year without 29 February, people
    born on it are greeted on the 28th.
    """
    pairs: list[tuple[int, int]] = []
    for offset in range(max(days, 1)):
        day = start + dt.timedelta(days=offset)
        pairs.append((day.month, day.day))
        if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
            pairs.append((2, 29))
    return list(dict.fromkeys(pairs))


def celebrated_on(birthday: dt.date, year: int) -> dt.date:
    """The date a birthday is celebrated in `year`."""
    if birthday.month == 2 and birthday.day == 29 and not calendar.isleap(year):
        return dt.date(year, 2, 28)
    return birthday.replace(year=year)


def customers_with_birthday(
    customers: QuerySet[Customer], *, start: dt.date, days: int
) -> QuerySet[Customer]:
    keys = [month * 100 + day for month, day in birthday_days(start, days)]
    return customers.annotate(
        birthday_key=ExtractMonth("birthday", output_field=IntegerField()) * 100
        + ExtractDay("birthday", output_field=IntegerField())
    ).filter(birthday__isnull=False, birthday_key__in=keys)


def festival_on(day: dt.date) -> str:
    """The name of the festival or public holiday that starts on `day`, or ''."""
    from lunar_python import Solar

    lunar = Solar.fromYmd(day.year, day.month, day.day).getLunar()
    month, lunar_day = abs(lunar.getMonth()), lunar.getDay()
    if lunar.getMonth() > 0 and (month, lunar_day) in LUNAR_FESTIVALS:
        return LUNAR_FESTIVALS[(month, lunar_day)]
    tomorrow = Solar.fromYmd(day.year, day.month, day.day).next(1).getLunar()
    if tomorrow.getMonth() == 1 and tomorrow.getDay() == 1:
        return "除夕"
    if (day.month, day.day) in SOLAR_FESTIVALS:
        return SOLAR_FESTIVALS[(day.month, day.day)]
    return _public_holiday_start(day)


def _public_holiday_start(day: dt.date) -> str:
    """First day of a public holiday run in the work calendar table (e.g. 清明节)."""
    from kefu.businesstime.models import CalendarDay

    rows = {
        row.date: row
        for row in CalendarDay.objects.filter(
            date__in=[day, day - dt.timedelta(days=1)], kind=CalendarDay.Kind.HOLIDAY
        )
    }
    today = rows.get(day)
    if today is None or (day - dt.timedelta(days=1)) in rows:
        return ""
    return today.name
