"""Shapes of ticket input on the pages; the domain rules live in services."""

from typing import Any

from django import forms
from django.contrib.auth.models import Permission
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from kefu.accounts.models import Store, User
from kefu.core.forms import FieldNamedErrorsMixin
from kefu.tickets.models import Department, ExternalEscalation, Queue, RootCause, Ticket
from kefu.tickets.selectors import category_choices


def staff_choices() -> list[tuple[int, str]]:
    """Active users who work tickets (tickets.change_ticket), as (id, name) pairs: the assignee
    choices of the pages. One query."""
    perm = Permission.objects.filter(content_type__app_label="tickets", codename="change_ticket")
    users = (
        User.objects.filter(is_active=True)
        .filter(
            Q(groups__permissions__in=perm) | Q(user_permissions__in=perm) | Q(is_superuser=True)
        )
        .distinct()
        .order_by("display_name", "username")
    )
    return [(u.pk, str(u)) for u in users]


def _category_field() -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label=_("Category"),
        choices=lambda: [("", "—"), *category_choices()],
        coerce=int,
        empty_value=None,
        required=False,
    )


def _datetime_field(label, *, required: bool = False, help_text="") -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        required=required,
        help_text=help_text,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


def _text(label, *, rows: int = 3, required: bool = False, max_length: int | None = None):
    return forms.CharField(
        label=label,
        required=required,
        max_length=max_length,
        widget=forms.Textarea(attrs={"rows": rows}),
    )


def tag_names(raw: str | None) -> list[str]:
    return [t.strip() for t in (raw or "").replace("，", ",").split(",") if t.strip()]


