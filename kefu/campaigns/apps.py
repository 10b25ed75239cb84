from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "kefu.campaigns"
    label = "campaigns"
    verbose_name = _("Campaigns and member care")

    def ready(self) -> None:
        from kefu.campaigns import checks, signals  # noqa: F401  (registers them)
        from kefu.campaigns.api import router
        from kefu.core.api import api_router_add
        from kefu.core.navigation import NavEntry, nav_register

        api_router_add("/campaigns", router)
        nav_register(
            NavEntry(
                "campaigns",
                _("Bulk messages"),
                "campaigns:campaign_list",
                order=700,
                permissions=("campaigns.view_campaign",),
            )
        )
