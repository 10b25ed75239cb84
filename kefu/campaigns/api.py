"""Bulk messages and member care under /api/v1/campaigns: segments (with a preview that saves
nothing), message templates and their test send, campaigns with recipient counts, what sending
one takes (recipients and SMS segments, to confirm when launching it), launching, approving,
refusing and cancelling them, their timeline and recipients, opt-outs and member benefits.

Reads check the view permission here; writes go through the services, which check theirs.
Addresses are always masked.
"""

import dataclasses
import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from kefu.campaigns import services
from kefu.campaigns.forms import TestSendForm
from kefu.campaigns.models import (
    Campaign,
    CampaignEvent,
    CampaignRecipient,
    MemberBenefit,
    MessageTemplate,
    Segment,
)
from kefu.campaigns.selectors import (
    address_masked,
    campaign_estimate,
    primary_phone,
    recipient_counts,
    segment_preview,
)
from kefu.core.bounds import DateTimeIn, Id, Offset
from kefu.core.exceptions import NotFound, ValidationFailed
from kefu.core.permissions import require_perm
from kefu.core.schemas import InputSchema, Ref
from kefu.customers.api import CustomerRef
from kefu.customers.models import Customer
from kefu.customers.selectors import customer_get_for_user, customer_list_visible_to

router = Router(tags=["campaigns"])


# --- Schemas --------------------------------------------------------------------------------------


class SegmentOut(Schema):
    id: int
    name: str
    filters: dict[str, Any] = Field(
        description="levels, statuses, tags, stores, birthday_within_days, "
        "last_purchase_before_days, last_purchase_within_days, churn_risk"
    )
    created_at: dt.datetime
    updated_at: dt.datetime


class SegmentIn(InputSchema):
    name: str = Field("", max_length=100)
    filters: dict[str, Any] = Field(
        default_factory=dict,
        description='{"levels": ["vip"], "stores": [1], "tags": ["慢病"], '
        '"birthday_within_days": 7, "churn_risk": true, ...}',
    )


class PreviewIn(InputSchema):
    filters: dict[str, Any] = Field(default_factory=dict)


class PreviewCustomer(Schema):
    id: int
    number: str
    name: str
    level: str
    status: str
    store: str | None
    phone: str | None = Field(description="Primary phone, masked.")


class PreviewOut(Schema):
    count: int = Field(description="Customers the filters select today.")
    sample: list[PreviewCustomer] = Field(description="The first 20 of them.")


class TemplateOut(Schema):
    id: int
    name: str
    gateway: str = Field(description="sms, email or wechat")
    purpose: str
    is_marketing: bool = Field(
        description="Marketing messages carry the SMS opt-out footer and wait out quiet hours;"
        " reminders, appointment reminders and verification codes are transactional."
    )
    subject: str
    body: str
    gift: str
    wechat_template_id: str
    is_active: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class TemplateIn(InputSchema):
    name: str = ""
    gateway: str = Field("", description="sms, email or wechat")
    purpose: str = Field(
        MessageTemplate.Purpose.OTHER,
        description="birthday, holiday, promotion, member_benefit, health_tip, reminder,"
        " appointment_reminder, verification, other",
    )
    subject: str = ""
    body: str = Field(
        "", description="Variables: " + ", ".join(f"{{{v}}}" for v in services.VARIABLES)
    )
    gift: str = ""
    wechat_template_id: str = ""
    is_active: bool = True


class TestSendIn(InputSchema):
    to: str = Field("", description="Your phone (SMS), e-mail address or WeChat openid.")
    customer_id: Id | None = Field(None, description="Fill the template for this customer.")


class TestSendOut(Schema):
    to: str
    gateway: str
    provider_id: str = Field(description="outbox-<id> when the local outbox recorded it.")
    body: str = Field(description="The text sent, with the SMS signature and opt-out footer.")
    segments: int | None = Field(description="SMS: how many SMS the text makes.")


class CampaignOut(Schema):
    id: int
    name: str
    kind: str
    status: str = Field(
        description="draft, awaiting_approval, scheduled, queued, sending, done or cancelled"
    )
    template: Ref
    gateway: str
    is_marketing: bool
    segment: Ref | None
    scheduled_at: dt.datetime | None
    queued_at: dt.datetime | None
    finished_at: dt.datetime | None
    created_at: dt.datetime
    launched_by: str | None
    launched_at: dt.datetime | None
    confirmed_count: int | None = Field(description="Recipients confirmed at launch.")
    estimated_segments: int | None = Field(description="SMS segments estimated at launch.")
    approved_by: str | None
    approved_at: dt.datetime | None
    total: int = Field(description="Recipients written so far.")
    counts: dict[str, int] = Field(
        description="Recipients by status: pending, sending, sent, failed, unconfirmed,"
        " opted_out, no_address"
    )


