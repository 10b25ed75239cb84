from django.utils.translation import gettext_lazy as _

from kefu.core.exceptions import NotFound


class NotificationNotFound(NotFound):
    """No such notification, or it belongs to someone else (both look the same)."""

    code = "notification_not_found"

    def __init__(self, notification_id):
        super().__init__(_("Notification %(id)s not found.") % {"id": notification_id})
