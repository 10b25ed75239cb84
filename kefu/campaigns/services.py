"""Every write of bulk messages and member care, one transaction each.

Sending is at most once per recipient: a row is claimed (pending → sending) and committed before
the gateway is called, then marked sent or failed. A retried or concurrent dispatch only takes
pending rows; a crash between the two leaves the row 'sending' for a person to check, never a
second message. The local outbox writes its record in the claiming transaction: exactly once.
"""

import datetime as dt
import logging
import re
import time
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kefu.accounts.models import User
from kefu.campaigns import gateways
from kefu.campaigns.models import (
    Campaign,
    CampaignRecipient,
    Gateway,
    MemberBenefit,
    MessageTemplate,
    OptOut,
    OutboxMessage,
    Segment,
)
from kefu.campaigns.occasions import customers_with_birthday, festival_on
from kefu.campaigns.segments import segment_customers, segment_filters_clean
from kefu.core.exceptions import Conflict, NotFound, ValidationFailed
from kefu.core.permissions import require_perm
from kefu.customers.models import ContactPoint, Customer, CustomerEvent

log = logging.getLogger(__name__)

VARIABLES = ("name", "number", "store", "birthday", "holiday", "gift", "date")
_VARIABLE = re.compile(r"\{(\w+)\}")
CONTACT_KIND = {
    Gateway.SMS: ContactPoint.Kind.PHONE,
    Gateway.EMAIL: ContactPoint.Kind.EMAIL,
    Gateway.WECHAT: ContactPoint.Kind.WECHAT_OPENID,
}
QUEUE_CHUNK = 2000


# --- Templates and segments --------------------------------------------------------------------
def _template_clean(data: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    name = str(data.get("name") or "").strip()
    if not name:
        errors["name"] = [_("A name is required.")]
    gateway = data.get("gateway")
    if gateway not in Gateway.values:
        errors["gateway"] = [_("SMS, e-mail or WeChat.")]
    purpose = data.get("purpose") or MessageTemplate.Purpose.OTHER
    if purpose not in MessageTemplate.Purpose.values:
        errors["purpose"] = [_("Choose from the list.")]
    body = str(data.get("body") or "").strip()
    if not body:
        errors["body"] = [_("The text is required.")]
    unknown = sorted(set(_VARIABLE.findall(body)) - set(VARIABLES))
    if unknown:
        errors["body"] = [_("Unknown variable: %(names)s.") % {"names": ", ".join(unknown)}]
    subject = str(data.get("subject") or "").strip()
    if gateway == Gateway.EMAIL and not subject:
        errors["subject"] = [_("An e-mail needs a subject.")]
    if gateway == Gateway.SMS and len(body) > 500:
        errors["body"] = [_("An SMS holds at most 500 characters.")]
    if errors:
        raise ValidationFailed(errors)
    return {
        "name": name[:100],
        "gateway": gateway,
        "purpose": purpose,
        "subject": subject[:200],
        "body": body,
        "gift": str(data.get("gift") or "").strip(),
        "wechat_template_id": str(data.get("wechat_template_id") or "").strip()[:100],
        "is_active": bool(data.get("is_active", True)),
    }


@transaction.atomic
def template_save(
    *, actor: User | None, data: dict[str, Any], template_id: int | None = None
) -> MessageTemplate:
    require_perm(actor, "campaigns.change_messagetemplate")
    cleaned = _template_clean(data)
    clash = MessageTemplate.objects.filter(name=cleaned["name"]).exclude(pk=template_id)
    if clash.exists():
        raise ValidationFailed({"name": [_("A template with this name exists.")]})
    if template_id is None:
        return MessageTemplate.objects.create(**cleaned)
    template = MessageTemplate.objects.select_for_update().filter(pk=template_id).first()
    if template is None:
        raise NotFound(_("Template not found."))
    for key, value in cleaned.items():
        setattr(template, key, value)
    template.save()
    return template


@transaction.atomic
def segment_save(
    *,
    actor: User | None,
    name: str,
    filters: dict[str, Any],
    segment_id: int | None = None,
) -> Segment:
    """Save an audience by its filters (level, tags, store, birthday window, lifecycle, last
    purchase, churn risk)."""
    require_perm(actor, "campaigns.change_segment")
    name = (name or "").strip()[:100]
    errors = {}
    if not name:
        errors["name"] = [_("A name is required.")]
    try:
        cleaned = segment_filters_clean(filters or {})
    except ValidationFailed as exc:
        errors.update(exc.errors)
        cleaned = {}
    if errors:
        raise ValidationFailed(errors)
    if Segment.objects.filter(name=name).exclude(pk=segment_id).exists():
        raise ValidationFailed({"name": [_("A segment with this name exists.")]})
    if segment_id is None:
        return Segment.objects.create(name=name[:100], filters=cleaned, created_by=actor)
    segment = Segment.objects.select_for_update().filter(pk=segment_id).first()
    if segment is None:
        raise NotFound(_("Segment not found."))
    segment.name, segment.filters = name[:100], cleaned
    segment.save()
    return segment


# --- Rendering ----------------------------------------------------------------------------------
def render(
    template: MessageTemplate,
    customer: Customer,
    *,
    today: dt.date,
    holiday: str = "",
    gift: str = "",
) -> tuple[str, str]:
    """Subject and body of the template for one customer."""
    values = {
        "name": customer.name,
        "number": customer.number,
        "store": customer.store.name if customer.store_id and customer.store else "",
        "birthday": f"{customer.birthday.month}月{customer.birthday.day}日"
        if customer.birthday
        else "",
        "holiday": holiday,
        "gift": gift or template.gift,
        "date": f"{today.year}年{today.month}月{today.day}日",
    }
    fill = lambda text: _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), text)  # noqa: E731
    body = fill(template.body)
    if template.gateway == Gateway.SMS:
        body = f"{body} {_('Reply TD to unsubscribe')}"
    return fill(template.subject), body


