from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from kefu.jobs.kinds import job_kinds
from kefu.notifications.selectors import notification_unread_count


def csp_nonce(request):
    """{{ csp_nonce }}: the nonce inline <script> and <style> blocks carry (kefu.core.csp)."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}


def navigation(request):
    """The app shell's modules: only those built and allowed to the user appear."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    items = [{"label": _("Home"), "url": reverse("core:home"), "key": "home"}]
    if user.has_perm("conversations.view_conversation"):
        items.append({"label": _("Inbox"), "url": reverse("conversations:inbox"), "key": "inbox"})
    if user.has_perm("customers.view_customer"):
        items.append(
            {"label": _("Customers"), "url": reverse("customers:customer_list"), "key": "customers"}
        )
        if user.has_perm("customers.import_customer"):
            items.append(
                {"label": _("Import"), "url": reverse("customers:customer_import"), "key": "import"}
            )
    if user.has_perm("tickets.view_ticket"):
        items.append(
            {"label": _("Tickets"), "url": reverse("tickets:ticket_list"), "key": "tickets"}
        )
    if user.has_perm("tickets.answer_handoff"):
        items.append(
            {
                "label": _("Department queue"),
                "url": reverse("tickets:handoff_list"),
                "key": "handoffs",
            }
        )
    if user.has_perm("tickets.view_ticket_report"):
        items.append(
            {
                "label": _("Complaint summaries"),
                "url": reverse("ticket_reports:complaint_summary"),
                "key": "reports",
            }
        )
    if user.has_perm("conversations.view_callrecord"):
        items.append(
            {"label": _("Calls"), "url": reverse("conversation_admin:call_list"), "key": "calls"}
        )
    if user.has_perm("appointments.view_appointment"):
        items.append(
            {
                "label": _("Appointments"),
                "url": reverse("appointments:appointment_list"),
                "key": "appointments",
            }
        )
    if user.has_perm("campaigns.view_campaign"):
        items.append(
            {
                "label": _("Bulk messages"),
                "url": reverse("campaigns:campaign_list"),
                "key": "campaigns",
            }
        )
    if user.has_perm("followups.view_followup"):
        items.append(
            {
                "label": _("Follow-ups"),
                "url": reverse("followups:followup_list"),
                "key": "followups",
            }
        )
    unread_notifications = notification_unread_count(user=user)
    items.append(
        {
            "label": _("Notifications"),
            "url": reverse("notifications:notification_list"),
            "key": "notifications",
        }
    )
    if user.has_perm("jobs.view_all_jobs") or any(
        user.has_perm(kind.permission) for kind in job_kinds()
    ):
        items.append(
            {"label": _("Background jobs"), "url": reverse("jobs:job_list"), "key": "jobs"}
        )
    if user.has_perm("accounts.view_apitoken"):
        items.append(
            {"label": _("API tokens"), "url": reverse("accounts:token_list"), "key": "tokens"}
        )
    if user.is_staff:
        items.append({"label": _("Administration"), "url": reverse("admin:index"), "key": "admin"})
    items.append({"label": _("API docs"), "url": "/api/v1/docs", "key": "api"})
    return {"nav_items": items, "unread_notifications": unread_notifications}


def public_address_warning(request):
    """Tell administrators on every page when links would point at an address that this very
    request shows is not where people reach Kefu (KEFU_BASE_URL unset behind a proxy)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_staff:
        return {}
    from kefu.core.public_address import public_address_problem

    return {"public_address_problem": public_address_problem(request)}
