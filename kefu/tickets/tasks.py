"""Background work of tickets: the timer pass (SLA warnings and breaches, hand-off urges, overdue
promised callbacks). Every timer is a column in the database, so a worker that was down catches
up on its next pass and nothing fires twice."""

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from kefu.tickets.services import ticket_timers_run


@db_task()
def ticket_timers_task() -> dict[str, int]:
    """One pass over every ticket timer that is due now."""
    return ticket_timers_run(now=timezone.now())


@db_periodic_task(crontab(minute="*"))
def ticket_timers_periodic_task() -> dict[str, int]:
    return ticket_timers_task.call_local()


@db_task(retries=3, retry_delay=60)
def handoff_email_task(handoff_id: int, urge_count: int) -> bool:
    """Mail a hand-off or an urge to the department's shared mailbox."""
    from kefu.tickets.emails import handoff_email_send

    return handoff_email_send(handoff_id=handoff_id, urge_count=urge_count)
