"""The default schedule (09:00–12:00 and 13:30–18:00, Monday to Friday) and the official holidays
and make-up workdays that chinese-calendar knows (`kefu calendar` refreshes them later)."""

from django.db import migrations


def seed(apps, schema_editor):
    from chinese_calendar import constants as official

    BusinessSchedule = apps.get_model("businesstime", "BusinessSchedule")
    CalendarDay = apps.get_model("businesstime", "CalendarDay")
    BusinessSchedule.objects.get_or_create(
        name="default",
        defaults={"periods": [["09:00", "12:00"], ["13:30", "18:00"]], "weekdays": [0, 1, 2, 3, 4]},
    )
    days = {d: ("holiday", str(n)) for d, n in official.holidays.items()}
    days.update({d: ("workday", str(n)) for d, n in official.workdays.items()})
    CalendarDay.objects.bulk_create(
        [
            CalendarDay(date=d, kind=kind, name=name, source="chinese_calendar")
            for d, (kind, name) in sorted(days.items())
        ],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [("businesstime", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
