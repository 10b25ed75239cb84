from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TicketsConfig(AppConfig):
    name = "kefu.tickets"
    label = "tickets"
    verbose_name = _("Tickets and complaints")

    def ready(self) -> None:
        from kefu.core.api import api_router_add
        from kefu.core.navigation import NavEntry, nav_register
        from kefu.tickets import jobs, signals  # noqa: F401  (registers jobs, connects receivers)
        from kefu.tickets.api import router

        api_router_add("/tickets", router)
        nav_register(
            NavEntry(
                "tickets",
                _("Tickets"),
                "tickets:ticket_list",
                order=400,
                permissions=("tickets.view_ticket",),
                start=30,
            ),
            NavEntry(
                "handoffs",
                _("Department queue"),
                "tickets:handoff_list",
                order=410,
                permissions=("tickets.answer_handoff",),
                start=20,
            ),
            NavEntry(
                "reports",
                _("Complaint summaries"),
                "ticket_reports:complaint_summary",
                order=420,
                permissions=("tickets.view_ticket_report",),
            ),
        )