# --- Campaigns ----------------------------------------------------------------------------------
@transaction.atomic
def campaign_create(*, actor: User | None, data: dict[str, Any]) -> Campaign:
    require_perm(actor, "campaigns.send_campaign")
    errors: dict[str, list[str]] = {}
    name = str(data.get("name") or "").strip()
    if not name:
        errors["name"] = [_("A name is required.")]
    template = MessageTemplate.objects.filter(pk=data.get("template"), is_active=True).first()
    if template is None:
        errors["template"] = [_("Choose an active template.")]
    segment = Segment.objects.filter(pk=data.get("segment")).first()
    if segment is None:
        errors["segment"] = [_("Choose a segment.")]
    scheduled_at = data.get("scheduled_at") or None
    if isinstance(scheduled_at, str):
        from django.utils.dateparse import parse_datetime

        parsed = parse_datetime(scheduled_at)
        if parsed is None:
            errors["scheduled_at"] = [_("Not a date and time.")]
        scheduled_at = parsed and (
            timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed
        )
    if errors:
        raise ValidationFailed(errors)
    return Campaign.objects.create(
        name=name[:200],
        template=template,
        segment=segment,
        scheduled_at=scheduled_at,
        gift=str(data.get("gift") or template.gift),
        created_by=actor,
    )


@transaction.atomic
def campaign_launch(
    *, actor: User | None, campaign_id: int, now: dt.datetime | None = None
) -> Campaign:
    """Send now, or at the campaign's time if that is still ahead."""
    require_perm(actor, "campaigns.send_campaign")
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(_("Campaign not found."))
    if campaign.status != Campaign.Status.DRAFT:
        raise Conflict(_("This campaign has been launched already."), code="campaign_launched")
    if campaign.scheduled_at and campaign.scheduled_at > now:
        campaign.status = Campaign.Status.SCHEDULED
        campaign.save(update_fields=["status", "updated_at"])
        return campaign
    campaign.status = Campaign.Status.QUEUED
    campaign.queued_at = now
    campaign.save(update_fields=["status", "queued_at", "updated_at"])
    _queue_on_commit(campaign.pk)
    return campaign


def _queue_on_commit(campaign_id: int) -> None:
    from kefu.campaigns.tasks import campaign_queue_task

    transaction.on_commit(lambda: campaign_queue_task(campaign_id))


@transaction.atomic
def campaign_cancel(*, actor: User | None, campaign_id: int) -> Campaign:
    """Stop a campaign: what is still waiting is not sent."""
    require_perm(actor, "campaigns.send_campaign")
    campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(_("Campaign not found."))
    if campaign.status in (Campaign.Status.DONE, Campaign.Status.CANCELLED):
        raise Conflict(_("This campaign has finished."), code="campaign_finished")
    campaign.status = Campaign.Status.CANCELLED
    campaign.finished_at = timezone.now()
    campaign.save(update_fields=["status", "finished_at", "updated_at"])
    return campaign


