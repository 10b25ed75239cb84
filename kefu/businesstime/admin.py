from django.contrib import admin

from kefu.businesstime.models import BusinessSchedule, CalendarDay


@admin.register(CalendarDay)
class CalendarDayAdmin(admin.ModelAdmin):
    list_display = ("date", "kind", "name", "source")
    list_filter = ("kind", "source")
    date_hierarchy = "date"

    def save_model(self, request, obj, form, change):
        obj.source = CalendarDay.Source.MANUAL  # kept when the official calendar is re-seeded
        super().save_model(request, obj, form, change)


@admin.register(BusinessSchedule)
class BusinessScheduleAdmin(admin.ModelAdmin):
    list_display = ("name", "periods", "weekdays")
