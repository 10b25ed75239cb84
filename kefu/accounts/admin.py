from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from kefu.accounts.forms import ThrottledAdminLoginForm
from kefu.accounts.models import ApiToken, Store, Team, User
from kefu.accounts.services import user_set_role
from kefu.audit.services import audit_record

# The administration site's login counts failures with the staff login (accounts.services).
admin.site.login_form = ThrottledAdminLoginForm


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Administrators manage staff here; the role decides the permissions (one group per role)."""

    list_display = ("username", "display_name", "employee_no", "role", "team", "store", "is_active")
    list_filter = ("role", "team", "store", "is_active")
    search_fields = ("username", "display_name", "employee_no")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Staff"), {"fields": ("display_name", "employee_no", "role", "team", "store", "email")}),
        (_("Access"), {"fields": ("is_active", "is_staff", "is_superuser")}),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"fields": ("username", "password1", "password2")}),
        (_("Staff"), {"fields": ("display_name", "employee_no", "role", "team", "store")}),
    )
    readonly_fields = ("last_login", "date_joined")

    def save_model(self, request, obj, form, change):
        role = obj.role
        obj.role = User.objects.filter(pk=obj.pk).values_list("role", flat=True).first() or ""
        super().save_model(request, obj, form, change)
        if role:
            user_set_role(user=obj, role=role, actor=request.user)
        audit_record(
            actor=request.user, action="user.changed" if change else "user.created", target=obj
        )


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    search_fields = ("name",)


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "phone", "is_active")
    search_fields = ("code", "name")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "user", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "key_hash", "user", "created_by", "last_used_at", "revoked_at")

    def has_add_permission(self, request):
        return False  # created on the API tokens page, which shows the key once
