"""Reads of notifications: a user only ever sees their own."""

from django.db.models import QuerySet

from kefu.accounts.models import User
from kefu.notifications.exceptions import NotificationNotFound
from kefu.notifications.models import Notification


def notification_list_for(*, user: User, unread_only: bool = False) -> QuerySet[Notification]:
    """The user's notifications, newest first."""
    notifications = Notification.objects.filter(recipient=user)
    if unread_only:
        notifications = notifications.unread()
    return notifications


def notification_unread_count(*, user: User) -> int:
    """How many of the user's notifications are unread: one COUNT on the (recipient, read_at) index."""
    return Notification.objects.filter(recipient=user).unread().count()


def notification_get_for(*, user: User, notification_id: int) -> Notification:
    """One of the user's own notifications; anyone else's is not found."""
    try:
        return notification_list_for(user=user).get(pk=notification_id)
    except (Notification.DoesNotExist, ValueError, TypeError):
        raise NotificationNotFound(notification_id) from None