class CampaignEstimateOut(Schema):
    recipients: int = Field(description="Messages that would go out now: pass as confirm_count.")
    opted_out: int
    no_address: int
    segments: int | None = Field(
        description="SMS: how many SMS the messages make together, signature and footer counted"
        " (70 characters in one, 67 per part when longer; 160/153 for plain Latin)."
    )
    longest: int | None = Field(description="SMS: characters of the longest message.")
    longest_segments: int | None = Field(description="SMS: segments of the longest message.")
    is_marketing: bool
    quiet_hours: str = Field(description="Quiet hours of marketing SMS, e.g. 21:00–08:00.")
    quiet_until: dt.datetime | None = Field(
        description="When sending would start, if it would start in quiet hours."
    )
    signature: str = Field(description="SMS: the sender signature 【…】 put before the text.")
    approval_threshold: int = Field(description="Above this many recipients a manager approves.")
    needs_approval: bool


class CampaignLaunchIn(InputSchema):
    confirm_count: int | None = Field(
        None,
        ge=0,
        le=100_000_000,
        description="The number of recipients you confirm (see /estimate); required.",
    )


class CampaignRefuseIn(InputSchema):
    reason: str = Field("", max_length=500)


class CampaignEventOut(Schema):
    kind: str = Field(
        description="created, launched, approval_requested, approved, refused, started, resumed,"
        " finished or cancelled"
    )
    kind_label: str
    actor: str | None
    data: dict[str, Any]
    created_at: dt.datetime


class CampaignPage(Schema):
    results: list[CampaignOut]
    next: int | None = Field(description="Pass as `offset` for the following page.")
    has_more: bool
    limit: int


class CampaignIn(InputSchema):
    name: str = Field("", max_length=200)
    template_id: Id | None = None
    segment_id: Id | None = None
    scheduled_at: DateTimeIn | None = Field(None, description="Empty: send when launched.")
    gift: str = Field("", description="Gift-claim instructions; the template's when empty.")


class RecipientOut(Schema):
    id: int
    customer: CustomerRef
    address: str = Field(description="Masked.")
    status: str
    sent_at: dt.datetime | None
    error: str


class RecipientPage(Schema):
    results: list[RecipientOut]
    next: int | None
    has_more: bool
    limit: int


class Paging(Schema):
    offset: Offset = 0
    limit: int = Field(50, ge=1, le=200)


class RecipientFilters(Paging):
    status: str | None = Field(None, description="pending, sent, failed, opted_out, no_address...")


class OptOutIn(InputSchema):
    customer_id: Id
    channel: str = Field(description="all, sms, email or wechat")
    source: str = Field("", max_length=100, description="How: reply TD, a call...")


class OptOutOut(Schema):
    id: int
    customer: CustomerRef
    channel: str
    source: str
    created_at: dt.datetime


class BenefitIn(InputSchema):
    customer_id: Id
    kind: str = Field(description="birthday or holiday")
    occasion: str = Field("", max_length=50, description="2026, 2026 中秋节...")
    description: str = Field("", max_length=200)


class BenefitOut(Schema):
    id: int
    customer: CustomerRef
    kind: str
    occasion: str
    description: str
    given_at: dt.datetime
    given_by: str | None
    store: str | None


class BenefitFilters(Paging):
    occasion: str | None = Field(None, description="Part of the occasion (2026, 中秋节).")
    kind: str | None = None
    customer_id: Id | None = None


class BenefitPage(Schema):
    results: list[BenefitOut]
    next: int | None
    has_more: bool
    limit: int


# --- Helpers --------------------------------------------------------------------------------------


def _customer(c: Customer) -> dict:
    return {"id": c.pk, "number": c.number, "name": c.name}


def _page(rows: list, paging: Paging, out) -> dict:
    has_more = len(rows) > paging.limit
    return {
        "results": [out(r) for r in rows[: paging.limit]],
        "next": paging.offset + paging.limit if has_more else None,
        "has_more": has_more,
        "limit": paging.limit,
    }


def _slice(queryset, paging: Paging) -> list:
    return list(queryset[paging.offset : paging.offset + paging.limit + 1])


def _renamed(exc: ValidationFailed, names: dict[str, str]) -> ValidationFailed:
    """The service's error with its fields named as the API names them."""
    errors = {names.get(field, field): messages for field, messages in exc.errors.items()}
    return ValidationFailed(errors, exc.message)


