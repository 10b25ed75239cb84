"""Background work of notifications: e-mails, enqueued on commit by `services.notify`."""

from django.utils import timezone
from huey.contrib.djhuey import db_task

from kefu.notifications.emails import notification_emails_send


@db_task(retries=3, retry_delay=60)
def notification_email_task(notification_ids: list[int]) -> int:
    """E-mail these notifications (those not e-mailed yet); returns how many were sent."""
    return notification_emails_send(notification_ids=notification_ids, now=timezone.now())
