"""Shapes of bulk-message and member-care input on the pages; the rules live in services."""

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from kefu.accounts.models import Store
from kefu.campaigns.models import (
    CampaignRecipient,
    Gateway,
    MemberBenefit,
    MessageTemplate,
    OptOut,
    Segment,
)
from kefu.core.forms import FieldNamedErrorsMixin
from kefu.customers.contacts import ContactInvalid, contact_normalize
from kefu.customers.models import Customer


class ServiceForm(FieldNamedErrorsMixin, forms.Form):
    """A form that puts a service's {field: [messages]} on the matching fields, the rest above
    the form (or the service's message when it names no field)."""

    def add_service_errors(self, errors: dict[str, list[str]], message: str = "") -> None:
        if not errors and message:
            self.add_error(None, message)
        for field, messages in errors.items():
            target = field if field in self.fields else None
            for text in messages:
                self.add_error(target, text)


def _text(label, *, rows: int = 3, required: bool = False, help_text="") -> forms.CharField:
    return forms.CharField(
        label=label, required=required, help_text=help_text, widget=forms.Textarea({"rows": rows})
    )


def _days(label) -> forms.IntegerField:
    return forms.IntegerField(
        label=label, required=False, widget=forms.NumberInput({"min": 1, "inputmode": "numeric"})
    )


def tag_names(raw: str | None) -> list[str]:
    return [t.strip() for t in (raw or "").replace("，", ",").split(",") if t.strip()]


