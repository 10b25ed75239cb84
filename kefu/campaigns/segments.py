"""Audiences: a segment's filters turned into a customer queryset, checked when saved.

Filters (all optional, combined with AND): levels, statuses (lifecycle), tags (names), stores
(ids), birthday_within_days (from today), last_purchase_before_days /
last_purchase_within_days, churn_risk (True: the churn rule of the records officer's list).
"""

import datetime as dt
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from kefu.core.exceptions import ValidationFailed
from kefu.customers.models import Customer
from kefu.customers.selectors import customers_at_churn_risk, customers_with_birthday

FILTER_KEYS = {
    "levels",
    "statuses",
    "tags",
    "stores",
    "birthday_within_days",
    "last_purchase_before_days",
    "last_purchase_within_days",
    "churn_risk",
}


def segment_filters_clean(filters: dict[str, Any]) -> dict[str, Any]:
    """Check a segment's filters; unknown keys and bad values are named."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for key in set(filters) - FILTER_KEYS:
        errors[key] = [_("Unknown filter.")]
    choices = {
        "levels": set(Customer.Level.values),
        "statuses": set(Customer.Status.values),
    }
    for key, allowed in choices.items():
        values = filters.get(key) or []
        if not isinstance(values, list) or not set(values) <= allowed:
            errors[key] = [_("Choose from the list.")]
        elif values:
            cleaned[key] = values
    for key in ("tags",):
        values = filters.get(key) or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            errors[key] = [_("A list of tag names.")]
        elif values:
            cleaned[key] = values
    stores = filters.get("stores") or []
    try:
        if stores:
            cleaned["stores"] = [int(s) for s in stores]
    except (TypeError, ValueError):
        errors["stores"] = [_("Choose from the list.")]
    for key, upper in (
        ("birthday_within_days", 366),
        ("last_purchase_before_days", 3650),
        ("last_purchase_within_days", 3650),
    ):
        value = filters.get(key)
        if value in (None, ""):
            continue
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = -1
        if not 1 <= number <= upper:
            errors[key] = [_("A number of days from 1 to %(upper)s.") % {"upper": upper}]
        else:
            cleaned[key] = number
    if filters.get("churn_risk"):
        cleaned["churn_risk"] = True
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def segment_customers(filters: dict[str, Any], *, today: dt.date) -> QuerySet[Customer]:
    """The live, not closed customers a segment's filters select today."""
    customers = Customer.objects.live().exclude(status=Customer.Status.CLOSED)
    if filters.get("levels"):
        customers = customers.filter(level__in=filters["levels"])
    if filters.get("statuses"):
        customers = customers.filter(status__in=filters["statuses"])
    if filters.get("stores"):
        customers = customers.filter(store_id__in=filters["stores"])
    for tag in filters.get("tags") or []:
        customers = customers.filter(tags__name=tag)
    if filters.get("birthday_within_days"):
        customers = customers_with_birthday(
            customers, start=today, days=filters["birthday_within_days"]
        )
    if filters.get("last_purchase_before_days"):
        limit = today - dt.timedelta(days=filters["last_purchase_before_days"])
        customers = customers.filter(last_purchase_on__lt=limit)
    if filters.get("last_purchase_within_days"):
        limit = today - dt.timedelta(days=filters["last_purchase_within_days"])
        customers = customers.filter(last_purchase_on__gte=limit)
    if filters.get("churn_risk"):
        customers = customers_at_churn_risk(customers, today=today)
    return customers.distinct() if filters.get("tags") else customers
