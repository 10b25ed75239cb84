"""Reads of bulk messages shared by the pages and the API: counts by status, the segment
preview, a campaign's message for a sample customer, addresses as a role may see them."""

import datetime as dt
from typing import Any

from django.db.models import Count
from django.utils.translation import gettext as _

from kefu.campaigns import services
from kefu.campaigns.models import Campaign, CampaignRecipient
from kefu.campaigns.segments import segment_customers, segment_filters_clean
from kefu.core.exceptions import ValidationFailed
from kefu.customers.contacts import contact_display, contact_mask
from kefu.customers.models import ContactPoint, Customer
from kefu.customers.selectors import customer_list_for_display

PREVIEW_SIZE = 20
R = CampaignRecipient.Status


def recipient_counts(campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Recipients of each campaign by status, every status present (zeros included). One query."""
    counts = {pk: dict.fromkeys(R.values, 0) for pk in campaign_ids}
    rows = (
        CampaignRecipient.objects.filter(campaign_id__in=campaign_ids)
        .values_list("campaign_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for campaign_id, status, n in rows:
        counts[campaign_id][status] = n
    return counts


def address_masked(gateway: str, value: str) -> str:
    """A recipient's or outbox message's address as roles without full contact see it."""
    if not value:
        return ""
    return contact_mask(services.CONTACT_KIND.get(gateway, ContactPoint.Kind.PHONE), value)


def address_shown(gateway: str, value: str) -> str:
    """An address in full, as people write it (a mainland phone without +86)."""
    return contact_display(services.CONTACT_KIND.get(gateway, ContactPoint.Kind.PHONE), value)


def primary_phone(customer: Customer) -> ContactPoint | None:
    """The primary phone of a customer loaded through customer_list_for_display."""
    return next((c for c in customer.primary_contacts if c.kind == ContactPoint.Kind.PHONE), None)


def segment_preview(filters: dict[str, Any], *, today: dt.date) -> tuple[int, list[Customer]]:
    """How many customers the filters select today and the first of them (with store, tags and
    primary contacts loaded). Raises ValidationFailed naming bad filters; saves nothing."""
    customers = segment_customers(segment_filters_clean(filters), today=today)
    sample = list(customer_list_for_display(customers.order_by("pk"))[:PREVIEW_SIZE])
    count = customers.count() if len(sample) == PREVIEW_SIZE else len(sample)
    return count, sample


def campaign_sample(campaign: Campaign, *, today: dt.date) -> tuple[Customer, str, str]:
    """The message of a campaign filled for a sample customer: its first recipient, else the
    first customer of its segment, else a made-up one. Returns (customer, subject, body)."""
    first = (
        campaign.recipients.select_related("customer__store").order_by("id").first()
        if campaign.status != Campaign.Status.DRAFT
        else None
    )
    customer = first.customer if first else None
    if customer is None and campaign.segment is not None:
        try:
            audience = segment_customers(campaign.segment.filters, today=today)
            customer = audience.select_related("store").order_by("pk").first()
        except ValidationFailed:
            customer = None
    if customer is None:
        customer = Customer(name=_("Sample customer"), number="KH-SAMPLE")
    subject, body = services.render(
        campaign.template, customer, today=today, holiday=campaign.holiday, gift=campaign.gift
    )
    return customer, subject, body
