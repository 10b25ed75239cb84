from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "kefu.accounts"
    label = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from kefu.accounts.api import SessionAuth, TokenAuth, router
        from kefu.accounts.roles import roles_sync
        from kefu.core.api import api, api_router_add
        from kefu.core.navigation import NavEntry, nav_register

        # Permissions are created after migrations; bind them to the role groups then.
        post_migrate.connect(roles_sync, dispatch_uid="kefu.accounts.roles_sync")
        # Every API operation's default: an API token, else the page session (with CSRF).
        api.auth = [TokenAuth(), SessionAuth()]
        api_router_add("/accounts", router)
        nav_register(
            NavEntry(
                "tokens",
                _("API tokens"),
                "accounts:token_list",
                order=1100,
                permissions=("accounts.view_apitoken",),
            )
        )
