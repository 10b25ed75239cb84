"""Reads of the customer archive and the one gate for who sees which customer."""

import calendar
import datetime as dt

from django.db import connections
from django.db.models import IntegerField, Prefetch, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import ExtractDay, ExtractMonth

from kefu.core.exceptions import Forbidden
from kefu.customers.exceptions import CustomerNotFound
from kefu.customers.models import ContactPoint, Customer, CustomerEvent
from kefu.customers.search import fts_match, query_terms, term_pattern
from kefu.customers.search_index import FTS_TABLE


def customer_list_visible_to(*, user) -> QuerySet[Customer]:
    """Every customer the user may see: all of them, or their own store's (store managers).

    `None` is the system itself.
    """
    customers = Customer.objects.all()
    if user is None:
        return customers
    if not (user.is_active and user.has_perm("customers.view_customer")):
        raise Forbidden()
    if user.has_perm("customers.view_all_customers"):
        return customers
    if user.store_id is None:
        return customers.none()
    return customers.filter(store_id=user.store_id)


def customer_get_for_user(*, user, customer_id: int, for_update: bool = False) -> Customer:
    """Load one customer on the user's behalf; views and services never query Customer directly."""
    customers = customer_list_visible_to(user=user)
    if for_update:
        customers = customers.select_for_update(of=("self",))
    try:
        return customers.get(pk=customer_id)
    except (Customer.DoesNotExist, ValueError, TypeError):
        raise CustomerNotFound(customer_id) from None


def customer_search(customers: QuerySet[Customer], query: str) -> QuerySet[Customer]:
    """Customers matching every term of the query: name (简/繁) or part of it, pinyin, initials,
    phone or its last four digits, number, card number, e-mail or tag."""
    terms = query_terms(query)
    if not terms:
        return customers
    if connections[customers.db].vendor == "sqlite":
        matching = RawSQL(
            f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s", (fts_match(terms),)
        )
        return customers.filter(id__in=matching)
    for term in terms:
        customers = customers.filter(search_text__contains=term_pattern(term))
    return customers


def customer_list_for_display(customers: QuerySet[Customer]) -> QuerySet[Customer]:
    """What list pages and the API need per row, in a fixed number of queries."""
    return customers.select_related("store").prefetch_related(
        "tags",
        Prefetch(
            "contacts",
            queryset=ContactPoint.objects.filter(is_primary=True),
            to_attr="primary_contacts",
        ),
    )


def customer_get_profile(*, user, customer_id: int) -> Customer:
    """One customer with what the profile page and the API show."""
    customers = (
        customer_list_visible_to(user=user)
        .select_related("store", "merged_into", "created_by")
        .prefetch_related("tags", "contacts", "addresses")
    )
    try:
        return customers.get(pk=customer_id)
    except (Customer.DoesNotExist, ValueError, TypeError):
        raise CustomerNotFound(customer_id) from None


def customer_timeline(*, customer: Customer, limit: int = 100) -> QuerySet[CustomerEvent]:
    return customer.events.select_related("actor")[:limit]


def customer_duplicates_of(*, user, customer: Customer) -> QuerySet[Customer]:
    """Live customers with the same name, a likely duplicate to merge."""
    return (
        customer_list_visible_to(user=user)
        .live()
        .filter(name=customer.name)
        .exclude(pk=customer.pk)[:10]
    )


def birthday_days(start: dt.date, days: int) -> list[tuple[int, int]]:
    """(month, day) pairs whose birthdays fall on start .. start + days - 1.

    A window over New Year's Eve continues in January; in a year without 29 February, people
    born on it are greeted on the 28th.
    """
    pairs: list[tuple[int, int]] = []
    for offset in range(max(days, 1)):
        day = start + dt.timedelta(days=offset)
        pairs.append((day.month, day.day))
        if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
            pairs.append((2, 29))
    return list(dict.fromkeys(pairs))


def celebrated_on(birthday: dt.date, year: int) -> dt.date:
    """The date a birthday is celebrated in `year`."""
    if birthday.month == 2 and birthday.day == 29 and not calendar.isleap(year):
        return dt.date(year, 2, 28)
    return birthday.replace(year=year)


def customer_phone_get(*, customer_id: int) -> ContactPoint | None:
    """The customer's phone to call or text: the primary one first."""
    return (
        ContactPoint.objects.filter(customer_id=customer_id, kind=ContactPoint.Kind.PHONE)
        .order_by("-is_primary", "id")
        .first()
    )


def customers_with_birthday(
    customers: QuerySet[Customer], *, start: dt.date, days: int
) -> QuerySet[Customer]:
    keys = [month * 100 + day for month, day in birthday_days(start, days)]
    return customers.annotate(
        birthday_key=ExtractMonth("birthday", output_field=IntegerField()) * 100
        + ExtractDay("birthday", output_field=IntegerField())
    ).filter(birthday__isnull=False, birthday_key__in=keys)


def customers_at_churn_risk(customers: QuerySet[Customer], *, today: dt.date) -> QuerySet[Customer]:
    """No purchase or contact for longer than the customer's usual interval (the records
    officer's rule; a model replaces it later). `churn_due_on` is kept by customer_touch."""
    return customers.filter(churn_due_on__lt=today)
