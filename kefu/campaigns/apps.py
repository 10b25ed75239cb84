from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "kefu.campaigns"
    label = "campaigns"
    verbose_name = _("Campaigns and member care")

    def ready(self) -> None:
        from kefu.campaigns import checks, signals  # noqa: F401  (registers them)
