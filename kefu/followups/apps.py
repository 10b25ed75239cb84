from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FollowupsConfig(AppConfig):
    name = "kefu.followups"
    label = "followups"
    verbose_name = _("Follow-ups")

    def ready(self) -> None:
        from kefu.core.api import api_router_add
        from kefu.core.navigation import NavEntry, nav_register
        from kefu.followups.api import router

        api_router_add("/followups", router)
        nav_register(
            NavEntry(
                "followups",
                _("Follow-ups"),
                "followups:followup_list",
                order=800,
                permissions=("followups.view_followup",),
            )
        )
