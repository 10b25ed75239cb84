from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TicketsConfig(AppConfig):
    name = "kefu.tickets"
    label = "tickets"
    verbose_name = _("Tickets and complaints")

    def ready(self) -> None:
        from kefu.tickets import jobs, signals  # noqa: F401  (registers jobs, connects receivers)