def _audience(campaign: Campaign, *, today: dt.date):
    if campaign.kind == Campaign.Kind.BIRTHDAY:
        base = Customer.objects.live().exclude(status=Customer.Status.CLOSED)
        return customers_with_birthday(base, start=today, days=1)
    if campaign.kind == Campaign.Kind.HOLIDAY and campaign.segment is None:
        return Customer.objects.live().filter(
            status__in=[Customer.Status.MEMBER, Customer.Status.CUSTOMER]
        )
    return segment_customers(campaign.segment.filters if campaign.segment else {}, today=today)


def campaign_queue(*, campaign_id: int, now: dt.datetime | None = None) -> int:
    """Write one recipient row per customer of the audience (with their address, or why they
    are skipped: opted out, no address), then start the dispatch. Idempotent: rows that exist
    stay as they are. Returns the rows written."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    campaign = Campaign.objects.select_related("template", "segment").filter(pk=campaign_id).first()
    if campaign is None or campaign.status not in (
        Campaign.Status.QUEUED,
        Campaign.Status.SENDING,
    ):
        return 0
    kind = campaign.template.gateway
    contact_kind = CONTACT_KIND[kind]
    ids = list(_audience(campaign, today=today).order_by("pk").values_list("pk", flat=True))
    opted_out = set(
        OptOut.objects.filter(channel__in=[kind, OptOut.Channel.ALL]).values_list(
            "customer_id", flat=True
        )
    )
    written = 0
    for start in range(0, len(ids), QUEUE_CHUNK):
        chunk = ids[start : start + QUEUE_CHUNK]
        addresses: dict[int, str] = {}
        for customer_id, value in (
            ContactPoint.objects.filter(customer_id__in=chunk, kind=contact_kind)
            .order_by("customer_id", "-is_primary", "id")
            .values_list("customer_id", "value")
        ):
            addresses.setdefault(customer_id, value)
        rows = []
        for customer_id in chunk:
            if customer_id in opted_out:
                status = CampaignRecipient.Status.OPTED_OUT
            elif customer_id not in addresses:
                status = CampaignRecipient.Status.NO_ADDRESS
            else:
                status = CampaignRecipient.Status.PENDING
            rows.append(
                CampaignRecipient(
                    campaign_id=campaign.pk,
                    customer_id=customer_id,
                    address=addresses.get(customer_id, ""),
                    status=status,
                )
            )
        with transaction.atomic():
            CampaignRecipient.objects.bulk_create(rows, ignore_conflicts=True)
        written += len(rows)
    Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.QUEUED).update(
        status=Campaign.Status.SENDING
    )
    from kefu.campaigns.tasks import campaign_dispatch_task

    campaign_id = campaign.pk
    transaction.on_commit(lambda: campaign_dispatch_task(campaign_id))
    return written


def _claim(campaign_id: int, limit: int) -> list[CampaignRecipient]:
    """Take up to `limit` waiting recipients: pending → sending, committed before any send."""
    with transaction.atomic():
        rows = list(
            CampaignRecipient.objects.select_for_update(skip_locked=True)
            .filter(
                campaign_id=campaign_id,
                campaign__status=Campaign.Status.SENDING,  # a cancel stops the next batch
                status=CampaignRecipient.Status.PENDING,
            )
            .order_by("id")[:limit]
        )
        if rows:
            CampaignRecipient.objects.filter(pk__in=[r.pk for r in rows]).update(
                status=CampaignRecipient.Status.SENDING
            )
    return rows


def campaign_dispatch(
    *, campaign_id: int, max_seconds: float = 50.0, clock=time.monotonic, sleep=time.sleep
) -> dict[str, int]:
    """Send waiting recipients at no more than the gateway's rate (messages per second) for up
    to `max_seconds`; returns counts. The caller re-runs it while recipients remain."""
    campaign = Campaign.objects.select_related("template").filter(pk=campaign_id).first()
    counts = {"sent": 0, "failed": 0, "remaining": 0}
    if campaign is None or campaign.status != Campaign.Status.SENDING:
        return counts
    template = campaign.template
    gateway = gateways.gateway_for(template.gateway)
    rate = gateways.gateway_rate(template.gateway)
    batch = rate or 500
    started = clock()
    today = timezone.localdate()
    while clock() - started < max_seconds:
        window = clock()
        rows = _claim(campaign.pk, batch)
        if not rows:
            break
        customers = (
            Customer.objects.select_related("store")
            .only("name", "number", "birthday", "store__name")
            .in_bulk([r.customer_id for r in rows])
        )
        messages = []
        for row in rows:
            customer = customers[row.customer_id]
            subject, body = render(
                template, customer, today=today, holiday=campaign.holiday, gift=campaign.gift
            )
            reference = f"campaign-{campaign.pk}-recipient-{row.pk}"
            messages.append((row, customer, subject, body, reference))
        if isinstance(gateway, gateways.OutboxGateway):
            counts["sent"] += _outbox_batch(template.gateway, messages)
        else:
            for row, customer, subject, body, reference in messages:
                _send_one(
                    gateway,
                    row,
                    customer,
                    subject=subject,
                    body=body,
                    reference=reference,
                    template_id=template.wechat_template_id,
                )
                counts["sent" if row.status == CampaignRecipient.Status.SENT else "failed"] += 1
        if rate:
            # One batch of `rate` messages per second at most.
            spent = clock() - window
            if spent < 1.0:
                sleep(1.0 - spent)
    remaining = CampaignRecipient.objects.filter(
        campaign_id=campaign.pk, status=CampaignRecipient.Status.PENDING
    ).count()
    counts["remaining"] = remaining
    if not remaining:
        Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.SENDING).update(
            status=Campaign.Status.DONE, finished_at=timezone.now()
        )
    return counts


def _outbox_batch(kind: str, messages: list) -> int:
    """The local outbox: the records and the sent marks of a whole batch in one transaction,
    so each claimed recipient gets exactly one message."""
    now = timezone.now()
    with transaction.atomic():
        OutboxMessage.objects.bulk_create(
            [
                OutboxMessage(
                    gateway=kind,
                    to=row.address,
                    subject=subject,
                    body=body,
                    customer_id=customer.pk,
                    recipient_id=row.pk,
                    reference=reference,
                )
                for row, customer, subject, body, reference in messages
            ]
        )
        sent = CampaignRecipient.objects.filter(
            pk__in=[m[0].pk for m in messages], status=CampaignRecipient.Status.SENDING
        ).update(status=CampaignRecipient.Status.SENT, provider_id="outbox", sent_at=now)
        _timeline(
            kind, [(row.campaign_id, customer.pk, body) for row, customer, _s, body, _r in messages]
        )
        return sent


def _timeline(kind: str, sent: list[tuple[int, int, str]]) -> None:
    """Each message sent goes on the customer's timeline (campaign, gateway, the text)."""
    CustomerEvent.objects.bulk_create(
        [
            CustomerEvent(
                customer_id=customer_id,
                kind=CustomerEvent.Kind.MESSAGE_SENT,
                data={"campaign": campaign_id, "gateway": kind, "body": body[:200]},
            )
            for campaign_id, customer_id, body in sent
        ]
    )


