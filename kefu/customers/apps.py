from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CustomersConfig(AppConfig):
    name = "kefu.customers"
    label = "customers"
    verbose_name = _("Customer archive")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from kefu.core.api import api_router_add
        from kefu.core.navigation import NavEntry, nav_register
        from kefu.customers import jobs  # noqa: F401  (registers the import and export jobs)
        from kefu.customers.api import router
        from kefu.customers.search_index import search_index_ensure_after_migrate

        # Table rebuilds by later migrations drop the search triggers: put them back.
        post_migrate.connect(search_index_ensure_after_migrate, sender=self)
        api_router_add("/customers", router)
        nav_register(
            NavEntry(
                "customers",
                _("Customers"),
                "customers:customer_list",
                order=300,
                permissions=("customers.view_customer",),
                start=10,
            ),
            NavEntry(
                "import",
                _("Import"),
                "customers:customer_import",
                order=310,
                permissions=("customers.view_customer", "customers.import_customer"),
            ),
        )
