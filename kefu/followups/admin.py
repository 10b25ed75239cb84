from django.contrib import admin

from kefu.followups.models import FollowUp


@admin.register(FollowUp)
class FollowUpAdmin(admin.ModelAdmin):
    list_display = ("customer", "purpose", "due_at", "assignee", "status", "outcome")
    list_filter = ("purpose", "status", "outcome")
    date_hierarchy = "due_at"
    raw_id_fields = ("customer", "ticket", "assignee", "completed_by", "created_by")
