"""Every write of bulk messages and member care, one transaction each.

Sending is exactly once per recipient with the local outbox and at most once with a provider
outside Kefu, and no stopped worker stalls it:

- One dispatcher per gateway sends, under a lease (kefu/core/leases.py) that lapses when its
  worker dies; the rate limit holds because only the lease holder sends.
- The local outbox claims a batch, writes its messages and marks them sent in one transaction.
- A provider is handed one claimed row at a time (pending → sending, committed first), marked
  sent or failed after. A row a stopped worker left 'sending' is resolved by the next
  dispatcher: sent again with the same reference when the provider de-duplicates, else 'not
  confirmed' for a person to check, never a second message.
- A sweep (every minute, and a lease's time after a worker starts) picks up campaigns left
  queued or sending with no live worker on them.

A person confirms the recipients and SMS segments before a campaign goes; above
KEFU_CAMPAIGN_APPROVAL_THRESHOLD recipients a manager approves it. Marketing SMS carry the
opt-out footer and wait out the quiet hours (kefu/campaigns/sms.py).
"""

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from kefu.accounts.models import User
from kefu.audit.services import audit_record
from kefu.campaigns import gateways, sms
from kefu.campaigns.models import (
    Campaign,
    CampaignEvent,
    CampaignRecipient,
    Gateway,
    MemberBenefit,
    MessageTemplate,
    OptOut,
    OutboxMessage,
    Segment,
)
from kefu.campaigns.occasions import festival_on
from kefu.campaigns.rendering import VARIABLE, VARIABLES, render
from kefu.campaigns.segments import segment_filters_clean
from kefu.campaigns.selectors import (
    audience_statuses,
    campaign_audience,
    campaign_estimate,
    recipient_counts,
)
from kefu.core.exceptions import Conflict, NotFound, ValidationFailed
from kefu.core.leases import HeldLease, lease_acquire, lease_is_held
from kefu.core.permissions import has_perm, require_perm
from kefu.customers.models import Customer, CustomerEvent
from kefu.notifications.services import notify

log = logging.getLogger(__name__)

APPROVE_PERM = "campaigns.approve_campaign"
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
    unknown = sorted(set(VARIABLE.findall(body)) - set(VARIABLES))
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


# --- Campaigns ----------------------------------------------------------------------------------
def _event(
    campaign: Campaign,
    kind: str,
    *,
    actor: User | None = None,
    now: dt.datetime,
    **data: Any,
) -> CampaignEvent:
    return CampaignEvent.objects.create(
        campaign=campaign, kind=kind, actor=actor, data=data, created_at=now
    )


def _approvers() -> list[User]:
    return list(User.objects.with_perm(APPROVE_PERM, include_superusers=False).order_by("pk"))


@transaction.atomic
def campaign_create(
    *, actor: User | None, data: dict[str, Any], now: dt.datetime | None = None
) -> Campaign:
    require_perm(actor, "campaigns.send_campaign")
    now = now or timezone.now()
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
    campaign = Campaign.objects.create(
        name=name[:200],
        template=template,
        segment=segment,
        scheduled_at=scheduled_at,
        gift=str(data.get("gift") or template.gift),
        created_by=actor,
    )
    _event(campaign, CampaignEvent.Kind.CREATED, actor=actor, now=now)
    return campaign


def _sendable(template: MessageTemplate) -> None:
    """SMS through a provider need the sender signature: Chinese providers refuse the rest."""
    provider = settings.CAMPAIGN_GATEWAYS.get(template.gateway, "outbox") != "outbox"
    if template.gateway == Gateway.SMS and provider and not sms.signature(template.gateway):
        raise Conflict(
            _(
                "SMS need the sender signature registered with the provider (【签名】): an"
                " administrator sets KEFU_SMS_SIGNATURE."
            ),
            code="sms_signature_missing",
        )


def _start(campaign: Campaign, *, now: dt.datetime) -> None:
    """Scheduled for its time if that is ahead, else queued now (the worker writes the
    recipients and sends)."""
    if campaign.scheduled_at and campaign.scheduled_at > now:
        campaign.status = Campaign.Status.SCHEDULED
        campaign.save(update_fields=["status", "updated_at"])
        return
    campaign.status = Campaign.Status.QUEUED
    campaign.queued_at = now
    campaign.save(update_fields=["status", "queued_at", "updated_at"])
    _queue_on_commit(campaign.pk)


