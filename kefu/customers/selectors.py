"""Reads of the customer archive and the one gate for who sees which customer."""

from django.db import connections
from django.db.models import Prefetch, QuerySet
from django.db.models.expressions import RawSQL

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