def _send_one(gateway, row: CampaignRecipient, customer: Customer, **message: str) -> None:
    """A provider outside Kefu: the row was claimed (committed) before; marked after."""
    now = timezone.now()
    try:
        provider_id = gateway.send(to=row.address, customer=customer, **message)
    except gateways.GatewayError as exc:
        row.status, row.error = CampaignRecipient.Status.FAILED, str(exc)[:300]
        row.save(update_fields=["status", "error"])
        return
    row.status, row.provider_id, row.sent_at = CampaignRecipient.Status.SENT, provider_id[:100], now
    row.save(update_fields=["status", "provider_id", "sent_at"])
    _timeline(gateway.name, [(row.campaign_id, customer.pk, message.get("body", ""))])


def campaign_test_send(
    *, actor: User, template_id: int, to: str, customer_id: int | None = None
) -> str:
    """Send the template to oneself, filled for a sample customer (or oneself)."""
    require_perm(actor, "campaigns.send_campaign")
    template = MessageTemplate.objects.filter(pk=template_id).first()
    if template is None:
        raise NotFound(_("Template not found."))
    to = (to or "").strip()
    if not to:
        raise ValidationFailed({"to": [_("Where should the test go?")]})
    customer = Customer.objects.filter(pk=customer_id).first() if customer_id else None
    if customer is None:
        customer = Customer(name=str(actor), number="KH-TEST")
    subject, body = render(template, customer, today=timezone.localdate(), gift=template.gift)
    try:
        return gateways.gateway_for(template.gateway).send(
            to=to,
            subject=f"[{_('Test')}] {subject}",
            body=body if template.gateway == Gateway.EMAIL else f"[{_('Test')}] {body}",
            reference=f"test-{template.pk}-{actor.pk}",
            customer=None,
            template_id=template.wechat_template_id,
        )
    except gateways.GatewayError as exc:
        raise ValidationFailed({"to": [str(exc)]}) from None