@transaction.atomic
def campaign_launch(
    *,
    actor: User | None,
    campaign_id: int,
    confirm_count: int | None = None,
    now: dt.datetime | None = None,
) -> Campaign:
    """Send now, or at the campaign's time if that is still ahead.

    A person confirms what they send: `confirm_count` must be the number of recipients the
    campaign has at this moment (the page and the API show it with the SMS segments). Above
    KEFU_CAMPAIGN_APPROVAL_THRESHOLD recipients it waits for a manager's approval, unless the
    person launching it may approve."""
    require_perm(actor, "campaigns.send_campaign")
    now = now or timezone.now()
    campaign = (
        Campaign.objects.select_for_update(of=("self",))
        .select_related("template")
        .filter(pk=campaign_id)
    ).first()
    if campaign is None:
        raise NotFound(_("Campaign not found."))
    if campaign.status != Campaign.Status.DRAFT:
        raise Conflict(_("This campaign has been launched already."), code="campaign_launched")
    _sendable(campaign.template)
    estimate = campaign_estimate(campaign, now=now)
    if actor is not None:
        if not estimate.recipients:
            raise ValidationFailed(
                {
                    "segment": [
                        _(
                            "Nobody in this segment can get the message (opted out or no"
                            " address): check the segment."
                        )
                    ]
                }
            )
        if confirm_count is None:
            raise ValidationFailed(
                {
                    "confirm_count": [
                        _("Confirm the number of recipients (%(count)s) to send.")
                        % {"count": estimate.recipients}
                    ]
                }
            )
        if confirm_count != estimate.recipients:
            raise ValidationFailed(
                {
                    "confirm_count": [
                        _(
                            "The campaign now reaches %(count)s recipients, not %(confirmed)s:"
                            " check them and confirm again."
                        )
                        % {"count": estimate.recipients, "confirmed": confirm_count}
                    ]
                }
            )
    campaign.launched_by, campaign.launched_at = actor, now
    campaign.confirmed_count = estimate.recipients
    campaign.estimated_segments = estimate.segments
    campaign.save(
        update_fields=[
            "launched_by",
            "launched_at",
            "confirmed_count",
            "estimated_segments",
            "updated_at",
        ]
    )
    figures = {"recipients": estimate.recipients, "segments": estimate.segments}
    _event(campaign, CampaignEvent.Kind.LAUNCHED, actor=actor, now=now, **figures)
    audit_record(actor=actor, action="campaign_launched", target=campaign, changes=figures)
    if estimate.needs_approval:
        if not has_perm(actor, APPROVE_PERM):
            _approval_request(campaign, actor=actor, now=now, recipients=estimate.recipients)
            return campaign
        # A manager's own launch is the approval.
        campaign.approved_by, campaign.approved_at = actor, now
        campaign.save(update_fields=["approved_by", "approved_at", "updated_at"])
    _start(campaign, now=now)
    return campaign


def _approval_request(
    campaign: Campaign, *, actor: User | None, now: dt.datetime, recipients: int
) -> None:
    """The campaign waits for a manager; every manager is told."""
    campaign.status = Campaign.Status.AWAITING_APPROVAL
    campaign.save(update_fields=["status", "updated_at"])
    threshold = settings.CAMPAIGN_APPROVAL_THRESHOLD
    _event(
        campaign,
        CampaignEvent.Kind.APPROVAL_REQUESTED,
        actor=actor,
        now=now,
        recipients=recipients,
        threshold=threshold,
    )
    notify(
        _approvers(),
        kind="campaign_approval",
        title=_("Approve the bulk message “%(name)s” to %(count)s recipients")
        % {"name": campaign.name, "count": recipients},
        body=_("More than %(threshold)s recipients need a manager's approval before it is sent.")
        % {"threshold": threshold},
        url=campaign.get_absolute_url(),
    )


