"""Notification e-mails: one SMTP connection per batch, each message sent at most once."""

import datetime as dt
import logging
import smtplib
from collections.abc import Iterable

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from kefu.notifications.models import Notification

logger = logging.getLogger(__name__)

SUBJECT_PREFIX = "[客服] "


def notification_email_message(notification: Notification, *, connection=None) -> EmailMessage:
    subject = SUBJECT_PREFIX + " ".join(notification.title.split())
    parts = [notification.body.strip()]
    if notification.url:
        parts.append(settings.BASE_URL + notification.url)
    return EmailMessage(
        subject=subject,
        body="\n\n".join(p for p in parts if p) + "\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.recipient.email],
        connection=connection,
    )


def notification_emails_send(*, notification_ids: Iterable[int], now: dt.datetime) -> int:
    """E-mail the given notifications not e-mailed yet; returns how many went out.

    Each is marked `emailed_at` right after it is sent, so a re-run (a retry after a dropped
    connection) sends only the rest. A refused address is logged and left unmarked; a broken
    connection raises, for the task to retry.
    """
    pending = list(
        Notification.objects.filter(
            pk__in=list(notification_ids),
            emailed_at__isnull=True,
            recipient__is_active=True,
        )
        .exclude(recipient__email="")
        .select_related("recipient")
        .order_by("pk")
    )
    if not pending:
        return 0
    sent = 0
    with get_connection() as connection:
        for notification in pending:
            try:
                notification_email_message(notification, connection=connection).send()
            except smtplib.SMTPRecipientsRefused:
                logger.warning(
                    "Notification %s: the mail server refused %s",
                    notification.pk,
                    notification.recipient.email,
                )
                continue
            Notification.objects.filter(pk=notification.pk, emailed_at__isnull=True).update(
                emailed_at=now
            )
            sent += 1
    return sent
