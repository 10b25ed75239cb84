"""What Kefu's page forms share: length errors that name their field.

Django's own message for a too long value reads, in its zh_Hans catalog, 确保该变量包含不超过 … 字符
("make sure this variable…"): machine Chinese that names no field. Kefu's catalog translates
Django's message again (LOCALE_PATHS come last when Django merges catalogs, so their entries
win), which covers the administration site, and the forms of the pages name the field.
"""

from django import forms
from django.utils.translation import ngettext, ngettext_lazy

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
