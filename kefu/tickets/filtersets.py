"""One filter set for the ticket list page (and the API): tabs, fields, SLA state and search."""

import datetime as dt
import re

import django_filters
from django import forms
from django.core.validators import RegexValidator
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from kefu.accounts.models import Store
from kefu.core.bounds import ID_PATTERN
from kefu.core.forms import FilterDateFilter, IdFilter
from kefu.customers.models import Customer
from kefu.customers.selectors import customer_search
from kefu.tickets.forms import staff_choices
from kefu.tickets.models import Queue, Ticket
from kefu.tickets.selectors import category_choices, category_descendant_ids

TAB_MINE, TAB_UNASSIGNED, TAB_BREACHING, TAB_OPEN, TAB_WATCHED, TAB_ALL = (
    "mine",
    "unassigned",
    "breaching",
    "open",
    "watched",
    "all",
)
TABS = [
    (TAB_MINE, _("My open tickets")),
    (TAB_UNASSIGNED, _("Unassigned")),
    (TAB_BREACHING, _("Breaching SLA")),
    (TAB_OPEN, _("All open")),
    (TAB_WATCHED, _("Watched")),
    (TAB_ALL, _("All tickets")),
]
ASSIGNEE_MINE, ASSIGNEE_NONE = "mine", "none"
SLA_BREACHING = "breaching"
_NUMBER_RE = re.compile(r"^GD\d{8}$", re.IGNORECASE)
# Customers matching a search term, at most, looked up before the tickets (see filter_q).
CUSTOMER_IDS_MAX = 500


def _assignee_choices() -> list[tuple[str, str]]:
    return [
        (ASSIGNEE_MINE, str(_("Assigned to me"))),
        (ASSIGNEE_NONE, str(_("Unassigned"))),
        *[(str(pk), name) for pk, name in staff_choices()],
    ]


def _category_choices() -> list[tuple[str, str]]:
    return [(str(pk), path) for pk, path in category_choices()]


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _select(label) -> forms.Select:
    return forms.Select(attrs={"aria-label": label})


class TicketFilterSet(django_filters.FilterSet):
    """Filters of the ticket list. Pass `request` (for "mine") and `now` (for the SLA state)."""

    tab = django_filters.ChoiceFilter(
        label=pgettext_lazy("ticket list", "View"),
        choices=TABS,
        method="filter_tab",
        empty_label=None,
    )
    q = django_filters.CharFilter(label=_("Search"), method="filter_q")
    status = django_filters.ChoiceFilter(
        label=_("Status"),
        choices=Ticket.Status.choices,
        empty_label=_("Any status"),
        widget=_select(_("Status")),
    )
    type = django_filters.ChoiceFilter(
        label=pgettext_lazy("ticket", "Type"),
        choices=Ticket.Type.choices,
        empty_label=_("Any type"),
        widget=_select(pgettext_lazy("ticket", "Type")),
    )
    severity = django_filters.ChoiceFilter(
        label=_("Severity"),
        choices=Ticket.Severity.choices,
        empty_label=_("Any severity"),
        widget=_select(_("Severity")),
    )
    # Validated in the method, so a filtered request loads no choice list; the page's select
    # loads it when it renders.
    assignee = django_filters.CharFilter(
        label=_("Assignee"),
        method="filter_assignee",
        validators=[
            RegexValidator(
                rf"^({ASSIGNEE_MINE}|{ASSIGNEE_NONE}|{ID_PATTERN})$",
                _("Choose an assignee: a user id, “mine” or “none”."),
            )
        ],
        widget=forms.Select(
            choices=lambda: [("", _("Anyone")), *_assignee_choices()],
            attrs={"aria-label": _("Assignee")},
        ),
    )
    queue = django_filters.ModelChoiceFilter(
        label=_("Queue"),
        queryset=Queue.objects.filter(is_active=True),
        empty_label=_("Any queue"),
        widget=_select(_("Queue")),
    )
    category = IdFilter(
        label=_("Category"),
        method="filter_category",
        widget=forms.Select(
            choices=lambda: [("", _("Any category")), *_category_choices()],
            attrs={"aria-label": _("Category")},
        ),
    )
    store = django_filters.ModelChoiceFilter(
        label=_("Store"),
        queryset=Store.objects.all(),
        empty_label=_("Any store"),
        widget=_select(_("Store")),
    )
    sla = django_filters.ChoiceFilter(
        label=_("SLA"),
        choices=[(SLA_BREACHING, _("Breaching SLA"))],
        method="filter_sla",
        empty_label=_("Any SLA state"),
        widget=_select(_("SLA")),
    )
    created_from = FilterDateFilter(
        label=_("Created from"),
        method="filter_created_from",
        widget=forms.DateInput(attrs={"type": "date", "aria-label": _("Created from")}),
    )
    created_to = FilterDateFilter(
        label=_("Created until"),
        method="filter_created_to",
        widget=forms.DateInput(attrs={"type": "date", "aria-label": _("Created until")}),
    )
    watched = django_filters.BooleanFilter(
        label=_("Watched for negative impact"), field_name="is_impact_watched"
    )

    class Meta:
        model = Ticket
        fields = [
            "tab",
            "q",
            "status",
            "type",
            "severity",
            "assignee",
            "queue",
            "category",
            "store",
            "sla",
            "created_from",
            "created_to",
            "watched",
        ]

    def __init__(self, *args, now: dt.datetime | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.now = now or timezone.now()

    @property
    def user(self):
        return getattr(self.request, "user", None)

    def filter_tab(self, queryset, name, value):
        if value == TAB_MINE:
            return queryset.open().filter(assignee_id=getattr(self.user, "pk", None))
        if value == TAB_UNASSIGNED:
            return queryset.open().filter(assignee__isnull=True)
        if value == TAB_BREACHING:
            return queryset.breaching_sla(now=self.now)
        if value == TAB_OPEN:
            return queryset.open()
        if value == TAB_WATCHED:
            return queryset.filter(is_impact_watched=True)
        return queryset

    def filter_q(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        if _NUMBER_RE.match(value):
            return queryset.filter(number=value.upper())
        # A short list of customer ids keeps every arm of the OR indexable (PostgreSQL can then
        # combine the number, subject and customer indexes when the term is rare); a term that
        # many customers match is common, and the newest-first scan finds its tickets quickly.
        customers = customer_search(Customer.objects.all(), value).values_list("pk", flat=True)
        customer_ids = list(customers[: CUSTOMER_IDS_MAX + 1])
        by_customer = customers if len(customer_ids) > CUSTOMER_IDS_MAX else customer_ids
        return queryset.filter(
            Q(number=value.upper()) | Q(subject__icontains=value) | Q(customer_id__in=by_customer)
        )

    def filter_assignee(self, queryset, name, value):
        if value == ASSIGNEE_MINE:
            return queryset.filter(assignee_id=getattr(self.user, "pk", None))
        if value == ASSIGNEE_NONE:
            return queryset.filter(assignee__isnull=True)
        return queryset.filter(assignee_id=int(value))

    def filter_category(self, queryset, name, value):
        return queryset.filter(category_id__in=category_descendant_ids([int(value)]))

    def filter_sla(self, queryset, name, value):
        if value == SLA_BREACHING:
            return queryset.breaching_sla(now=self.now)
        return queryset

    def filter_created_from(self, queryset, name, value):
        return queryset.filter(created_at__gte=_day_start(value))

    def filter_created_to(self, queryset, name, value):
        return queryset.filter(created_at__lt=_day_start(value + dt.timedelta(days=1)))
