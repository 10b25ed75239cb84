"""Background work of appointments: the reminder the day before, at its time and on a sweep."""

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from kefu.appointments.services import appointment_remind, appointment_reminders_run


@db_task()
def appointment_reminder_task(appointment_id: int) -> bool:
    return appointment_remind(appointment_id=appointment_id, now=timezone.now())


@db_periodic_task(crontab(minute="*/10"))
def appointment_reminders_periodic_task() -> int:
    return appointment_reminders_run(now=timezone.now())