def _segment_out(s: Segment) -> dict:
    return {
        "id": s.pk,
        "name": s.name,
        "filters": s.filters,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }


def _template_out(t: MessageTemplate) -> dict:
    return {name: getattr(t, name) for name in TemplateOut.model_fields} | {"id": t.pk}


def _person(user) -> str | None:
    return str(user) if user is not None else None


def _campaign_out(c: Campaign, counts: dict[str, int]) -> dict:
    return {
        "id": c.pk,
        "name": c.name,
        "kind": c.kind,
        "status": c.status,
        "template": {"id": c.template.pk, "name": c.template.name},
        "gateway": c.template.gateway,
        "is_marketing": c.template.is_marketing,
        "segment": {"id": c.segment.pk, "name": c.segment.name} if c.segment else None,
        "scheduled_at": c.scheduled_at,
        "queued_at": c.queued_at,
        "finished_at": c.finished_at,
        "created_at": c.created_at,
        "launched_by": _person(c.launched_by),
        "launched_at": c.launched_at,
        "confirmed_count": c.confirmed_count,
        "estimated_segments": c.estimated_segments,
        "approved_by": _person(c.approved_by),
        "approved_at": c.approved_at,
        "total": sum(counts.values()),
        "counts": counts,
    }


def _campaigns() -> Any:
    return Campaign.objects.select_related("template", "segment", "launched_by", "approved_by")


def _campaign_detail(campaign_id: int) -> dict:
    campaign = _campaigns().filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(_("Campaign not found."))
    return _campaign_out(campaign, recipient_counts([campaign.pk])[campaign.pk])


def _benefit_out(b: MemberBenefit) -> dict:
    return {
        "id": b.pk,
        "customer": _customer(b.customer),
        "kind": b.kind,
        "occasion": b.occasion,
        "description": b.description,
        "given_at": b.given_at,
        "given_by": str(b.given_by) if b.given_by else None,
        "store": b.store.name if b.store else None,
    }


# --- Segments -------------------------------------------------------------------------------------


@router.get("/segments", response=list[SegmentOut], summary="Saved audiences")
def segment_list_api(request: HttpRequest):
    require_perm(request.auth, "campaigns.view_segment")
    return [_segment_out(s) for s in Segment.objects.order_by("name")]


@router.post("/segments", response={201: SegmentOut}, summary="Save an audience")
def segment_create_api(request: HttpRequest, payload: SegmentIn):
    segment = services.segment_save(actor=request.auth, name=payload.name, filters=payload.filters)
    return Status(201, _segment_out(segment))


@router.put("/segments/{int:segment_id}", response=SegmentOut, summary="Change an audience")
def segment_update_api(request: HttpRequest, segment_id: int, payload: SegmentIn):
    segment = services.segment_save(
        actor=request.auth, name=payload.name, filters=payload.filters, segment_id=segment_id
    )
    return _segment_out(segment)


@router.post(
    "/segments/preview", response=PreviewOut, summary="Who the filters reach today (not saved)"
)
def segment_preview_api(request: HttpRequest, payload: PreviewIn):
    """The count and the first 20 customers the filters select today; phones masked."""
    require_perm(request.auth, "campaigns.view_segment")
    count, sample = segment_preview(payload.filters, today=timezone.localdate())
    rows = []
    for c in sample:
        phone = primary_phone(c)
        rows.append(
            {
                **_customer(c),
                "level": c.level,
                "status": c.status,
                "store": c.store.name if c.store else None,
                "phone": phone.masked if phone else None,
            }
        )
    return {"count": count, "sample": rows}


# --- Templates ------------------------------------------------------------------------------------


@router.get("/templates", response=list[TemplateOut], summary="Message templates")
def template_list_api(request: HttpRequest):
    require_perm(request.auth, "campaigns.view_messagetemplate")
    return [_template_out(t) for t in MessageTemplate.objects.order_by("name")]


@router.post("/templates", response={201: TemplateOut}, summary="Create a message template")
def template_create_api(request: HttpRequest, payload: TemplateIn):
    template = services.template_save(actor=request.auth, data=payload.dict())
    return Status(201, _template_out(template))


@router.put("/templates/{int:template_id}", response=TemplateOut, summary="Change a template")
def template_update_api(request: HttpRequest, template_id: int, payload: TemplateIn):
    template = services.template_save(
        actor=request.auth, data=payload.dict(), template_id=template_id
    )
    return _template_out(template)


