"""Writes of notifications: fan-out to recipients (e-mail on commit) and marking them read."""

import datetime as dt
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction

from kefu.accounts.models import User
from kefu.notifications.models import Notification
from kefu.notifications.selectors import notification_get_for
from kefu.notifications.tasks import notification_email_task

TITLE_MAX_LENGTH = Notification._meta.get_field("title").max_length or 200


def _title_fit(title: str) -> str:
    """Titles often quote a subject typed by someone: cut them rather than fail the caller."""
    title = " ".join(str(title).split())
    if len(title) <= TITLE_MAX_LENGTH:
        return title
    return title[: TITLE_MAX_LENGTH - 1] + "…"


@transaction.atomic
def notify(
    recipients: Iterable[User | None],
    *,
    kind: str,
    title: str,
    body: str = "",
    url: str = "",
    email: bool = True,
) -> list[Notification]:
    """Send one notification to each active recipient, once each; e-mail them after commit.

    `recipients` may hold None, duplicates and inactive users: they are skipped. Safe to call
    inside another service's transaction: if that rolls back, no row stays and no e-mail leaves.
    `url` is a site-relative path (`/tickets/5/`).
    """
    if url and (not url.startswith("/") or url.startswith("//")):
        raise ValueError(f"A notification url must be a site-relative path, not {url!r}.")
    seen: set[int] = set()
    wanted: list[User] = []
    for user in recipients:
        if user is None or user.pk is None or not user.is_active or user.pk in seen:
            continue
        seen.add(user.pk)
        wanted.append(user)
    if not wanted:
        return []
    title = _title_fit(title)
    notifications = Notification.objects.bulk_create(
        [
            Notification(recipient=user, kind=kind, title=title, body=body, url=url)
            for user in wanted
        ]
    )
    if email and settings.SMTP_ENABLED:
        ids = [n.pk for n in notifications if n.recipient.email]
        if ids:
            transaction.on_commit(lambda: notification_email_task(ids))
    return notifications


@transaction.atomic
def notification_mark_read(
    *, actor: User, notification_ids: Iterable[int] | None = None, now: dt.datetime
) -> int:
    """Mark the actor's own unread notifications read (all of them when `notification_ids` is None).

    Ids of other users' notifications are ignored. Returns how many changed.
    """
    notifications = Notification.objects.filter(recipient=actor).unread()
    if notification_ids is not None:
        notifications = notifications.filter(pk__in=list(notification_ids))
    return notifications.update(read_at=now)


@transaction.atomic
def notification_read(*, actor: User, notification_id: int, now: dt.datetime) -> Notification:
    """Mark one of the actor's notifications read (raises NotificationNotFound for anyone else's)."""
    notification = notification_get_for(user=actor, notification_id=notification_id)
    if notification.read_at is None:
        notification.read_at = now
        notification.save(update_fields=["read_at"])
    return notification
