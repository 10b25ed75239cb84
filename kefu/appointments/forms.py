"""Shapes of appointment input on the pages; the domain rules live in the services."""

import datetime as dt
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from kefu.accounts.models import Store
from kefu.core.forms import FieldNamedErrorsMixin, FilterDateField


def _date_field(label, *, required: bool = True) -> forms.DateField:
    return FilterDateField(
        label=label,
        required=required,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )


class ServiceErrorsForm(FieldNamedErrorsMixin, forms.Form):
    """Puts a service's {field: [messages]} on the matching fields; the rest above the form."""

    def add_service_errors(self, errors: dict[str, list[str]], message: str = "") -> None:
        unplaced = not errors
        for field, messages in errors.items():
            for text in messages:
                if field in self.fields:
                    self.add_error(field, text)
                else:
                    unplaced = True
                    self.add_error(None, text)
        if message and unplaced and not self.non_field_errors():
            self.add_error(None, message)


class AppointmentBookForm(ServiceErrorsForm):
    """Book one customer into a slot of a store; where the booking came from rides along."""

    customer = forms.IntegerField(
        widget=forms.HiddenInput, error_messages={"required": _("Choose a customer.")}
    )
    conversation = forms.IntegerField(widget=forms.HiddenInput, required=False)
    ticket = forms.IntegerField(widget=forms.HiddenInput, required=False)
    next = forms.CharField(widget=forms.HiddenInput, required=False, max_length=500)
    store = forms.ModelChoiceField(
        label=_("Store"),
        queryset=Store.objects.none(),
        error_messages={"required": _("Choose a store.")},
    )
    day = _date_field(_("Day"))
    starts_at = forms.DateTimeField(
        label=_("Time"),
        error_messages={"required": _("Choose a time."), "invalid": _("Choose a time.")},
    )
    purpose = forms.CharField(
        label=pgettext_lazy("appointment", "Purpose"),
        max_length=200,
        required=False,
        widget=forms.TextInput(
            attrs={
                "placeholder": _(
                    "Medication advice, blood pressure check, collecting a prescription..."
                )
            }
        ),
    )

    def __init__(self, *args: Any, stores=None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["store"].queryset = (
            stores if stores is not None else Store.objects.filter(is_active=True)
        )

    def service_data(self, *, source: str) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "customer": data["customer"],
            "store": data["store"].pk,
            "starts_at": data["starts_at"],
            "source": source,
            "conversation": data.get("conversation"),
            "ticket": data.get("ticket"),
            "purpose": data.get("purpose", ""),
        }


class AppointmentDayForm(forms.Form):
    """Which store and day the day list shows."""

    store = forms.ModelChoiceField(label=_("Store"), queryset=Store.objects.none(), required=False)
    day = _date_field(_("Day"), required=False)

    def __init__(self, *args: Any, stores=None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if stores is not None:
            self.fields["store"].queryset = stores


class AppointmentVisitForm(ServiceErrorsForm):
    """How the visit went: the customer came (and what it led to) or did not."""

    arrived = forms.TypedChoiceField(
        choices=[("1", _("Arrived")), ("0", _("No-show"))],
        coerce=lambda value: value == "1",
        widget=forms.HiddenInput,
        error_messages={"required": _("Say whether the customer came.")},
    )
    note = forms.CharField(
        label=_("Visit note"),
        max_length=2000,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("What came of the visit")}),
    )
    purchase_amount = forms.DecimalField(
        label=_("Purchase amount"),
        min_value=0,
        max_digits=12,
        decimal_places=2,
        required=False,
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0"}),
    )
    order_no = forms.CharField(label=_("Order number"), max_length=50, required=False)


class AppointmentCancelForm(ServiceErrorsForm):
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class FunnelForm(forms.Form):
    """The days of the funnel (both included, a year at most) and, optionally, one store."""

    start = _date_field(_("From"))
    end = _date_field(_("Until"))
    store = forms.ModelChoiceField(label=_("Store"), queryset=Store.objects.none(), required=False)

    MAX_DAYS = 366

    def __init__(self, *args: Any, stores=None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if stores is not None:
            self.fields["store"].queryset = stores

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                self.add_error("end", _("The end is before the start."))
            elif end - start > dt.timedelta(days=self.MAX_DAYS):
                self.add_error("end", _("A year at most."))
        return data
