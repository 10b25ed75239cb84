"""Reads of bulk messages shared by the pages, the API and the services: counts by status, the
segment preview, a campaign's audience and what sending it would take (recipients, SMS segments,
quiet hours, approval), a campaign's message for a sample customer, addresses as a role may see
them."""

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import Count, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from kefu.campaigns import sms
from kefu.campaigns.models import Campaign, CampaignRecipient, Gateway, OptOut
from kefu.campaigns.occasions import customers_with_birthday
from kefu.campaigns.rendering import CONTACT_KIND, render
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
    return contact_mask(CONTACT_KIND.get(gateway, ContactPoint.Kind.PHONE), value)


def address_shown(gateway: str, value: str) -> str:
    """An address in full, as people write it (a mainland phone without +86)."""
    return contact_display(CONTACT_KIND.get(gateway, ContactPoint.Kind.PHONE), value)


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
    subject, body = render(
        campaign.template, customer, today=today, holiday=campaign.holiday, gift=campaign.gift
    )
    return customer, subject, body


# --- A campaign's audience and what sending it takes ----------------------------------------------
def campaign_audience(campaign: Campaign, *, today: dt.date) -> QuerySet[Customer]:
    """The customers a campaign is for today: its segment, or the day's birthdays (automatic
    birthday greetings), or every member and customer (holiday greetings without a segment)."""
    if campaign.kind == Campaign.Kind.BIRTHDAY:
        base = Customer.objects.live().exclude(status=Customer.Status.CLOSED)
        return customers_with_birthday(base, start=today, days=1)
    if campaign.kind == Campaign.Kind.HOLIDAY and campaign.segment is None:
        return Customer.objects.live().filter(
            status__in=[Customer.Status.MEMBER, Customer.Status.CUSTOMER]
        )
    return segment_customers(campaign.segment.filters if campaign.segment else {}, today=today)


def audience_statuses(campaign: Campaign, ids: list[int]) -> Iterator[tuple[int, str, str]]:
    """(customer id, recipient status, address) for customers of the campaign's audience: opted
    out of its channel, without an address on it, or waiting to be sent."""
    kind = campaign.template.gateway
    contact_kind = CONTACT_KIND[kind]
    opted_out = set(
        OptOut.objects.filter(
            channel__in=[kind, OptOut.Channel.ALL], customer_id__in=ids
        ).values_list("customer_id", flat=True)
    )
    addresses: dict[int, str] = {}
    for customer_id, value in (
        ContactPoint.objects.filter(customer_id__in=ids, kind=contact_kind)
        .order_by("customer_id", "-is_primary", "id")
        .values_list("customer_id", "value")
    ):
        addresses.setdefault(customer_id, value)
    for customer_id in ids:
        if customer_id in opted_out:
            yield customer_id, CampaignRecipient.Status.OPTED_OUT, addresses.get(customer_id, "")
        elif customer_id not in addresses:
            yield customer_id, CampaignRecipient.Status.NO_ADDRESS, ""
        else:
            yield customer_id, CampaignRecipient.Status.PENDING, addresses[customer_id]


ESTIMATE_CHUNK = 2000


@dataclasses.dataclass(frozen=True)
class CampaignEstimate:
    """What sending a campaign now would take: the person launching it confirms these."""

    recipients: int  # messages that would go out
    opted_out: int
    no_address: int
    segments: int | None  # SMS: how many SMS they make together (the bill); None otherwise
    longest: int | None  # SMS: the longest message, in characters as networks count them
    longest_segments: int | None  # SMS: segments of the longest message
    is_marketing: bool
    quiet_hours: str  # "21:00–08:00" for marketing SMS, else ""
    quiet_until: dt.datetime | None  # quiet when it would start: sending starts then
    signature: str  # SMS: 【签名】 or "" when none is set
    approval_threshold: int  # 0: no approval step

    @property
    def audience(self) -> int:
        return self.recipients + self.opted_out + self.no_address

    @property
    def needs_approval(self) -> bool:
        return bool(self.approval_threshold) and self.recipients > self.approval_threshold


def campaign_estimate(campaign: Campaign, *, now: dt.datetime) -> CampaignEstimate:
    """Recipients of the campaign today and, for SMS, the segments their messages make (each
    filled for its customer, with the signature and footer)."""
    today = timezone.localdate(now)
    template = campaign.template
    kind = template.gateway
    ids = list(campaign_audience(campaign, today=today).order_by("pk").values_list("pk", flat=True))
    counts = dict.fromkeys(CampaignRecipient.Status.values, 0)
    segments = longest = longest_segments = 0
    for start in range(0, len(ids), ESTIMATE_CHUNK):
        chunk = ids[start : start + ESTIMATE_CHUNK]
        waiting = []
        for customer_id, status, _address in audience_statuses(campaign, chunk):
            counts[status] += 1
            if status == CampaignRecipient.Status.PENDING:
                waiting.append(customer_id)
        if kind != Gateway.SMS or not waiting:
            continue
        customers = Customer.objects.select_related("store").only(
            "name", "number", "birthday", "store__name"
        )
        for customer in customers.filter(pk__in=waiting):
            _subject, body = render(
                template, customer, today=today, holiday=campaign.holiday, gift=campaign.gift
            )
            n = sms.sms_segments(body)
            segments += n
            if sms.sms_length(body) > longest:
                longest, longest_segments = sms.sms_length(body), n
    hours = sms.quiet_hours(kind) if template.is_marketing else None
    starts = campaign.scheduled_at if campaign.scheduled_at and campaign.scheduled_at > now else now
    is_sms = kind == Gateway.SMS
    return CampaignEstimate(
        recipients=counts[CampaignRecipient.Status.PENDING],
        opted_out=counts[CampaignRecipient.Status.OPTED_OUT],
        no_address=counts[CampaignRecipient.Status.NO_ADDRESS],
        segments=segments if is_sms else None,
        longest=longest if is_sms else None,
        longest_segments=longest_segments if is_sms else None,
        is_marketing=template.is_marketing,
        quiet_hours=str(hours) if hours else "",
        quiet_until=hours.ends_after(starts) if hours else None,
        signature=sms.signature(kind) if is_sms else "",
        approval_threshold=settings.CAMPAIGN_APPROVAL_THRESHOLD,
    )
