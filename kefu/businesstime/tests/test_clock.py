import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from kefu.businesstime.models import BusinessSchedule, CalendarDay
from kefu.businesstime.selectors import calendar_years_missing, work_calendar_get
from kefu.businesstime.services import calendar_seed_official

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
HOUR = dt.timedelta(hours=1)


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SH)


@pytest.fixture
def calendar():
    return work_calendar_get()


def test_migration_seeds_default_schedule_and_official_days(calendar):
    assert calendar.periods == ((dt.time(9), dt.time(12)), (dt.time(13, 30), dt.time(18)))
    assert CalendarDay.objects.get(date=dt.date(2026, 10, 1)).kind == "holiday"
    assert CalendarDay.objects.get(date=dt.date(2026, 10, 10)).kind == "workday"


def test_national_day_2026_with_make_up_workdays(calendar):
    """Golden week 1–7 October 2026 is off; Sunday 20 September and Saturday 10 October are worked."""
    assert not calendar.is_workday(dt.date(2026, 10, 1))
    assert not calendar.is_workday(dt.date(2026, 10, 7))
    assert calendar.is_workday(dt.date(2026, 10, 8))
    assert calendar.is_workday(dt.date(2026, 9, 20))  # a Sunday
    assert calendar.is_workday(dt.date(2026, 10, 10))  # a Saturday
    assert not calendar.is_workday(dt.date(2026, 10, 11))  # an ordinary Sunday


def test_four_business_hours_across_the_golden_week(calendar):
    # given a complaint at 17:00 on Wednesday 30 September with a four-hour target
    opened = at(2026, 9, 30, 17)
    # when
    due = calendar.add(opened, 4 * HOUR)
    # then: one hour on the 30th, nothing 1–7 October, three hours on Thursday the 8th
    assert due == at(2026, 10, 8, 12)
    assert calendar.between(opened, due) == 4 * HOUR


def test_lunch_break_is_not_counted(calendar):
    assert calendar.add(at(2026, 11, 24, 11), 2 * HOUR) == at(2026, 11, 24, 14, 30)
    assert calendar.between(at(2026, 11, 24, 11), at(2026, 11, 24, 14, 30)) == 2 * HOUR
    assert not calendar.is_open(at(2026, 11, 24, 12, 45))
    assert calendar.is_open(at(2026, 11, 24, 13, 30))


def test_clock_started_outside_hours_starts_at_next_opening(calendar):
    friday_night = at(2026, 11, 27, 21)
    assert calendar.add(friday_night, 30 * dt.timedelta(minutes=1)) == at(2026, 11, 30, 9, 30)
    assert calendar.between(friday_night, at(2026, 11, 30, 9)) == dt.timedelta()


def test_deadline_ending_exactly_at_closing(calendar):
    assert calendar.add(at(2026, 11, 24, 9), 7.5 * HOUR) == at(2026, 11, 24, 18)


def test_utc_input_is_read_in_china_time(calendar):
    utc_morning = dt.datetime(2026, 11, 24, 1, tzinfo=dt.UTC)  # 09:00 in Shanghai
    assert calendar.add(utc_morning, HOUR) == at(2026, 11, 24, 10)


def test_year_without_calendar_follows_the_week_and_is_flagged():
    """chinese-calendar stops at 2026: 2027 is not invented, it is reported missing."""
    calendar = work_calendar_get()
    assert calendar.is_workday(dt.date(2027, 10, 1))  # a Friday; no holiday entered yet
    assert calendar_years_missing(today=dt.date(2026, 11, 24)) == [2027]
    CalendarDay.objects.create(date=dt.date(2027, 10, 1), kind="holiday", name="国庆节")
    assert calendar_years_missing(today=dt.date(2026, 11, 24)) == []
    assert not work_calendar_get().is_workday(dt.date(2027, 10, 1))


def test_reseeding_keeps_days_an_administrator_changed():
    CalendarDay.objects.filter(date=dt.date(2026, 10, 7)).update(kind="workday", source="manual")
    calendar_seed_official(years=[2026])
    day = CalendarDay.objects.get(date=dt.date(2026, 10, 7))
    assert (day.kind, day.source) == ("workday", "manual")
    assert CalendarDay.objects.get(date=dt.date(2026, 10, 6)).kind == "holiday"


def test_schedule_validation():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        BusinessSchedule(name="x", periods=[["13:00", "12:00"]], weekdays=[0]).clean()
    with pytest.raises(ValidationError):
        BusinessSchedule(name="x", periods=[["09:00", "12:00"]], weekdays=[7]).clean()
    BusinessSchedule(
        name="x", periods=[["09:00", "12:00"], ["13:00", "17:00"]], weekdays=[0]
    ).clean()


def test_calendar_command(capsys):
    from django.core.management import call_command

    CalendarDay.objects.all().delete()
    call_command("calendar", "2026")
    assert CalendarDay.objects.filter(date__year=2026).count() == CalendarDay.objects.count() > 20


def test_administrators_are_told_about_a_missing_year(administrator, agent):
    from django.test import Client

    admin_client, agent_client = Client(), Client()
    admin_client.force_login(administrator)
    agent_client.force_login(agent)
    assert 'data-testid="calendar-missing"' in admin_client.get("/customers/").content.decode()
    assert 'data-testid="calendar-missing"' not in agent_client.get("/customers/").content.decode()


def test_calendar_cache_forgets_an_edited_day(db):
    """A holiday an administrator adds counts at once in this process (the cache is forgotten)."""
    import datetime as dt

    from kefu.businesstime.models import CalendarDay
    from kefu.businesstime.selectors import work_calendar_get

    day = dt.date(2026, 12, 1)
    assert work_calendar_get().is_workday(day)
    CalendarDay.objects.create(date=day, kind=CalendarDay.Kind.HOLIDAY, name="公司假日")
    assert not work_calendar_get().is_workday(day)


def test_a_missing_schedule_falls_back_to_the_default_hours(db):
    """Ticket writes keep working if the schedule row is deleted (or a test flushed it)."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from kefu.businesstime.models import BusinessSchedule
    from kefu.businesstime.selectors import work_calendar_get

    BusinessSchedule.objects.all().delete()
    calendar = work_calendar_get()
    tz = ZoneInfo("Asia/Shanghai")
    assert calendar.add(dt.datetime(2026, 11, 24, 11, tzinfo=tz), dt.timedelta(hours=2)) == (
        dt.datetime(2026, 11, 24, 14, 30, tzinfo=tz)
    )
