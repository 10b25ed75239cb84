"""Form fields and filters that hold page and API input to kefu.core.bounds: an id that fits the
database, a day that fits Python's dates. Filter sets and forms of every app use these instead of
Django's plain IntegerField, NumberFilter and DateField for ids and filter dates."""

import django_filters
from django import forms

from kefu.core.bounds import ID_MAX, date_clamp


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
