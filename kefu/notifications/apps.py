from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _unread_count(user) -> int:
    from kefu.notifications.selectors import notification_unread_count

    return notification_unread_count(user=user)


class NotificationsConfig(AppConfig):
    name = "kefu.notifications"
    label = "notifications"
    verbose_name = _("Notifications")

    def ready(self) -> None:
        from kefu.core.api import api_router_add
        from kefu.core.navigation import NavEntry, nav_register
        from kefu.notifications.api import router

        api_router_add("/notifications", router)
        nav_register(
            NavEntry(
                "notifications",
                _("Notifications"),
                "notifications:notification_list",
                order=900,
                # Every user has notifications; the unread count is also {{ unread_notifications }}.
                badge=_unread_count,
                badge_as="unread_notifications",
            )
        )
