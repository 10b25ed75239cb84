from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BusinessTimeConfig(AppConfig):
    name = "kefu.businesstime"
    label = "businesstime"
    verbose_name = _("Business hours and holidays")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from kefu.businesstime.models import BusinessSchedule, CalendarDay
        from kefu.businesstime.selectors import work_calendar_forget

        for model in (CalendarDay, BusinessSchedule):
            post_save.connect(work_calendar_forget, sender=model, dispatch_uid=f"forget-{model}")
            post_delete.connect(work_calendar_forget, sender=model, dispatch_uid=f"del-{model}")
