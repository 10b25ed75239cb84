"""Shapes of customer input on the pages; the domain rules live in services."""

from pathlib import Path

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from kefu.accounts.models import Store
from kefu.core.forms import FieldNamedErrorsMixin
from kefu.customers.contacts import ContactInvalid, contact_normalize
from kefu.customers.models import ContactPoint, Customer, CustomFieldDefinition


class CustomerForm(FieldNamedErrorsMixin, forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    level = forms.ChoiceField(
        label=_("Level"), choices=Customer.Level.choices, initial=Customer.Level.NORMAL
    )
    gender = forms.ChoiceField(label=_("Gender"), choices=Customer.Gender.choices, required=False)
    birthday = forms.DateField(
        label=_("Birthday"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    source = forms.ChoiceField(
        label=_("Source channel"), choices=Customer.Source.choices, initial=Customer.Source.PHONE
    )
    store = forms.ModelChoiceField(
        label=_("Store"), queryset=Store.objects.filter(is_active=True), required=False
    )
    temperament = forms.ChoiceField(
        label=_("Temperament"), choices=Customer.Temperament.choices, required=False
    )
    temperament_note = forms.CharField(label=_("Temperament note"), max_length=500, required=False)
    membership_card_no = forms.CharField(
        label=_("Membership card number"), max_length=40, required=False
    )
    member_since = forms.DateField(
        label=_("Member since"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    tags = forms.CharField(
        label=_("Tags"), required=False, help_text=_("Separate tags with commas.")
    )
    notes = forms.CharField(
        label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    profile_fields = (
        "name",
        "level",
        "gender",
        "birthday",
        "source",
        "store",
        "temperament",
        "temperament_note",
        "membership_card_no",
        "member_since",
        "notes",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.custom_definitions = list(CustomFieldDefinition.objects.all())
        for d in self.custom_definitions:
            name = f"custom_{d.key}"
            if d.field_type == CustomFieldDefinition.FieldType.CHOICE:
                self.fields[name] = forms.ChoiceField(
                    label=d.label, required=False, choices=[("", "—"), *[(c, c) for c in d.choices]]
                )
            elif d.field_type == CustomFieldDefinition.FieldType.DATE:
                self.fields[name] = forms.DateField(
                    label=d.label, required=False, widget=forms.DateInput(attrs={"type": "date"})
                )
            elif d.field_type == CustomFieldDefinition.FieldType.NUMBER:
                self.fields[name] = forms.DecimalField(label=d.label, required=False)
            else:
                self.fields[name] = forms.CharField(label=d.label, required=False, max_length=200)

    def profile_data(self) -> dict:
        data = {f: self.cleaned_data.get(f) for f in self.profile_fields}
        data["gender"] = data["gender"] or ""
        data["temperament"] = data["temperament"] or ""
        data["custom_fields"] = {
            d.key: str(v)
            for d in self.custom_definitions
            if (v := self.cleaned_data.get(f"custom_{d.key}")) not in (None, "")
        }
        return data

    def tag_names(self) -> list[str]:
        raw = self.cleaned_data.get("tags") or ""
        return [t.strip() for t in raw.replace("，", ",").split(",") if t.strip()]

    def add_service_errors(self, errors: dict) -> None:
        """Put a service's {field: [messages]} on the matching form fields."""
        for field, messages in errors.items():
            name = field
            if field.startswith("custom_fields."):
                name = "custom_" + field.split(".", 1)[1]
            for message in messages:
                self.add_error(name if name in self.fields else None, message)


class CustomerCreateForm(CustomerForm):
    phone = forms.CharField(label=_("Mobile phone"), max_length=40, required=False)
    phone2 = forms.CharField(label=_("Other phone"), max_length=40, required=False)
    email = forms.CharField(label=_("E-mail"), max_length=200, required=False)
    qq = forms.CharField(label=_("QQ"), max_length=20, required=False)
    wechat_openid = forms.CharField(label=_("WeChat openid"), max_length=64, required=False)
    province = forms.CharField(label=_("Province"), max_length=50, required=False)
    city = forms.CharField(label=_("City"), max_length=50, required=False)
    district = forms.CharField(label=_("District"), max_length=50, required=False)
    address = forms.CharField(label=_("Street address"), max_length=200, required=False)

    field_order = ["name", "phone", "phone2", "email", "qq", "wechat_openid"]

    contact_fields = {
        "phone": ContactPoint.Kind.PHONE,
        "phone2": ContactPoint.Kind.PHONE,
        "email": ContactPoint.Kind.EMAIL,
        "qq": ContactPoint.Kind.QQ,
        "wechat_openid": ContactPoint.Kind.WECHAT_OPENID,
    }

    def clean(self):
        # Format errors of contacts show up together with the other field errors; whether a
        # contact belongs to someone else is the service's rule.
        cleaned = super().clean()
        for field, kind in self.contact_fields.items():
            if value := cleaned.get(field):
                try:
                    contact_normalize(kind, value)
                except ContactInvalid as exc:
                    self.add_error(field, str(exc))
        return cleaned

    def contacts(self) -> list[dict]:
        return [
            {
                "kind": kind,
                "value": self.cleaned_data[field],
                "field": field,
                "is_primary": field != "phone2",
            }
            for field, kind in self.contact_fields.items()
            if self.cleaned_data.get(field)
        ]

    def addresses(self) -> list[dict]:
        if not self.cleaned_data.get("address"):
            return []
        return [
            {
                "province": self.cleaned_data.get("province", ""),
                "city": self.cleaned_data.get("city", ""),
                "district": self.cleaned_data.get("district", ""),
                "detail": self.cleaned_data["address"],
                "is_default": True,
            }
        ]

    def add_service_errors(self, errors: dict) -> None:
        remapped = {("address" if k.startswith("addresses.") else k): v for k, v in errors.items()}
        super().add_service_errors(remapped)


class LifecycleForm(FieldNamedErrorsMixin, forms.Form):
    status = forms.ChoiceField(label=_("New status"), choices=Customer.Status.choices)
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class MergeForm(FieldNamedErrorsMixin, forms.Form):
    duplicate_number = forms.CharField(label=_("Number of the duplicate record"), max_length=20)
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class ContactAddForm(FieldNamedErrorsMixin, forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=ContactPoint.Kind.choices)
    value = forms.CharField(label=_("Value"), max_length=200)
    label = forms.CharField(label=_("Label"), max_length=50, required=False)


IMPORT_SUFFIXES = (".xlsx", ".csv")


class CustomerImportForm(forms.Form):
    file = forms.FileField(
        label=_("Spreadsheet"),
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(IMPORT_SUFFIXES)}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if Path(upload.name).suffix.lower() not in IMPORT_SUFFIXES:
            raise forms.ValidationError(_("Upload an .xlsx or .csv file."))
        if upload.size > settings.IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(size)s MB; split it into smaller files.")
                % {"size": settings.IMPORT_MAX_BYTES // (1024 * 1024)}
            )
        return upload
