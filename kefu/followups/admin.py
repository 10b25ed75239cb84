from django.contrib import admin

from kefu.followups.models import CareList, FollowUp, FollowUpPlan, FollowUpRule


@admin.register(FollowUp)
class FollowUpAdmin(admin.ModelAdmin):
    list_display = ("customer", "purpose", "due_at", "assignee", "status", "outcome")
    list_filter = ("purpose", "status", "outcome")
    date_hierarchy = "due_at"
    raw_id_fields = ("customer", "ticket", "assignee", "completed_by", "created_by", "previous")


@admin.register(FollowUpRule)
class FollowUpRuleAdmin(admin.ModelAdmin):
    list_display = (
        "purpose",
        "effective_outcomes",
        "retry_after_hours",
        "max_attempts",
        "next_purpose",
        "next_after_days",
    )


@admin.register(FollowUpPlan)
class FollowUpPlanAdmin(admin.ModelAdmin):
    list_display = ("name", "level", "purpose", "interval_days", "assignee_role", "is_active")
    list_filter = ("is_active", "level")


@admin.register(CareList)
class CareListAdmin(admin.ModelAdmin):
    list_display = ("kind", "built_at", "built_by", "days", "customers", "handed_over")
    list_filter = ("kind",)
