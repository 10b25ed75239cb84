from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BusinessTimeConfig(AppConfig):
    name = "kefu.businesstime"
    label = "businesstime"
    verbose_name = _("Business hours and holidays")