def _decision_target(actor: User, campaign_id: int) -> Campaign:
    require_perm(actor, APPROVE_PERM)
    campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(_("Campaign not found."))
    if campaign.status != Campaign.Status.AWAITING_APPROVAL:
        raise Conflict(
            _("This campaign is not waiting for an approval."), code="campaign_not_awaiting"
        )
    return campaign


@transaction.atomic
def campaign_approve(*, actor: User, campaign_id: int, now: dt.datetime | None = None) -> Campaign:
    """A manager lets a campaign to a large audience go out (at its time, if that is ahead)."""
    now = now or timezone.now()
    campaign = _decision_target(actor, campaign_id)
    campaign.approved_by, campaign.approved_at = actor, now
    campaign.save(update_fields=["approved_by", "approved_at", "updated_at"])
    _event(campaign, CampaignEvent.Kind.APPROVED, actor=actor, now=now)
    audit_record(actor=actor, action="campaign_approved", target=campaign)
    notify(
        [campaign.launched_by],
        kind="campaign_approved",
        title=_("“%(name)s” was approved by %(manager)s")
        % {"name": campaign.name, "manager": actor},
        url=campaign.get_absolute_url(),
    )
    _start(campaign, now=now)
    return campaign


@transaction.atomic
def campaign_refuse(
    *, actor: User, campaign_id: int, reason: str, now: dt.datetime | None = None
) -> Campaign:
    """A manager refuses a campaign to a large audience: it goes back to a draft, with the
    reason on its timeline and told to whoever launched it."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed({"reason": [_("Say why, for whoever launched it.")]})
    if len(reason) > 500:
        raise ValidationFailed({"reason": [_("At most 500 characters.")]})
    campaign = _decision_target(actor, campaign_id)
    launched_by = campaign.launched_by
    campaign.status = Campaign.Status.DRAFT
    campaign.queued_at = None
    campaign.launched_by = campaign.launched_at = None
    campaign.confirmed_count = campaign.estimated_segments = None
    campaign.save()
    _event(campaign, CampaignEvent.Kind.REFUSED, actor=actor, now=now, reason=reason)
    audit_record(
        actor=actor, action="campaign_refused", target=campaign, changes={"reason": reason}
    )
    notify(
        [launched_by],
        kind="campaign_refused",
        title=_("“%(name)s” was refused by %(manager)s")
        % {"name": campaign.name, "manager": actor},
        body=reason,
        url=campaign.get_absolute_url(),
    )
    return campaign


def _queue_on_commit(campaign_id: int) -> None:
    from kefu.campaigns.tasks import campaign_queue_task

    transaction.on_commit(lambda: campaign_queue_task(campaign_id))


@transaction.atomic
def campaign_cancel(
    *, actor: User | None, campaign_id: int, now: dt.datetime | None = None
) -> Campaign:
    """Stop a campaign: what is still waiting is not sent."""
    require_perm(actor, "campaigns.send_campaign")
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(_("Campaign not found."))
    if campaign.status in (Campaign.Status.DONE, Campaign.Status.CANCELLED):
        raise Conflict(_("This campaign has finished."), code="campaign_finished")
    previous = campaign.status
    campaign.status = Campaign.Status.CANCELLED
    campaign.finished_at = now
    campaign.save(update_fields=["status", "finished_at", "updated_at"])
    _event(campaign, CampaignEvent.Kind.CANCELLED, actor=actor, now=now, previous=previous)
    audit_record(
        actor=actor,
        action="campaign_cancelled",
        target=campaign,
        changes={"status": [previous, campaign.status]},
    )
    return campaign


def campaign_queue(*, campaign_id: int, now: dt.datetime | None = None) -> int:
    """Write one recipient row per customer of the audience (with their address, or why they
    are skipped: opted out, no address), then start the dispatch. Idempotent: rows that exist
    stay as they are. Returns the rows written.

    A scheduled campaign whose audience has grown past KEFU_CAMPAIGN_APPROVAL_THRESHOLD since it
    was launched waits for a manager's approval first (unless its launcher may approve)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    campaign = (
        Campaign.objects.select_related("template", "segment", "launched_by")
        .filter(pk=campaign_id)
        .first()
    )
    if campaign is None or campaign.status not in (
        Campaign.Status.QUEUED,
        Campaign.Status.SENDING,
    ):
        return 0
    ids = list(campaign_audience(campaign, today=today).order_by("pk").values_list("pk", flat=True))
    rows = [
        CampaignRecipient(
            campaign_id=campaign.pk, customer_id=customer_id, address=address, status=status
        )
        for start in range(0, len(ids), QUEUE_CHUNK)
        for customer_id, status, address in audience_statuses(
            campaign, ids[start : start + QUEUE_CHUNK]
        )
    ]
    waiting = sum(1 for r in rows if r.status == CampaignRecipient.Status.PENDING)
    threshold = settings.CAMPAIGN_APPROVAL_THRESHOLD
    if (
        campaign.status == Campaign.Status.QUEUED
        and threshold
        and waiting > threshold
        and campaign.approved_at is None
        and campaign.launched_by is not None
        and not has_perm(campaign.launched_by, APPROVE_PERM)
    ):
        with transaction.atomic():
            locked = Campaign.objects.select_for_update().filter(
                pk=campaign.pk, status=Campaign.Status.QUEUED
            )
            if (found := locked.first()) is not None:
                _approval_request(found, actor=None, now=now, recipients=waiting)
        return 0
    for start in range(0, len(rows), QUEUE_CHUNK):
        with transaction.atomic():
            CampaignRecipient.objects.bulk_create(
                rows[start : start + QUEUE_CHUNK], ignore_conflicts=True
            )
    with transaction.atomic():
        if Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.QUEUED).update(
            status=Campaign.Status.SENDING
        ):
            _event(campaign, CampaignEvent.Kind.STARTED, now=now, recipients=waiting)
        transaction.on_commit(lambda: _dispatch_on_commit(campaign.template.gateway))
    return len(rows)


