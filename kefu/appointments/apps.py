from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AppointmentsConfig(AppConfig):
    name = "kefu.appointments"
    label = "appointments"
    verbose_name = _("Store appointments")

    def ready(self) -> None:
        from kefu.appointments import signals  # noqa: F401  (connects the receivers)
