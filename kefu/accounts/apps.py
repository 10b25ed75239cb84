from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "kefu.accounts"
    label = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from kefu.accounts.roles import roles_sync

        # Permissions are created after migrations; bind them to the role groups then.
        post_migrate.connect(roles_sync, dispatch_uid="kefu.accounts.roles_sync")