def _dispatch_on_commit(gateway: str) -> None:
    from kefu.campaigns.tasks import campaign_gateway_dispatch_task

    campaign_gateway_dispatch_task(gateway)


# --- Dispatch: one dispatcher per gateway, under a lease ------------------------------------------
def dispatch_lease_name(gateway: str) -> str:
    return f"campaign-dispatch-{gateway}"


def queue_lease_name(campaign_id: int) -> str:
    return f"campaign-queue-{campaign_id}"


def _sending(gateway: str):
    return Campaign.objects.filter(status=Campaign.Status.SENDING, template__gateway=gateway)


def _with_pending():
    return Exists(
        CampaignRecipient.objects.filter(
            campaign=OuterRef("pk"), status=CampaignRecipient.Status.PENDING
        )
    )


def _unfinished():
    return Exists(
        CampaignRecipient.objects.filter(
            campaign=OuterRef("pk"),
            status__in=[CampaignRecipient.Status.PENDING, CampaignRecipient.Status.SENDING],
        )
    )


def _quiet_until(campaign: Campaign, now: dt.datetime) -> dt.datetime | None:
    return sms.quiet_until(
        campaign.template.gateway, marketing=campaign.template.is_marketing, now=now
    )


def _campaign_next(gateway: str, *, after: int, now: dt.datetime) -> Campaign | None:
    """The next campaign to send a batch of, in turn (round robin by id), leaving out marketing
    campaigns in their quiet hours."""
    ready = [
        c
        for c in _sending(gateway).filter(_with_pending()).select_related("template").order_by("pk")
        if _quiet_until(c, now) is None
    ]
    return next((c for c in ready if c.pk > after), ready[0] if ready else None)


def _work_left(gateway: str, *, now: dt.datetime) -> tuple[bool, dt.datetime | None]:
    """Whether campaigns of the gateway have messages to send now, and else when the quiet
    hours that hold the rest back end."""
    waits = []
    for campaign in _sending(gateway).filter(_with_pending()).select_related("template"):
        until = _quiet_until(campaign, now)
        if until is None:
            return True, None
        waits.append(until)
    return False, min(waits, default=None)


def _campaigns_finish(gateway: str, *, now: dt.datetime) -> None:
    """Campaigns of the gateway with nothing left to send or to resolve are done."""
    for campaign in _sending(gateway).exclude(_unfinished()):
        with transaction.atomic():
            if Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.SENDING).update(
                status=Campaign.Status.DONE, finished_at=now
            ):
                counts = recipient_counts([campaign.pk])[campaign.pk]
                _event(campaign, CampaignEvent.Kind.FINISHED, now=now, counts=counts)