@router.post(
    "/templates/{int:template_id}/test-send",
    response=TestSendOut,
    summary="Send the template to yourself",
)
def template_test_send_api(request: HttpRequest, template_id: int, payload: TestSendIn):
    """Filled for a sample customer (or `customer_id`), subject marked as a test."""
    require_perm(request.auth, "campaigns.send_campaign")
    template = MessageTemplate.objects.filter(pk=template_id).first()
    if template is None:
        raise NotFound(_("Template not found."))
    form = TestSendForm({"to": payload.to}, gateway=template.gateway)
    if not form.is_valid():
        raise ValidationFailed({k: list(v) for k, v in form.errors.items()})
    customer_id = None
    if payload.customer_id is not None:
        customer_id = customer_get_for_user(user=request.auth, customer_id=payload.customer_id).pk
    sent = services.campaign_test_send(
        actor=request.auth,
        template_id=template.pk,
        to=form.cleaned_data["to"],
        customer_id=customer_id,
    )
    return {
        "to": form.cleaned_data["to"],
        "gateway": template.gateway,
        "provider_id": sent.provider_id,
        "body": sent.body,
        "segments": sent.segments,
    }


# --- Campaigns ------------------------------------------------------------------------------------


@router.get("", response=CampaignPage, summary="Campaigns, newest first, with counts")
def campaign_list_api(request: HttpRequest, paging: Query[Paging]):
    require_perm(request.auth, "campaigns.view_campaign")
    rows = _slice(_campaigns().order_by("-id"), paging)
    counts = recipient_counts([c.pk for c in rows[: paging.limit]])
    return _page(rows, paging, lambda c: _campaign_out(c, counts[c.pk]))


@router.post("", response={201: CampaignOut}, summary="Create a campaign (a draft)")
def campaign_create_api(request: HttpRequest, payload: CampaignIn):
    data = {
        "name": payload.name,
        "template": payload.template_id,
        "segment": payload.segment_id,
        "scheduled_at": payload.scheduled_at,
        "gift": payload.gift,
    }
    try:
        campaign = services.campaign_create(actor=request.auth, data=data)
    except ValidationFailed as exc:
        raise _renamed(exc, {"template": "template_id", "segment": "segment_id"}) from None
    return Status(201, _campaign_detail(campaign.pk))


@router.get("/{int:campaign_id}", response=CampaignOut, summary="One campaign with its counts")
def campaign_detail_api(request: HttpRequest, campaign_id: int):
    require_perm(request.auth, "campaigns.view_campaign")
    return _campaign_detail(campaign_id)


@router.get(
    "/{int:campaign_id}/estimate",
    response=CampaignEstimateOut,
    summary="What sending it now takes: recipients, SMS segments, quiet hours, approval",
)
def campaign_estimate_api(request: HttpRequest, campaign_id: int):
    require_perm(request.auth, "campaigns.view_campaign")
    campaign = _campaigns().filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(_("Campaign not found."))
    estimate = campaign_estimate(campaign, now=timezone.now())
    return {
        **{f.name: getattr(estimate, f.name) for f in dataclasses.fields(estimate)},
        "needs_approval": estimate.needs_approval,
    }


@router.post(
    "/{int:campaign_id}/launch",
    response=CampaignOut,
    summary="Send now, or schedule for its time",
)
def campaign_launch_api(request: HttpRequest, campaign_id: int, payload: CampaignLaunchIn):
    """A draft is queued (or scheduled when its send time is ahead). `confirm_count` must be
    the number of recipients it reaches now (GET /estimate): 422 naming `confirm_count` when it
    is missing or the audience has changed. Above the approval threshold it goes to
    `awaiting_approval` unless you may approve. 409 when launched already."""
    services.campaign_launch(
        actor=request.auth, campaign_id=campaign_id, confirm_count=payload.confirm_count
    )
    return _campaign_detail(campaign_id)


@router.post("/{int:campaign_id}/approve", response=CampaignOut, summary="Approve a large campaign")
def campaign_approve_api(request: HttpRequest, campaign_id: int):
    """Managers: a campaign awaiting approval is sent (or scheduled); 409 when not awaiting."""
    services.campaign_approve(actor=request.auth, campaign_id=campaign_id)
    return _campaign_detail(campaign_id)


@router.post("/{int:campaign_id}/refuse", response=CampaignOut, summary="Refuse a large campaign")
def campaign_refuse_api(request: HttpRequest, campaign_id: int, payload: CampaignRefuseIn):
    """Managers: back to a draft, with the reason (required) told to whoever launched it."""
    services.campaign_refuse(actor=request.auth, campaign_id=campaign_id, reason=payload.reason)
    return _campaign_detail(campaign_id)


