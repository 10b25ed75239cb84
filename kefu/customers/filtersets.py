"""One filter set for the customer list page and the API."""

import django_filters
from django.utils.translation import gettext_lazy as _

from kefu.accounts.models import Store
from kefu.customers.models import Customer, Tag
from kefu.customers.selectors import customer_search


class CustomerFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(label=_("Search"), method="filter_q")
    status = django_filters.ChoiceFilter(
        label=_("Lifecycle status"), choices=Customer.Status.choices
    )
    level = django_filters.ChoiceFilter(label=_("Level"), choices=Customer.Level.choices)
    source = django_filters.ChoiceFilter(label=_("Source channel"), choices=Customer.Source.choices)
    store = django_filters.ModelChoiceFilter(label=_("Store"), queryset=Store.objects.all())
    tag = django_filters.ModelChoiceFilter(
        label=_("Tag"), queryset=Tag.objects.all(), to_field_name="name", method="filter_tag"
    )

    class Meta:
        model = Customer
        fields = ["q", "status", "level", "source", "store", "tag"]

    def filter_q(self, queryset, name, value):
        return customer_search(queryset, value)

    def filter_tag(self, queryset, name, value):
        return queryset.filter(tags=value)
