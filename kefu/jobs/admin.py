from django.contrib import admin

from kefu.jobs.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Read-only: jobs change state only through their runs (services), never by hand."""

    list_display = ("id", "title", "kind", "owner", "status", "done", "total", "created_at")
    list_filter = ("status", "kind")
    search_fields = ("title", "owner__username")
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
