"""Shapes of the inbox's input; the consultation rules (empty replies, who may transfer, what
a record needs) live in the services, which name the field they refuse."""

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Q
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from kefu.accounts.models import User
from kefu.conversations.models import AgentStatus, Conversation, InboxQueue
from kefu.core.attachments import attachment_extensions
from kefu.core.forms import FieldNamedErrorsMixin
from kefu.tickets.forms import TicketFieldsForm
from kefu.tickets.models import Ticket


def agent_choices() -> list[tuple[int, str]]:
    """Active users who answer chats (conversations.reply_conversation) as (id, label) pairs,
    the label saying who is online. Two queries."""
    perm = Permission.objects.filter(
        content_type__app_label="conversations", codename="reply_conversation"
    )
    users = (
        User.objects.filter(is_active=True)
        .filter(
            Q(groups__permissions__in=perm) | Q(user_permissions__in=perm) | Q(is_superuser=True)
        )
        .distinct()
        .select_related("agent_status")
        .order_by("display_name", "username")
    )
    labels = dict(AgentStatus.Status.choices)
    choices = []
    for user in users:
        status = getattr(user, "agent_status", None)
        state = labels[status.status] if status else labels[AgentStatus.Status.OFFLINE]
        choices.append((user.pk, f"{user} · {state}"))
    return choices


class InboxForm(FieldNamedErrorsMixin, forms.Form):
    """A form of the inbox pages: puts a service's {field: [messages]} on the matching fields,
    the rest above the form named by the field."""

    field_aliases: dict[str, str] = {}

    def add_service_errors(self, errors: dict[str, list[str]], message: Any = "") -> None:
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
            self.add_error(None, str(message))


def _field_label(name: str) -> str:
    if name in ("__all__", ""):
        return ""
    try:
        return str(Conversation._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


class AgentStatusForm(InboxForm):
    status = forms.ChoiceField(label=_("Status"), choices=AgentStatus.Status.choices)
    capacity = forms.IntegerField(
        label=_("Chats at once"),
        required=False,
        widget=forms.NumberInput(attrs={"min": 1, "max": 50, "size": 3}),
    )


class ReplyForm(InboxForm):
    """The agent's answer: text, a file, or both."""

    body = forms.CharField(
        label=_("Reply"),
        required=False,
        strip=False,
        widget=forms.Textarea(
            attrs={
                "rows": 3,
                "id": "reply-body",
                "autocomplete": "off",
                "placeholder": _(
                    "Type a reply; Enter sends, Shift+Enter starts a new line, / "
                    "finds a quick reply."
                ),
            }
        ),
    )
    attachment = forms.FileField(
        label=_("Attachment"),
        required=False,
        widget=forms.ClearableFileInput(
            attrs={"id": "reply-attachment", "accept": ",".join(attachment_extensions())}
        ),
    )

    def clean_attachment(self):
        upload = self.cleaned_data.get("attachment")
        limit = settings.ATTACHMENT_MAX_BYTES
        if upload and upload.size > limit:
            raise forms.ValidationError(
                _("The file is larger than %(limit)s.") % {"limit": filesizeformat(limit)}
            )
        return upload

    def attachment_content(self) -> tuple[str, bytes] | None:
        upload = self.cleaned_data.get("attachment")
        if not upload:
            return None
        return upload.name, upload.read()


class NoteForm(InboxForm):
    body = forms.CharField(
        label=_("Internal note"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "id": "note-body"}),
    )


class TransferForm(InboxForm):
    agent = forms.TypedChoiceField(label=_("Agent"), coerce=int, empty_value=None, required=False)
    queue = forms.ModelChoiceField(
        label=_("Or a queue"), queryset=InboxQueue.objects.all(), required=False
    )
    note = forms.CharField(label=_("Note for the next agent"), max_length=500, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].choices = [("", "—"), *agent_choices()]


class CloseForm(InboxForm):
    """The consultation record (客户咨询即时记录表) filled in when the chat ends."""

    topic = forms.CharField(
        label=pgettext_lazy("consultation", "Topic"),
        required=False,
        help_text=_("What the customer asked about."),
        widget=forms.TextInput(attrs={"maxlength": 200}),
    )
    outcome = forms.ChoiceField(
        label=pgettext_lazy("consultation", "Outcome"),
        choices=[("", "—"), *Conversation.Outcome.choices],
        required=False,
    )
    note = forms.CharField(
        label=pgettext_lazy("consultation", "Record"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def wants_ticket(self) -> bool:
        return self.is_valid() and self.cleaned_data.get("outcome") == Conversation.Outcome.TICKET


class ConversationTicketForm(TicketFieldsForm):
    """A ticket opened from a conversation: its customer and channel come from the chat, the
    transcript is the description unless one is written."""

    ticket_fields = ("type", "category", "severity", "subject", "description", "order_ref")

    def setup(self) -> None:
        for name in ("channel", "store", "tags"):
            del self.fields[name]
        self.fields["type"].initial = Ticket.Type.COMPLAINT
        self.fields["description"].help_text = _("Empty: the chat transcript.")
        if self.ticket_subject_optional:
            self.fields["subject"].required = False
            self.fields["subject"].help_text = _("Empty: the topic of the record.")

    ticket_subject_optional = False

    def ticket_data(self) -> dict[str, Any]:
        data = {f: self.cleaned_data.get(f) for f in self.ticket_fields}
        data["description"] = data["description"] or ""
        data["order_ref"] = data["order_ref"] or ""
        return {k: v for k, v in data.items() if v not in (None, "") or k == "description"}


class CloseTicketForm(ConversationTicketForm):
    """The ticket fields of the close form, used when the outcome is a complaint ticket."""

    ticket_subject_optional = True
