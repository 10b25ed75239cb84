"""Ticket configuration for administrators: categories, root causes, departments, queues, SLA
policies and settings. Tickets themselves are worked on the ticket pages, not here."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from kefu.customers.models import Customer
from kefu.tickets.models import (
    Category,
    Department,
    Queue,
    QueueMember,
    RootCause,
    SlaPolicy,
    Ticket,
    TicketConfig,
)


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("path", "position", "is_active")
    list_filter = ("is_active", "parent")
    list_editable = ("position", "is_active")
    search_fields = ("name",)
    list_select_related = ("parent__parent",)


@admin.register(RootCause)
class RootCauseAdmin(admin.ModelAdmin):
    list_display = ("name", "position", "is_active")
    list_editable = ("position", "is_active")


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "email",
        "urge_interval_minutes",
        "escalate_supervisor_after",
        "escalate_manager_after",
        "is_active",
    )
    filter_horizontal = ("handlers",)


class QueueMemberInline(admin.TabularInline):
    model = QueueMember
    extra = 1
    autocomplete_fields = ("user",)
    readonly_fields = ("last_assigned_at",)


class QueueForm(forms.ModelForm):
    ticket_types = forms.MultipleChoiceField(
        label=_("ticket types"),
        choices=Ticket.Type.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked means every type."),
    )

    class Meta:
        model = Queue
        fields = (
            "name",
            "team",
            "ticket_types",
            "categories",
            "mode",
            "max_open_per_agent",
            "position",
            "is_active",
        )


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    form = QueueForm
    list_display = ("name", "team", "mode", "max_open_per_agent", "position", "is_active")
    list_editable = ("position", "is_active")
    filter_horizontal = ("categories",)
    inlines = [QueueMemberInline]


class SlaPolicyForm(forms.ModelForm):
    ticket_type = forms.ChoiceField(
        label=_("ticket type"), choices=[("", _("Any")), *Ticket.Type.choices], required=False
    )
    severity = forms.ChoiceField(
        label=_("severity"), choices=[("", _("Any")), *Ticket.Severity.choices], required=False
    )
    customer_level = forms.ChoiceField(
        label=_("customer level"),
        choices=[("", _("Any")), *Customer.Level.choices],
        required=False,
    )

    class Meta:
        model = SlaPolicy
        fields = (
            "name",
            "ticket_type",
            "severity",
            "customer_level",
            "first_response_minutes",
            "next_response_minutes",
            "resolution_minutes",
            "warning_percent",
            "business_hours",
            "position",
            "is_active",
        )


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    form = SlaPolicyForm
    list_display = (
        "name",
        "ticket_type",
        "severity",
        "customer_level",
        "first_response_minutes",
        "next_response_minutes",
        "resolution_minutes",
        "business_hours",
        "position",
        "is_active",
    )
    list_editable = ("position", "is_active")


@admin.register(TicketConfig)
class TicketConfigAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "reopen_window_days",
        "aftercare_after_days",
        "aftercare_count",
        "callback_grace_minutes",
        "status_link_days",
    )

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not TicketConfig.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False
