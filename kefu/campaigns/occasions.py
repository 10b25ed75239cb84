"""Dates worth a greeting: birthdays (see kefu.customers.selectors) and Chinese holidays — public ones from the work calendar table,
lunar festivals from lunar-python (its tables reach far beyond chinese-calendar's)."""

import datetime as dt

from kefu.customers.selectors import birthday_days, celebrated_on, customers_with_birthday

__all__ = ["birthday_days", "celebrated_on", "customers_with_birthday", "festival_on"]

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
