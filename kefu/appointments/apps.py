from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AppointmentsConfig(AppConfig):
    name = "kefu.appointments"
    label = "appointments"
    verbose_name = _("Store appointments")

    def ready(self) -> None:
        from kefu.appointments import signals  # noqa: F401  (connects the receivers)
        from kefu.appointments.api import router
        from kefu.core.api import api_router_add
        from kefu.core.navigation import NavEntry, nav_register

        api_router_add("/appointments", router)
        nav_register(
            NavEntry(
                "appointments",
                _("Appointments"),
                "appointments:appointment_list",
                order=600,
                permissions=("appointments.view_appointment",),
            )
        )