# --- Automatic greetings ------------------------------------------------------------------------
def _greeting(
    *,
    kind: str,
    occasion: str,
    name: str,
    template: MessageTemplate,
    now: dt.datetime,
    holiday: str = "",
) -> Campaign | None:
    with transaction.atomic():
        campaign, created = Campaign.objects.get_or_create(
            occasion=occasion,
            defaults={
                "name": name,
                "kind": kind,
                "template": template,
                "status": Campaign.Status.QUEUED,
                "queued_at": now,
                "gift": template.gift,
                "holiday": holiday,
            },
        )
    if not created:
        return None
    campaign_queue(campaign_id=campaign.pk, now=now)
    return campaign


def birthday_greetings_run(*, now: dt.datetime) -> Campaign | None:
    """Today's birthday greetings with the gift-claim instructions, once per day (29 February
    birthdays on the 28th in other years)."""
    today = timezone.localdate(now)
    template = (
        MessageTemplate.objects.filter(purpose=MessageTemplate.Purpose.BIRTHDAY, is_active=True)
        .order_by("id")
        .first()
    )
    if template is None:
        return None
    return _greeting(
        kind=Campaign.Kind.BIRTHDAY,
        occasion=f"birthday:{today.isoformat()}",
        name=_("Birthday greetings %(date)s") % {"date": today.isoformat()},
        template=template,
        now=now,
    )


def holiday_greetings_run(*, now: dt.datetime) -> Campaign | None:
    """Greetings on a festival (春节, 中秋节…) or the first day of a public holiday."""
    today = timezone.localdate(now)
    holiday = festival_on(today)
    if not holiday:
        return None
    template = (
        MessageTemplate.objects.filter(purpose=MessageTemplate.Purpose.HOLIDAY, is_active=True)
        .order_by("id")
        .first()
    )
    if template is None:
        return None
    return _greeting(
        kind=Campaign.Kind.HOLIDAY,
        occasion=f"holiday:{today.isoformat()}",
        name=f"{holiday} {today.isoformat()}",
        template=template,
        now=now,
        holiday=holiday,
    )


# --- Opt-outs and benefits ----------------------------------------------------------------------
@transaction.atomic
def optout_record(
    *, actor: User | None, customer_id: int, channel: str, source: str = ""
) -> OptOut:
    """The customer asked for no more bulk messages on a channel (or all); honoured from the next
    campaign on and kept on their timeline."""
    require_perm(actor, "campaigns.add_optout")
    if channel not in OptOut.Channel.values:
        raise ValidationFailed({"channel": [_("Choose from the list.")]})
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(_("Customer not found."))
    optout, created = OptOut.objects.get_or_create(
        customer=customer,
        channel=channel,
        defaults={"source": source[:100], "recorded_by": actor},
    )
    if created:
        CustomerEvent.objects.create(
            customer=customer,
            kind=CustomerEvent.Kind.UPDATED,
            actor=actor,
            data={"opt_out": channel, "source": source[:100]},
        )
        # Waiting messages of running campaigns on that channel are not sent either.
        kinds = list(Gateway.values) if channel == OptOut.Channel.ALL else [channel]
        CampaignRecipient.objects.filter(
            customer=customer,
            status=CampaignRecipient.Status.PENDING,
            campaign__template__gateway__in=kinds,
        ).update(status=CampaignRecipient.Status.OPTED_OUT)
    return optout


@transaction.atomic
def benefit_record(
    *,
    actor: User | None,
    customer_id: int,
    kind: str,
    occasion: str,
    description: str = "",
    now: dt.datetime | None = None,
) -> MemberBenefit:
    """A birthday or holiday gift handed to a member; once per occasion."""
    require_perm(actor, "campaigns.add_memberbenefit")
    now = now or timezone.now()
    errors = {}
    if kind not in MemberBenefit.Kind.values:
        errors["kind"] = [_("Choose from the list.")]
    occasion = (occasion or "").strip()[:50]
    if not occasion:
        errors["occasion"] = [_("Say which occasion (2026, 2026 中秋节...).")]
    if errors:
        raise ValidationFailed(errors)
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(_("Customer not found."))
    if MemberBenefit.objects.filter(customer=customer, kind=kind, occasion=occasion).exists():
        raise Conflict(
            _("This benefit was given already for %(occasion)s.") % {"occasion": occasion},
            code="benefit_given",
        )
    return MemberBenefit.objects.create(
        customer=customer,
        kind=kind,
        occasion=occasion[:50],
        description=description.strip()[:200],
        given_at=now,
        given_by=actor,
        store=getattr(actor, "store", None),
    )