class SegmentForm(ServiceForm):
    """A saved audience: its name and the filters of segments.segment_customers."""

    name = forms.CharField(label=pgettext_lazy("title", "Name"), max_length=100, required=False)
    levels = forms.MultipleChoiceField(
        label=_("Levels"),
        choices=Customer.Level.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    statuses = forms.MultipleChoiceField(
        label=_("Lifecycle statuses"),
        choices=[c for c in Customer.Status.choices if c[0] != Customer.Status.CLOSED],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    stores = forms.ModelMultipleChoiceField(
        label=_("Stores"),
        queryset=Store.objects.filter(is_active=True).order_by("code"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    tags = forms.CharField(
        label=_("Tags"),
        required=False,
        help_text=_("Customers with every one of these tags; separate them with commas."),
    )
    birthday_within_days = _days(_("Birthday within the next days"))
    last_purchase_within_days = _days(_("Bought within the last days"))
    last_purchase_before_days = _days(_("No purchase for more than days"))
    churn_risk = forms.BooleanField(label=_("At churn risk"), required=False)

    filter_fields = (
        "levels",
        "statuses",
        "stores",
        "tags",
        "birthday_within_days",
        "last_purchase_within_days",
        "last_purchase_before_days",
        "churn_risk",
    )

    @classmethod
    def initial_for(cls, segment: Segment) -> dict[str, Any]:
        filters = segment.filters or {}
        initial: dict[str, Any] = {"name": segment.name}
        for key in cls.filter_fields:
            if key in filters:
                initial[key] = filters[key]
        initial["tags"] = ", ".join(filters.get("tags") or [])
        return initial

    def filters(self) -> dict[str, Any]:
        """The filters as segments.segment_filters_clean takes them (empty ones left out)."""
        data = self.cleaned_data
        filters: dict[str, Any] = {}
        for key in ("levels", "statuses"):
            if data.get(key):
                filters[key] = list(data[key])
        if data.get("stores"):
            filters["stores"] = [s.pk for s in data["stores"]]
        if tags := tag_names(data.get("tags")):
            filters["tags"] = tags
        for key in (
            "birthday_within_days",
            "last_purchase_within_days",
            "last_purchase_before_days",
        ):
            if data.get(key) is not None:
                filters[key] = data[key]
        if data.get("churn_risk"):
            filters["churn_risk"] = True
        return filters


class TemplateForm(ServiceForm):
    name = forms.CharField(label=pgettext_lazy("title", "Name"), max_length=100, required=False)
    gateway = forms.ChoiceField(label=_("Sent by"), choices=Gateway.choices)
    purpose = forms.ChoiceField(
        label=pgettext_lazy("message template", "Purpose"),
        choices=MessageTemplate.Purpose.choices,
        initial=MessageTemplate.Purpose.OTHER,
        help_text=_(
            "Reminders, appointment reminders and verification codes are transactional: sent at"
            " any hour, without the opt-out footer. Every other purpose is marketing."
        ),
    )
    subject = forms.CharField(
        label=_("Subject"), max_length=200, required=False, help_text=_("E-mail only.")
    )
    body = _text(
        pgettext_lazy("message body", "Text"),
        rows=5,
        help_text=MessageTemplate._meta.get_field("body").help_text,
    )
    gift = _text(
        _("Gift-claim instructions"),
        help_text=_("Birthday and holiday greetings: how to claim the gift, filled into {gift}."),
    )
    wechat_template_id = forms.CharField(
        label=_("WeChat template id"), max_length=100, required=False
    )
    is_active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    @classmethod
    def initial_for(cls, template: MessageTemplate) -> dict[str, Any]:
        return {name: getattr(template, name) for name in cls.base_fields}


class TestSendForm(FieldNamedErrorsMixin, forms.Form):
    """Where a test message goes: the user's own phone or e-mail (or WeChat openid)."""

    to = forms.CharField(label=_("Send to"), max_length=200, required=False)

    CONTACT_KIND = {Gateway.SMS: "phone", Gateway.EMAIL: "email", Gateway.WECHAT: "wechat_openid"}

    def __init__(self, *args, gateway: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.gateway = gateway
        self.fields["to"].help_text = {
            Gateway.SMS: _("Your mobile phone number."),
            Gateway.EMAIL: _("Your e-mail address."),
            Gateway.WECHAT: _("Your WeChat openid."),
        }.get(gateway, "")

    def clean_to(self) -> str:
        value = (self.cleaned_data.get("to") or "").strip()
        if not value:
            raise forms.ValidationError(_("Where should the test go?"))
        try:
            return contact_normalize(self.CONTACT_KIND[self.gateway], value)
        except ContactInvalid as exc:
            raise forms.ValidationError(str(exc)) from None


class CampaignForm(ServiceForm):
    name = forms.CharField(label=pgettext_lazy("title", "Name"), max_length=200, required=False)
    template = forms.ModelChoiceField(
        label=_("Template"), queryset=MessageTemplate.objects.filter(is_active=True)
    )
    segment = forms.ModelChoiceField(label=_("Segment"), queryset=Segment.objects.all())
    scheduled_at = forms.DateTimeField(
        label=_("Send at"),
        required=False,
        help_text=_("Leave empty to send as soon as you press Send."),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def data_for_service(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "template": data["template"].pk,
            "segment": data["segment"].pk,
            "scheduled_at": data.get("scheduled_at"),
        }


class CampaignLaunchForm(forms.Form):
    """The confirmation before sending: the recipients the page showed, and a tick."""

    confirm_count = forms.IntegerField(min_value=0, max_value=100_000_000, widget=forms.HiddenInput)
    confirmed = forms.BooleanField(
        label=_("I have checked the message and the number of recipients."),
        error_messages={"required": _("Tick the box to confirm the recipients and the message.")},
    )


class CampaignRefuseForm(forms.Form):
    reason = forms.CharField(
        label=_("Why"),
        max_length=500,
        widget=forms.Textarea({"rows": 2}),
        error_messages={"required": _("Say why, for whoever launched it.")},
    )


class RecipientFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        choices=[("", _("Every status")), *CampaignRecipient.Status.choices],
        required=False,
    )


class OutboxFilterForm(forms.Form):
    gateway = forms.ChoiceField(
        label=_("Sent by"),
        choices=[("", _("Every gateway")), *Gateway.choices],
        required=False,
    )


class OptOutForm(ServiceForm):
    customer = forms.IntegerField(
        label=pgettext_lazy("person", "Customer"), widget=forms.HiddenInput
    )
    channel = forms.ChoiceField(
        label=_("Channel"), choices=OptOut.Channel.choices, initial=OptOut.Channel.ALL
    )
    source = forms.CharField(
        label=_("How"),
        max_length=100,
        required=False,
        help_text=_("Reply TD, unsubscribe link, call..."),
    )


class OptOutFilterForm(forms.Form):
    channel = forms.ChoiceField(
        label=_("Channel"),
        choices=[("", _("Every channel")), *OptOut.Channel.choices],
        required=False,
    )


class BenefitForm(ServiceForm):
    customer = forms.IntegerField(
        label=pgettext_lazy("person", "Customer"), widget=forms.HiddenInput
    )
    kind = forms.ChoiceField(label=_("Kind"), choices=MemberBenefit.Kind.choices)
    occasion = forms.CharField(
        label=_("Occasion"),
        max_length=50,
        required=False,
        help_text=_("2026, 2026 中秋节..."),
    )
    description = forms.CharField(label=_("What was given"), max_length=200, required=False)


class BenefitFilterForm(forms.Form):
    occasion = forms.CharField(
        label=_("Occasion"),
        max_length=50,
        required=False,
        widget=forms.TextInput({"placeholder": _("Occasion: 2026, 中秋节...")}),
    )
    kind = forms.ChoiceField(
        label=_("Kind"),
        choices=[("", _("Every kind")), *MemberBenefit.Kind.choices],
        required=False,
    )
