from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConversationsConfig(AppConfig):
    name = "kefu.conversations"
    label = "conversations"
    verbose_name = _("Consultations")

    def ready(self) -> None:
        from kefu.conversations import signals  # noqa: F401  (connects the receivers)