def _claims_recover(gateway: str, adapter, *, held: HeldLease, now: dt.datetime) -> None:
    """Messages a stopped dispatcher left 'sending' (claimed, then the worker died or lost its
    lease), resolved before anything else is sent:

    - the local outbox: sent if its record exists (it is written with the claim), else waiting;
    - a provider that de-duplicates by `reference` (`idempotent = True`): waiting again, sent
      with the same reference, so the provider drops a copy it already took;
    - any other provider: 'not confirmed'. It may or may not have taken the message, and
      sending it again could message the customer twice; a person checks with the provider.

    A campaign that had stalled gets a 'resumed' event."""
    stale = CampaignRecipient.objects.filter(
        campaign__template__gateway=gateway, status=CampaignRecipient.Status.SENDING
    ).exclude(claim=held.holder)
    touched: dict[int, dict[str, int]] = {}
    with transaction.atomic():
        rows = list(stale.select_for_update(of=("self",)).values_list("pk", "campaign_id"))
        ids = [pk for pk, _c in rows]
        if isinstance(adapter, gateways.OutboxGateway):
            recorded = dict(
                OutboxMessage.objects.filter(recipient_id__in=ids).values_list(
                    "recipient_id", "created_at"
                )
            )
            for pk, sent_at in recorded.items():
                CampaignRecipient.objects.filter(pk=pk).update(
                    status=CampaignRecipient.Status.SENT, provider_id="outbox", sent_at=sent_at
                )
            outcome = {pk: "sent" if pk in recorded else "pending" for pk in ids}
            CampaignRecipient.objects.filter(pk__in=[p for p in ids if p not in recorded]).update(
                status=CampaignRecipient.Status.PENDING, claim=""
            )
        elif getattr(adapter, "idempotent", False):
            CampaignRecipient.objects.filter(pk__in=ids).update(
                status=CampaignRecipient.Status.PENDING, claim=""
            )
            outcome = dict.fromkeys(ids, "pending")
        else:
            CampaignRecipient.objects.filter(pk__in=ids).update(
                status=CampaignRecipient.Status.UNCONFIRMED,
                error=_(
                    "The worker stopped while handing this message to the gateway: check with"
                    " the provider whether it went out."
                )[:300],
            )
            outcome = dict.fromkeys(ids, "unconfirmed")
        for pk, campaign_id in rows:
            tally = touched.setdefault(campaign_id, {})
            tally[outcome[pk]] = tally.get(outcome[pk], 0) + 1
        if held.taken_over_from:
            # The previous dispatcher died: every campaign it left unfinished resumes now.
            for campaign_id in (
                _sending(gateway).filter(_with_pending()).values_list("pk", flat=True)
            ):
                touched.setdefault(campaign_id, {})
        for campaign in Campaign.objects.filter(pk__in=touched).order_by("pk"):
            _event(
                campaign,
                CampaignEvent.Kind.RESUMED,
                now=now,
                previous=held.taken_over_from,
                **touched[campaign.pk],
            )


def _claim_one(campaign: Campaign, holder: str) -> CampaignRecipient | None:
    """Take the next waiting recipient for a provider outside Kefu: pending → sending, with
    this dispatcher's mark, committed before the provider is called."""
    with transaction.atomic():
        if not Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.SENDING).exists():
            return None  # cancelled: the next message is not sent
        row = (
            CampaignRecipient.objects.select_for_update(skip_locked=True)
            .filter(campaign_id=campaign.pk, status=CampaignRecipient.Status.PENDING)
            .order_by("id")
            .first()
        )
        if row is not None:
            row.status, row.claim = CampaignRecipient.Status.SENDING, holder
            row.save(update_fields=["status", "claim"])
        return row


