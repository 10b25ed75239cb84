"""Background work of follow-ups: the periodic plans every morning and the records officer's
lists every Monday (she builds them on demand too)."""

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from kefu.followups.models import CareList
from kefu.followups.services import care_list_build, followup_plans_run


@db_periodic_task(crontab(minute="30", hour="8"))
def followup_plans_task() -> int:
    return followup_plans_run(now=timezone.now())


@db_periodic_task(crontab(minute="0", hour="8", day_of_week="1"))
def care_lists_weekly_task() -> list[int]:
    """Monday 08:00: key accounts, churn risk and the week's birthdays, handed over."""
    now = timezone.now()
    return [
        care_list_build(actor=None, kind=kind, now=now, days=7).handed_over
        for kind in CareList.Kind.values
    ]
