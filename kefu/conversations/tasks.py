"""Background work of consultations: deliveries to providers and the 60-second wait alerts.

Deliveries retry; a message already sent is never sent again (message_deliver checks the row
under a lock). The wait check runs a minute after a chat starts and on a per-minute pass.
"""

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from kefu.conversations.services import (
    conversation_timers_run,
    conversation_wait_check,
    message_deliver,
)


@db_task(retries=3, retry_delay=30)
def message_deliver_task(message_id: int) -> str | None:
    message = message_deliver(message_id=message_id)
    return message.status if message is not None else None


@db_task()
def conversation_wait_check_task(conversation_id: int) -> int:
    return conversation_wait_check(conversation_id=conversation_id, now=timezone.now())


@db_periodic_task(crontab(minute="*"))
def conversation_timers_periodic_task() -> int:
    return conversation_timers_run(now=timezone.now())