def _outbox_batch(campaign: Campaign, limit: int, *, now: dt.datetime) -> int:
    """The local outbox: claim up to `limit` waiting recipients, write their messages and mark
    them sent in one transaction, so each one gets exactly one message whenever the worker
    stops."""
    template = campaign.template
    today = timezone.localdate(now)
    with transaction.atomic():
        if not Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.SENDING).exists():
            return 0  # cancelled: the next batch is not sent
        rows = list(
            CampaignRecipient.objects.select_for_update(skip_locked=True)
            .filter(campaign_id=campaign.pk, status=CampaignRecipient.Status.PENDING)
            .order_by("id")[:limit]
        )
        if not rows:
            return 0
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
            messages.append((row, customer, subject, body))
        OutboxMessage.objects.bulk_create(
            [
                OutboxMessage(
                    gateway=template.gateway,
                    to=row.address,
                    subject=subject,
                    body=body,
                    customer_id=customer.pk,
                    recipient_id=row.pk,
                    reference=_reference(row),
                )
                for row, customer, subject, body in messages
            ]
        )
        sent = CampaignRecipient.objects.filter(
            pk__in=[row.pk for row in rows], status=CampaignRecipient.Status.PENDING
        ).update(status=CampaignRecipient.Status.SENT, provider_id="outbox", sent_at=now)
        _timeline(
            template.gateway,
            [(row.campaign_id, customer.pk, body) for row, customer, _s, body in messages],
        )
        return sent


def _reference(row: CampaignRecipient) -> str:
    return f"campaign-{row.campaign_id}-recipient-{row.pk}"


def _provider_batch(
    campaign: Campaign, adapter, limit: int, *, held: HeldLease, now: Callable[[], dt.datetime]
) -> tuple[int, int]:
    """A provider outside Kefu: up to `limit` messages, one claimed (committed) at a time before
    it is handed over, then marked sent or failed; the lease is renewed between messages and
    the batch stops as soon as it is lost."""
    template = campaign.template
    sent = failed = 0
    for _i in range(limit):
        if not held.renew():
            break
        row = _claim_one(campaign, held.holder)
        if row is None:
            break
        customer = Customer.objects.select_related("store").get(pk=row.customer_id)
        moment = now()
        subject, body = render(
            template,
            customer,
            today=timezone.localdate(moment),
            holiday=campaign.holiday,
            gift=campaign.gift,
        )
        mine = CampaignRecipient.objects.filter(pk=row.pk, claim=held.holder)
        try:
            provider_id = adapter.send(
                to=row.address,
                subject=subject,
                body=body,
                reference=_reference(row),
                customer=customer,
                template_id=template.wechat_template_id,
            )
        except gateways.GatewayError as exc:
            mine.update(status=CampaignRecipient.Status.FAILED, error=str(exc)[:300])
            failed += 1
            continue
        with transaction.atomic():
            mine.update(
                status=CampaignRecipient.Status.SENT,
                provider_id=str(provider_id)[:100],
                sent_at=now(),
                error="",
            )
            _timeline(adapter.name, [(row.campaign_id, customer.pk, body)])
        sent += 1
    return sent, failed


def campaigns_dispatch(
    *,
    gateway: str,
    max_seconds: float = 50.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], dt.datetime] = timezone.now,
) -> dict[str, Any]:
    """Send the waiting messages of every campaign on a gateway, a batch of each in turn, at no
    more than the gateway's rate (messages per second), for up to `max_seconds`.

    One dispatcher per gateway runs at a time, under the lease `campaign-dispatch-<gateway>`:
    that is what holds the rate across worker threads and machines. The lease lapses when its
    worker dies (KEFU_LEASE_SECONDS), and the next dispatcher first resolves what the dead one
    left half-done. Marketing campaigns wait out their quiet hours.

    Returns the counts, `busy` (another dispatcher holds the lease), `more` (messages are
    waiting: run again) and `wait_until` (only quiet hours hold messages back: run then)."""
    result: dict[str, Any] = {"sent": 0, "failed": 0, "busy": False, "more": False}
    result["wait_until"] = None
    held = lease_acquire(dispatch_lease_name(gateway), now=now())
    if held is None:
        result["busy"] = True
        return result
    try:
        adapter = gateways.gateway_for(gateway)
        _claims_recover(gateway, adapter, held=held, now=now())
        rate = gateways.gateway_rate(gateway)
        batch = rate or 500
        started = clock()
        last = 0
        while clock() - started < max_seconds and held.renew():
            window = clock()
            campaign = _campaign_next(gateway, after=last, now=now())
            if campaign is None:
                break
            last = campaign.pk
            if isinstance(adapter, gateways.OutboxGateway):
                sent, failed = _outbox_batch(campaign, batch, now=now()), 0
            else:
                sent, failed = _provider_batch(campaign, adapter, batch, held=held, now=now)
            result["sent"] += sent
            result["failed"] += failed
            if rate and sent + failed:
                # One batch of `rate` messages per second at most.
                spent = clock() - window
                if spent < 1.0:
                    sleep(1.0 - spent)
        if not held.lost:
            _campaigns_finish(gateway, now=now())
    finally:
        held.release()
    # Asked after the release: a campaign that started while this one held the lease (its own
    # dispatch found the lease taken) is seen here and sent by the next run.
    result["more"], result["wait_until"] = _work_left(gateway, now=now())
    return result


