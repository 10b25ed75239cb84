from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _is_staff(user) -> bool:
    return user.is_staff


class CoreConfig(AppConfig):
    name = "kefu.core"
    label = "core"
    verbose_name = "Kefu core"

    def ready(self) -> None:
        from kefu.core.navigation import NavEntry, nav_register

        # Core's own pages; every app registers its entries in its ready() the same way.
        nav_register(
            NavEntry("home", _("Home"), "core:home", order=100),
            NavEntry("admin", _("Administration"), "admin:index", order=1200, visible=_is_staff),
            NavEntry("api", _("API docs"), "/api/v1/docs", order=1300),
        )