class ActionForm(FieldNamedErrorsMixin, forms.Form):
    """A form of the ticket pages. Knows who fills it in and for which ticket, and puts a
    service's {field: [messages]} on the matching fields (the rest above the form, named by the
    field's label)."""

    field_aliases: dict[str, str] = {}

    def __init__(self, *args, user: User | None = None, ticket: Ticket | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user, self.ticket = user, ticket
        self.setup()

    def setup(self) -> None:
        """Adjust fields to the user and the ticket."""

    def add_service_errors(self, errors: dict[str, list[str]], message: str = "") -> None:
        unplaced = False
        for field, messages in errors.items():
            name = self.field_aliases.get(field, field)
            for text in messages:
                if name in self.fields:
                    self.add_error(name, text)
                else:
                    unplaced = True
                    label = _field_label(field)
                    self.add_error(None, f"{label}: {text}" if label else text)
        if message and (unplaced or not errors):
            self.add_error(None, message)


def _field_label(name: str) -> str:
    if name in ("__all__", ""):
        return ""
    try:
        return str(Ticket._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


class TicketFieldsForm(ActionForm):
    """What a ticket is about: shared by the new-ticket form and the edit panel."""

    type = forms.ChoiceField(label=pgettext_lazy("ticket", "Type"), choices=Ticket.Type.choices)
    channel = forms.ChoiceField(
        label=_("Channel"), choices=Ticket.Channel.choices, initial=Ticket.Channel.PHONE
    )
    category = _category_field()
    severity = forms.ChoiceField(
        label=_("Severity"), choices=Ticket.Severity.choices, initial=Ticket.Severity.NORMAL
    )
    subject = forms.CharField(label=_("Subject"), max_length=200)
    description = _text(_("Description"), rows=4)
    store = forms.ModelChoiceField(
        label=_("Store"), queryset=Store.objects.filter(is_active=True), required=False
    )
    order_ref = forms.CharField(label=_("Order reference"), max_length=64, required=False)
    tags = forms.CharField(
        label=_("Tags"), required=False, help_text=_("Separate tags with commas.")
    )

    ticket_fields = (
        "type",
        "channel",
        "category",
        "severity",
        "subject",
        "description",
        "store",
        "order_ref",
    )

    def ticket_data(self) -> dict[str, Any]:
        data = {f: self.cleaned_data.get(f) for f in self.ticket_fields}
        data["description"] = data["description"] or ""
        data["order_ref"] = data["order_ref"] or ""
        data["tags"] = tag_names(self.cleaned_data.get("tags"))
        return data


class TicketCreateForm(TicketFieldsForm):
    customer = forms.IntegerField(required=False, widget=forms.HiddenInput)
    phone = forms.CharField(
        label=_("Or the caller's phone"),
        max_length=40,
        required=False,
        help_text=_("For a caller not in the archive: a prospect is created."),
    )
    caller_name = forms.CharField(label=_("Caller's name"), max_length=100, required=False)
    assignee = forms.TypedChoiceField(
        label=_("Assignee"), coerce=int, empty_value=None, required=False
    )
    callback_due_at = _datetime_field(
        _("Promise a callback by"), help_text=_("Leave empty when no callback was promised.")
    )

    field_order = ["customer", "phone", "caller_name", "type", "channel", "severity", "subject"]

    def setup(self) -> None:
        if self.user is not None and self.user.has_perm("tickets.assign_ticket"):
            self.fields["assignee"].choices = [("", _("Route automatically")), *staff_choices()]
        else:
            del self.fields["assignee"]

    def service_data(self) -> dict[str, Any]:
        data = self.ticket_data()
        for field in ("customer", "phone", "caller_name", "assignee", "callback_due_at"):
            value = self.cleaned_data.get(field)
            if value not in (None, ""):
                data[field] = value
        return data


class TicketEditForm(TicketFieldsForm):
    def setup(self) -> None:
        ticket = self.ticket
        if ticket is None or self.is_bound:
            return
        self.initial = {f: getattr(ticket, f) for f in self.ticket_fields}
        self.initial["category"] = ticket.category_id
        self.initial["store"] = ticket.store_id
        self.initial["tags"] = ", ".join(t.name for t in ticket.tags.all())


class AssignForm(ActionForm):
    assignee = forms.TypedChoiceField(
        label=_("Assignee"), coerce=int, empty_value=None, required=False
    )
    queue = forms.ModelChoiceField(
        label=_("Queue"), queryset=Queue.objects.filter(is_active=True), required=False
    )
    note = forms.CharField(label=_("Note"), max_length=500, required=False)

    def setup(self) -> None:
        user = self.user
        if user is not None and user.has_perm("tickets.assign_ticket"):
            self.fields["assignee"].choices = [("", "—"), *staff_choices()]
        else:
            # Agents take tickets themselves; handing out to others is a supervisor's job.
            self.fields["assignee"].choices = [(user.pk, str(user))] if user else []
            self.fields["assignee"].initial = user.pk if user else None
            del self.fields["queue"]


class EmptyForm(ActionForm):
    """Actions that need nothing but the click (start, resume, close)."""


class ReplyForm(ActionForm):
    body = _text(_("What the customer was told"), rows=3)
    channel = forms.ChoiceField(
        label=_("Channel"), choices=Ticket.Channel.choices, initial=Ticket.Channel.PHONE
    )

    def setup(self) -> None:
        if self.ticket is not None:
            self.fields["channel"].initial = self.ticket.channel


class NoteForm(ActionForm):
    body = _text(_("Internal note"), rows=2)


class WaitCustomerForm(ActionForm):
    reason = forms.CharField(label=_("What we wait for"), max_length=500, required=False)


class HandOffForm(ActionForm):
    department = forms.ModelChoiceField(
        label=_("Department"), queryset=Department.objects.filter(is_active=True), required=False
    )
    instructions = _text(_("What is asked"), rows=3)
    due_at = _datetime_field(_("Answer due"), help_text=_("Empty: one working day from now."))


class ResolutionFieldsMixin(forms.Form):
    resolution_type = forms.ChoiceField(
        label=_("Resolution"),
        choices=[("", "—"), *Ticket.ResolutionType.choices],
        required=False,
    )
    resolution_summary = _text(_("Resolution summary"), rows=3)
    resolution_cost = forms.DecimalField(
        label=_("Cost (yuan)"), max_digits=12, decimal_places=2, min_value=0, required=False
    )
    root_cause = forms.ModelChoiceField(
        label=_("Root cause"), queryset=RootCause.objects.filter(is_active=True), required=False
    )

    def resolution_data(self) -> dict[str, Any]:
        cost = self.cleaned_data.get("resolution_cost")
        root = self.cleaned_data.get("root_cause")
        return {
            "resolution_type": self.cleaned_data.get("resolution_type") or "",
            "resolution_summary": self.cleaned_data.get("resolution_summary") or "",
            "resolution_cost": "" if cost is None else str(cost),
            "root_cause": root.pk if root else None,
        }


class ResolveForm(ResolutionFieldsMixin, ActionForm):
    pass


class HandoffAnswerForm(ResolutionFieldsMixin, ActionForm):
    answer = _text(_("The department's answer"), rows=3)
    resolves = forms.BooleanField(
        label=_("This answer resolves the ticket"),
        required=False,
        help_text=_("Fill in the resolution below; for a complaint every field is needed."),
    )

    field_order = ["answer", "resolves"]

    def resolution(self) -> dict[str, Any] | None:
        if not self.cleaned_data.get("resolves"):
            return None
        data = self.resolution_data()
        data["resolution_summary"] = data["resolution_summary"] or self.cleaned_data["answer"]
        return data


class HandoffCancelForm(ActionForm):
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class AcceptanceForm(ActionForm):
    accepted = forms.TypedChoiceField(
        label=_("The customer"),
        choices=[("yes", _("accepts the resolution")), ("no", _("objects"))],
        coerce=lambda v: v == "yes",
    )
    note = forms.CharField(
        label=_("The customer's words"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class ReopenForm(ActionForm):
    reason = forms.CharField(
        label=_("What the customer objects to"), max_length=2000, required=False
    )


class CallbackForm(ActionForm):
    due_at = _datetime_field(_("Call back by"))
    note = forms.CharField(label=_("Note"), max_length=500, required=False)


class AttachForm(ActionForm):
    file = forms.FileField(label=_("File"))


class ExternalEscalationForm(ActionForm):
    body = forms.ChoiceField(
        label=_("Taken to"), choices=[("", "—"), *ExternalEscalation.Body.choices], required=False
    )
    reported_on = forms.DateField(
        label=_("Reported on"), widget=forms.DateInput(attrs={"type": "date"})
    )
    reference = forms.CharField(label=_("Their reference"), max_length=100, required=False)
    notes = forms.CharField(
        label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