def campaign_dispatch(
    *,
    campaign_id: int,
    max_seconds: float = 50.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], dt.datetime] = timezone.now,
) -> dict[str, Any]:
    """Dispatch the gateway of one campaign (and so its other campaigns too); the counts, with
    `remaining`: the campaign's messages still waiting."""
    gateway = (
        Campaign.objects.filter(pk=campaign_id).values_list("template__gateway", flat=True).first()
    )
    if gateway is None:
        return {"sent": 0, "failed": 0, "remaining": 0}
    result = campaigns_dispatch(
        gateway=gateway, max_seconds=max_seconds, clock=clock, sleep=sleep, now=now
    )
    result["remaining"] = CampaignRecipient.objects.filter(
        campaign_id=campaign_id, status=CampaignRecipient.Status.PENDING
    ).count()
    return result


def campaigns_stalled(*, now: dt.datetime) -> dict[str, list]:
    """What a worker should pick up again (the sweep after a restart and every minute): the
    gateways with campaigns to send or finish and no live dispatcher, and the campaigns queued
    for longer than a lease whose recipients no live worker is writing."""
    gateways_due = []
    for gateway in Gateway.values:
        if lease_is_held(dispatch_lease_name(gateway), now=now):
            continue
        campaigns = list(_sending(gateway).select_related("template"))
        if not campaigns:
            continue
        unfinished = set(_sending(gateway).filter(_unfinished()).values_list("pk", flat=True))
        stuck = CampaignRecipient.objects.filter(
            campaign__in=campaigns, status=CampaignRecipient.Status.SENDING
        ).exists()
        if stuck or any(c.pk not in unfinished or _quiet_until(c, now) is None for c in campaigns):
            gateways_due.append(gateway)
    since = now - dt.timedelta(seconds=settings.LEASE_SECONDS)
    queued = [
        pk
        for pk in Campaign.objects.filter(
            status=Campaign.Status.QUEUED, queued_at__lte=since
        ).values_list("pk", flat=True)
        if not lease_is_held(queue_lease_name(pk), now=now)
    ]
    return {"gateways": gateways_due, "queued": queued}


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


@dataclasses.dataclass(frozen=True)
class TestSent:
    """Where a test went and what it said: the text as customers get it, and its SMS count."""

    provider_id: str
    body: str
    segments: int | None


def campaign_test_send(
    *, actor: User, template_id: int, to: str, customer_id: int | None = None
) -> TestSent:
    """Send the template to oneself, filled for a sample customer (or oneself), signature and
    footer included."""
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
    marker = "[{}]".format(pgettext("a test message", "Test"))
    subject, body = render(
        template, customer, today=timezone.localdate(), gift=template.gift, marker=marker
    )
    try:
        provider_id = gateways.gateway_for(template.gateway).send(
            to=to,
            subject=f"{marker} {subject}",
            body=body,
            reference=f"test-{template.pk}-{actor.pk}",
            customer=None,
            template_id=template.wechat_template_id,
        )
    except gateways.GatewayError as exc:
        raise ValidationFailed({"to": [str(exc)]}) from None
    segments = sms.sms_segments(body) if template.gateway == Gateway.SMS else None
    return TestSent(provider_id=provider_id, body=body, segments=segments)


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
        if created:
            _event(campaign, CampaignEvent.Kind.CREATED, now=now, occasion=occasion)
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