@router.get(
    "/{int:campaign_id}/events", response=list[CampaignEventOut], summary="A campaign's timeline"
)
def campaign_events_api(request: HttpRequest, campaign_id: int):
    require_perm(request.auth, "campaigns.view_campaign")
    if not Campaign.objects.filter(pk=campaign_id).exists():
        raise NotFound(_("Campaign not found."))
    events = CampaignEvent.objects.filter(campaign_id=campaign_id).select_related("actor")
    return [
        {
            "kind": e.kind,
            "kind_label": e.get_kind_display(),
            "actor": _person(e.actor),
            "data": e.data,
            "created_at": e.created_at,
        }
        for e in events.order_by("created_at", "id")
    ]


@router.post("/{int:campaign_id}/cancel", response=CampaignOut, summary="Stop a campaign")
def campaign_cancel_api(request: HttpRequest, campaign_id: int):
    """What is still waiting is not sent; 409 when it has finished."""
    services.campaign_cancel(actor=request.auth, campaign_id=campaign_id)
    return _campaign_detail(campaign_id)


@router.get(
    "/{int:campaign_id}/recipients", response=RecipientPage, summary="Recipients, addresses masked"
)
def campaign_recipients_api(
    request: HttpRequest, campaign_id: int, filters: Query[RecipientFilters]
):
    require_perm(request.auth, "campaigns.view_campaign")
    campaign = _campaigns().filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(_("Campaign not found."))
    recipients = campaign.recipients.select_related("customer").order_by("id")
    if filters.status:
        if filters.status not in CampaignRecipient.Status.values:
            raise ValidationFailed({"status": [_("Unknown status.")]})
        recipients = recipients.filter(status=filters.status)
    gateway = campaign.template.gateway

    def out(r: CampaignRecipient) -> dict:
        return {
            "id": r.pk,
            "customer": _customer(r.customer),
            "address": address_masked(gateway, r.address),
            "status": r.status,
            "sent_at": r.sent_at,
            "error": r.error,
        }

    return _page(_slice(recipients, filters), filters, out)


# --- Opt-outs and member benefits ---------------------------------------------------------------


@router.post("/opt-outs", response={201: OptOutOut}, summary="Record an opt-out")
def optout_create_api(request: HttpRequest, payload: OptOutIn):
    """The customer gets no more bulk messages on the channel (`all`: on any); waiting messages
    of running campaigns on it are not sent either. Recording it again changes nothing."""
    require_perm(request.auth, "campaigns.add_optout")
    customer = customer_get_for_user(user=request.auth, customer_id=payload.customer_id)
    optout = services.optout_record(
        actor=request.auth, customer_id=customer.pk, channel=payload.channel, source=payload.source
    )
    return Status(
        201,
        {
            "id": optout.pk,
            "customer": _customer(customer),
            "channel": optout.channel,
            "source": optout.source,
            "created_at": optout.created_at,
        },
    )


@router.post("/benefits", response={201: BenefitOut}, summary="Record a member benefit")
def benefit_create_api(request: HttpRequest, payload: BenefitIn):
    """A birthday or holiday gift handed to a member; 409 when given already for the occasion."""
    require_perm(request.auth, "campaigns.add_memberbenefit")
    customer = customer_get_for_user(user=request.auth, customer_id=payload.customer_id)
    benefit = services.benefit_record(
        actor=request.auth,
        customer_id=customer.pk,
        kind=payload.kind,
        occasion=payload.occasion,
        description=payload.description,
    )
    benefit = MemberBenefit.objects.select_related("customer", "given_by", "store").get(
        pk=benefit.pk
    )
    return Status(201, _benefit_out(benefit))


@router.get("/benefits", response=BenefitPage, summary="Member benefits given, newest first")
def benefit_list_api(request: HttpRequest, filters: Query[BenefitFilters]):
    require_perm(request.auth, "campaigns.view_memberbenefit")
    benefits = MemberBenefit.objects.filter(
        customer__in=customer_list_visible_to(user=request.auth)
    ).select_related("customer", "given_by", "store")
    if filters.occasion:
        benefits = benefits.filter(occasion__icontains=filters.occasion.strip())
    if filters.kind:
        if filters.kind not in MemberBenefit.Kind.values:
            raise ValidationFailed({"kind": [_("Choose from the list.")]})
        benefits = benefits.filter(kind=filters.kind)
    if filters.customer_id is not None:
        benefits = benefits.filter(customer_id=filters.customer_id)
    return _page(_slice(benefits.order_by("-given_at", "-id"), filters), filters, _benefit_out)
