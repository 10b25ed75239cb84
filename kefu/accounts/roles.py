"""The roles of PRODUCT.md §1 as Django groups, and the permissions each one holds."""

from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _


class Role(TextChoices):
    AGENT = "agent", _("Agent")
    COMPLAINT_SPECIALIST = "complaint_specialist", _("Complaint specialist")
    RECORDS_OFFICER = "records_officer", _("Records officer")
    VIP_SPECIALIST = "vip_specialist", _("VIP specialist")
    SUPERVISOR = "supervisor", _("Supervisor")
    MANAGER = "manager", _("Manager")
    DIRECTOR = "director", _("Director")
    STORE_MANAGER = "store_manager", _("Store manager")
    DEPARTMENT_HANDLER = "department_handler", _("Department handler")
    ADMINISTRATOR = "administrator", _("Administrator")


# Reading and working with the archive. Without view_all_customers a user sees only the
# customers of their own store (store managers).
_CUSTOMER_WORK = [
    "customers.view_customer",
    "customers.add_customer",
    "customers.change_customer",
    "customers.view_all_customers",
]
_FULL_CONTACT = ["customers.view_full_contact"]
_ARCHIVE_ADMIN = [
    "customers.import_customer",
    "customers.export_customer",
    "customers.merge_customer",
]
_AUDIT = ["customers.view_customer_audit"]
# Tickets: working them, handing them out, closing complaints, the summaries.
_TICKET_WORK = [
    "tickets.view_ticket",
    "tickets.add_ticket",
    "tickets.change_ticket",
    "tickets.view_all_tickets",
    "followups.view_followup",
    "followups.change_followup",
]
# Consultations: answering chats, recording calls; leads reassign and see every chat.
_CHAT_WORK = [
    "conversations.view_conversation",
    "conversations.reply_conversation",
    "conversations.view_callrecord",
    "conversations.add_callrecord",
]
_CHAT_LEAD = [
    "conversations.assign_conversation",
    "conversations.view_all_conversations",
    "conversations.add_quickreply",
    "conversations.change_quickreply",
    "conversations.delete_quickreply",
]
_CHAT_CONFIG = [
    f"conversations.{action}_{model}"
    for model in ("channel", "inboxqueue")
    for action in ("view", "add", "change", "delete")
]
# Bulk messages and member care: the records officer runs them, managers too.
_CAMPAIGNS = [
    "campaigns.view_campaign",
    "campaigns.add_campaign",
    "campaigns.send_campaign",
    "campaigns.view_segment",
    "campaigns.change_segment",
    "campaigns.view_messagetemplate",
    "campaigns.change_messagetemplate",
    "campaigns.view_outboxmessage",
    "campaigns.add_optout",
    "followups.add_carelist",
    "followups.view_carelist",
    "campaigns.view_optout",
    "campaigns.add_memberbenefit",
    "campaigns.view_memberbenefit",
]
_APPOINTMENTS = [
    "appointments.view_appointment",
    "appointments.add_appointment",
    "appointments.change_appointment",
]
_MEMBER_CARE = [
    "campaigns.add_memberbenefit",
    "campaigns.view_memberbenefit",
    "campaigns.add_optout",
]
_TICKET_LEAD = ["tickets.assign_ticket", "tickets.close_complaint", "tickets.view_ticket_report"]
_TICKET_CONFIG = [
    f"tickets.{action}_{model}"
    for model in (
        "category",
        "rootcause",
        "department",
        "queue",
        "queuemember",
        "slapolicy",
        "ticketconfig",
    )
    for action in ("view", "add", "change", "delete")
]
# Seeing everyone's background jobs (imports, exports): what ran, for whom, how it ended; the
# files stay with whoever started them.
_JOBS_OVERSIGHT = ["jobs.view_all_jobs"]
_SYSTEM = [
    "accounts.view_user",
    "accounts.add_user",
    "accounts.change_user",
    "accounts.view_apitoken",
    "accounts.add_apitoken",
    "accounts.delete_apitoken",
]
# The settings the README places at /admin/ beside staff and the ticket and chat set-up: the
# organisation, the archive's tags and fields, stores' hours, follow-up rules, the calendar.
_SETTINGS = [
    f"{app}.{action}_{model}"
    for app, model in (
        ("accounts", "store"),
        ("accounts", "team"),
        ("customers", "tag"),
        ("customers", "customfielddefinition"),
        ("appointments", "storeschedule"),
        ("appointments", "openinghours"),
        ("followups", "followuprule"),
        ("followups", "followupplan"),
        ("businesstime", "businessschedule"),
        ("businesstime", "calendarday"),
        ("conversations", "agentstatus"),
        ("conversations", "quickreply"),
    )
    for action in ("view", "add", "change", "delete")
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.AGENT: _CUSTOMER_WORK + _TICKET_WORK + _CHAT_WORK + _MEMBER_CARE + _APPOINTMENTS,
    Role.COMPLAINT_SPECIALIST: _CUSTOMER_WORK + _TICKET_WORK + _TICKET_LEAD + _CHAT_WORK,
    Role.RECORDS_OFFICER: _CUSTOMER_WORK
    + _FULL_CONTACT
    + _ARCHIVE_ADMIN
    + ["tickets.view_ticket", "tickets.view_all_tickets", "followups.view_followup"]
    + _CAMPAIGNS,
    Role.VIP_SPECIALIST: _CUSTOMER_WORK
    + _FULL_CONTACT
    + _TICKET_WORK
    + _CHAT_WORK
    + _APPOINTMENTS
    + _MEMBER_CARE,
    Role.SUPERVISOR: _CUSTOMER_WORK
    + _FULL_CONTACT
    + ["customers.merge_customer"]
    + _AUDIT
    + _TICKET_WORK
    + _TICKET_LEAD
    + _CHAT_WORK
    + _CHAT_LEAD
    + _APPOINTMENTS
    + _MEMBER_CARE,
    Role.MANAGER: _CUSTOMER_WORK
    + _FULL_CONTACT
    + _ARCHIVE_ADMIN
    + _AUDIT
    + _TICKET_WORK
    + _TICKET_LEAD
    + _CHAT_WORK
    + _CHAT_LEAD
    + _CAMPAIGNS
    + ["campaigns.approve_campaign"]  # bulk messages above KEFU_CAMPAIGN_APPROVAL_THRESHOLD
    + _APPOINTMENTS
    + ["appointments.record_visit"]
    + _JOBS_OVERSIGHT,
    Role.DIRECTOR: _CUSTOMER_WORK
    + _FULL_CONTACT
    + _ARCHIVE_ADMIN
    + _AUDIT
    + _TICKET_WORK
    + _TICKET_LEAD
    + _CHAT_WORK
    + _CHAT_LEAD
    + _JOBS_OVERSIGHT,
    Role.STORE_MANAGER: [
        "customers.view_customer",
        "customers.add_customer",
        "customers.change_customer",
        *_FULL_CONTACT,
        "tickets.view_ticket",
        "tickets.add_ticket",
        *_APPOINTMENTS,
        "appointments.record_visit",
        *_MEMBER_CARE,
    ],
    Role.DEPARTMENT_HANDLER: ["tickets.view_ticket", "tickets.answer_handoff"],
    Role.ADMINISTRATOR: [
        "customers.view_customer",
        "customers.view_all_customers",
        *_AUDIT,
        *_SYSTEM,
        *_SETTINGS,
        *_TICKET_CONFIG,
        *_CHAT_CONFIG,
        *_JOBS_OVERSIGHT,
        "tickets.view_ticket",
        "tickets.view_all_tickets",
    ],
}


def role_group_name(role: str) -> str:
    return f"role:{role}"


def roles_sync(sender=None, using: str = "default", **kwargs) -> None:
    """Create one group per role and give it exactly the permissions above (idempotent).

    Connected to post_migrate, which fires once per app: only the last app's signal does the
    work, when every app's permissions exist (a test database flush is much faster for it).
    """
    from django.apps import apps
    from django.contrib.auth.models import Group, Permission

    if sender is not None:
        with_models = [config for config in apps.get_app_configs() if config.models_module]
        if with_models and sender.label != with_models[-1].label:
            return
    known = {
        (app_label, codename): pk
        for pk, app_label, codename in Permission.objects.using(using).values_list(
            "pk", "content_type__app_label", "codename"
        )
    }
    for role, perms in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.using(using).get_or_create(name=role_group_name(role))
        wanted = [known[key] for key in (tuple(p.split(".")) for p in perms) if key in known]
        group.permissions.set(wanted)
