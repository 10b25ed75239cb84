from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConversationsConfig(AppConfig):
    name = "kefu.conversations"
    label = "conversations"
    verbose_name = _("Consultations")

    def ready(self) -> None:
        from kefu.conversations import signals  # noqa: F401  (connects the receivers)
        from kefu.conversations.api import router
        from kefu.core.api import api_router_add
        from kefu.core.navigation import NavEntry, nav_register

        api_router_add("/conversations", router)
        nav_register(
            NavEntry(
                "inbox",
                _("Inbox"),
                "conversations:inbox",
                order=200,
                permissions=("conversations.view_conversation",),
            ),
            NavEntry(
                "calls",
                _("Calls"),
                "conversation_admin:call_list",
                order=500,
                permissions=("conversations.view_callrecord",),
            ),
        )
