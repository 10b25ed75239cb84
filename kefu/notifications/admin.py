from django.contrib import admin

from kefu.notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "recipient", "kind", "title", "read_at", "emailed_at")
    list_filter = ("kind",)
    search_fields = ("title", "recipient__username", "recipient__display_name")
    raw_id_fields = ("recipient",)
    date_hierarchy = "created_at"
    readonly_fields = ("created_at",)
