"""What Kefu's forms share: fields and filters that hold page and API input to kefu.core.bounds
(an id that fits the database, a day that fits Python's dates), and length errors that name their
field.

Filter sets and forms of every app use IdField/IdFilter/FilterDateField instead of Django's plain
IntegerField, NumberFilter and DateField for ids and filter dates.

Django's own message for a too long value reads, in its zh_Hans catalog, 确保该变量包含不超过 … 字符
("make sure this variable…"): machine Chinese that names no field. Kefu's catalog translates
Django's message again (LOCALE_PATHS come last when Django merges catalogs, so their entries
win), which covers the administration site, and the forms of the pages name the field.
"""

import django_filters
from django import forms
from django.utils.translation import ngettext, ngettext_lazy

from kefu.core.bounds import ID_MAX, date_clamp

# Django's messages (django/core/validators.py), listed so that makemessages keeps their
# translation in Kefu's catalog.
DJANGO_LENGTH_MESSAGES = (
    ngettext_lazy(
        "Ensure this value has at most %(limit_value)d character (it has %(show_value)d).",
        "Ensure this value has at most %(limit_value)d characters (it has %(show_value)d).",
        "limit_value",
    ),
    ngettext_lazy(
        "Ensure this value has at least %(limit_value)d character (it has %(show_value)d).",
        "Ensure this value has at least %(limit_value)d characters (it has %(show_value)d).",
        "limit_value",
    ),
)


def length_errors_name_fields(form: forms.BaseForm) -> None:
    """Give each text field of `form` length errors that say which field is too long or short
    ("名称：最多 100 个字符，已输入 120 个。"), in the language active now."""
    for field in form.fields.values():
        if not isinstance(field, forms.CharField) or not field.label:
            continue
        name = {"field": field.label}
        if field.max_length is not None:
            field.error_messages["max_length"] = (
                ngettext(
                    "%(field)s: at most %%(limit_value)d character (%%(show_value)d entered).",
                    "%(field)s: at most %%(limit_value)d characters (%%(show_value)d entered).",
                    field.max_length,
                )
                % name
            )
        if field.min_length is not None:
            field.error_messages["min_length"] = (
                ngettext(
                    "%(field)s: at least %%(limit_value)d character (%%(show_value)d entered).",
                    "%(field)s: at least %%(limit_value)d characters (%%(show_value)d entered).",
                    field.min_length,
                )
                % name
            )


class FieldNamedErrorsMixin:
    """Form mixin: length errors name their field (length_errors_name_fields), also of the
    fields a form adds in its own __init__."""

    def full_clean(self) -> None:
        length_errors_name_fields(self)
        super().full_clean()


class IdField(forms.IntegerField):
    """The id of a record: a whole number from 1 to ID_MAX."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(**kwargs)


class FilterDateField(forms.DateField):
    """A day to filter on, clamped to DATE_MIN … DATE_MAX (0001-01-01 means "from the start")."""

    def to_python(self, value):
        return date_clamp(super().to_python(value))


class IdFilter(django_filters.NumberFilter):
    """Filter by a related record's id; an id out of bounds is a form error, not a SQL error."""

    field_class = IdField


class FilterDateFilter(django_filters.DateFilter):
    field_class = FilterDateField
