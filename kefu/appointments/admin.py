from django.contrib import admin

from kefu.appointments.models import Appointment, OpeningHours, StoreSchedule


@admin.register(StoreSchedule)
class StoreScheduleAdmin(admin.ModelAdmin):
    list_display = ("store", "slot_minutes", "capacity", "is_open_for_booking")


@admin.register(OpeningHours)
class OpeningHoursAdmin(admin.ModelAdmin):
    list_display = ("store", "weekday", "opens_at", "closes_at")
    list_filter = ("store", "weekday")


@admin.register(Appointment)
class AppointmentAdmin(admin.ModelAdmin):
    list_display = ("customer", "store", "starts_at", "status", "purchase_amount")
    list_filter = ("status", "store")
    date_hierarchy = "starts_at"
    raw_id_fields = ("customer", "conversation", "ticket", "booked_by", "recorded_by")
