"""Before a bulk SMS goes: the person confirms the recipients and SMS segments, a manager approves
a large audience, and marketing messages wait out the quiet hours (transactional ones do not)."""

import datetime as dt

import pytest
from django.utils import timezone

from kefu.audit.models import AuditEntry
from kefu.campaigns import services
from kefu.campaigns.models import Campaign, CampaignEvent, MessageTemplate, OutboxMessage
from kefu.campaigns.selectors import campaign_estimate
from kefu.campaigns.tests.factories import launch_confirmed
from kefu.core.exceptions import Conflict, Forbidden, ValidationFailed
from kefu.customers.tests.factories import make_customer
from kefu.notifications.models import Notification
from kefu.tickets.tests.fixtures import at

pytestmark = pytest.mark.django_db


def shanghai(*args) -> dt.datetime:
    return at(*args)


@pytest.fixture(autouse=True)
def _sms_settings(settings):
    settings.CAMPAIGN_RATES = {"sms": 0, "email": 0, "wechat": 0}
    settings.CAMPAIGN_SIGNATURES = {"sms": "康宁大药房"}
    settings.SMS_QUIET_HOURS = "21:00-08:00"
    settings.CAMPAIGN_APPROVAL_THRESHOLD = 1000


def _template(purpose: str = "promotion", body: str = "{name}您好，本周六会员日全场9折。"):
    return MessageTemplate.objects.create(
        name=f"模板{purpose}", gateway="sms", purpose=purpose, body=body
    )


def _campaign(actor, template, *, vips: int = 3, **data) -> Campaign:
    for i in range(vips):
        make_customer(name=f"会员{i}", level="vip")
    segment = services.segment_save(
        actor=actor, name=f"VIP{template.pk}", filters={"levels": ["vip"]}
    )
    return services.campaign_create(
        actor=actor,
        data={"name": "会员日", "template": template.pk, "segment": segment.pk, **data},
    )


def _send_all(campaign: Campaign, now: dt.datetime) -> dict:
    services.campaign_queue(campaign_id=campaign.pk, now=now)
    return services.campaigns_dispatch(gateway="sms", sleep=lambda s: None, now=lambda: now)


# --- Confirmation -------------------------------------------------------------------------------
def test_launching_needs_the_number_of_recipients_confirmed(records_officer):
    """233 people were once messaged without a confirmation: a person must confirm the count
    the page showed, and a count that no longer matches the audience is refused."""
    campaign = _campaign(records_officer, _template())
    make_customer(name="没电话", level="vip", phone=None)
    # when: no confirmation, then a stale one
    with pytest.raises(ValidationFailed) as missing:
        services.campaign_launch(actor=records_officer, campaign_id=campaign.pk)
    with pytest.raises(ValidationFailed) as stale:
        services.campaign_launch(actor=records_officer, campaign_id=campaign.pk, confirm_count=4)
    # then: nothing is queued, and the error names the field and the count
    assert list(missing.value.errors) == ["confirm_count"]
    assert "3" in missing.value.errors["confirm_count"][0]
    assert "3" in stale.value.errors["confirm_count"][0]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    assert not campaign.recipients.exists()
    # when: the right count
    services.campaign_launch(actor=records_officer, campaign_id=campaign.pk, confirm_count=3)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.QUEUED
    assert (campaign.confirmed_count, campaign.estimated_segments) == (3, 3)
    assert campaign.launched_by == records_officer
    launched = campaign.events.get(kind="launched")
    assert launched.data == {"recipients": 3, "segments": 3}
    assert AuditEntry.objects.filter(
        action="campaign_launched", target_id=str(campaign.pk)
    ).exists()


def test_the_estimate_counts_recipients_and_sms_segments(records_officer):
    """Each message is filled for its customer with the signature and footer: a long name
    can push one message into two SMS."""
    body = "{name}您好，" + "本店会员日全场保健品满200减30，" * 3
    campaign = _campaign(records_officer, _template(body=body), vips=0)
    make_customer(name="王芳", level="vip")
    make_customer(name="欧阳" * 10, level="vip")
    refuses = make_customer(name="退订", level="vip")
    services.optout_record(actor=None, customer_id=refuses.pk, channel="sms")
    make_customer(name="无电话", level="vip", phone=None)
    # when
    estimate = campaign_estimate(campaign, now=timezone.now())
    # then
    assert (estimate.recipients, estimate.opted_out, estimate.no_address) == (2, 1, 1)
    assert estimate.signature == "【康宁大药房】"
    assert estimate.is_marketing
    assert estimate.segments == 3  # 王芳: 1 SMS (67 chars + …); 欧阳…: 2
    assert estimate.longest_segments == 2


def test_nobody_to_send_to_is_refused(records_officer):
    campaign = _campaign(records_officer, _template(), vips=0)
    with pytest.raises(ValidationFailed) as exc:
        services.campaign_launch(actor=records_officer, campaign_id=campaign.pk, confirm_count=0)
    assert list(exc.value.errors) == ["segment"]


def test_sms_through_a_provider_need_the_signature(records_officer, settings):
    settings.CAMPAIGN_GATEWAYS = {"sms": "kefu.campaigns.tests.test_dispatch.Provider"}
    settings.CAMPAIGN_SIGNATURES = {"sms": ""}
    campaign = _campaign(records_officer, _template())
    with pytest.raises(Conflict) as exc:
        launch_confirmed(records_officer, campaign)
    assert exc.value.code == "sms_signature_missing"


# --- Approval -----------------------------------------------------------------------------------
def test_a_large_campaign_waits_for_a_manager_who_approves_it(
    records_officer, manager, settings, django_capture_on_commit_callbacks
):
    # given: approval above 2 recipients, a campaign to 3
    settings.CAMPAIGN_APPROVAL_THRESHOLD = 2
    campaign = _campaign(records_officer, _template())
    # when: the records officer launches it
    launch_confirmed(records_officer, campaign)
    # then: it waits, nothing is written or sent, and the managers are told
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.AWAITING_APPROVAL
    assert not campaign.recipients.exists()
    notice = Notification.objects.get(recipient=manager, kind="campaign_approval")
    assert notice.url == campaign.get_absolute_url()
    assert "3" in notice.title
    assert not Notification.objects.filter(recipient=records_officer).exists()
    with pytest.raises(Forbidden):
        services.campaign_approve(actor=records_officer, campaign_id=campaign.pk)
    # when: a manager approves it
    with django_capture_on_commit_callbacks(execute=True):
        services.campaign_approve(actor=manager, campaign_id=campaign.pk)
    # then: it is sent, and the approval is on its timeline, in the audit log and told
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE
    assert campaign.approved_by == manager
    assert OutboxMessage.objects.count() == 3
    kinds = list(campaign.events.values_list("kind", flat=True))
    assert kinds == ["created", "launched", "approval_requested", "approved", "started", "finished"]
    assert campaign.events.get(kind="approved").actor == manager
    assert AuditEntry.objects.filter(
        action="campaign_approved", actor=manager, target_id=str(campaign.pk)
    ).exists()
    assert Notification.objects.filter(recipient=records_officer, kind="campaign_approved").exists()
    with pytest.raises(Conflict):
        services.campaign_approve(actor=manager, campaign_id=campaign.pk)


def test_a_manager_refuses_with_a_reason_and_it_is_a_draft_again(
    records_officer, manager, settings
):
    settings.CAMPAIGN_APPROVAL_THRESHOLD = 2
    campaign = _campaign(records_officer, _template())
    launch_confirmed(records_officer, campaign)
    with pytest.raises(ValidationFailed) as exc:
        services.campaign_refuse(actor=manager, campaign_id=campaign.pk, reason=" ")
    assert list(exc.value.errors) == ["reason"]
    # when
    services.campaign_refuse(actor=manager, campaign_id=campaign.pk, reason="只发人民路店")
    # then
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    assert campaign.launched_by is None
    refused = campaign.events.get(kind="refused")
    assert (refused.actor, refused.data) == (manager, {"reason": "只发人民路店"})
    told = Notification.objects.get(recipient=records_officer, kind="campaign_refused")
    assert told.body == "只发人民路店"
    assert AuditEntry.objects.filter(action="campaign_refused", actor=manager).exists()
    assert not OutboxMessage.objects.exists()


def test_a_manager_s_own_large_launch_is_its_approval(manager, settings):
    settings.CAMPAIGN_APPROVAL_THRESHOLD = 2
    campaign = _campaign(manager, _template())
    launch_confirmed(manager, campaign)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.QUEUED
    assert campaign.approved_by == manager


def test_a_scheduled_campaign_that_grew_past_the_threshold_waits_at_its_time(
    records_officer, manager, settings
):
    settings.CAMPAIGN_APPROVAL_THRESHOLD = 3
    at = timezone.now() + dt.timedelta(days=1)
    campaign = _campaign(records_officer, _template(), scheduled_at=at.isoformat())
    launch_confirmed(records_officer, campaign)
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SCHEDULED
    make_customer(name="新会员", level="vip")  # 4 by the time it is due
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.QUEUED)
    # when: the worker queues it
    written = services.campaign_queue(campaign_id=campaign.pk)
    # then
    assert written == 0
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.AWAITING_APPROVAL
    assert campaign.events.filter(kind="approval_requested").get().data["recipients"] == 4
    assert Notification.objects.filter(recipient=manager, kind="campaign_approval").exists()


# --- Quiet hours --------------------------------------------------------------------------------
def test_a_promotional_sms_waits_for_the_end_of_quiet_hours(records_officer, time_machine):
    """A promotional SMS once went out at 07:18: it now waits until 08:00."""
    campaign = _campaign(records_officer, _template())
    time_machine.move_to(shanghai(2026, 12, 1, 7, 18), tick=False)
    services.campaign_launch(actor=None, campaign_id=campaign.pk)  # the worker's queueing
    services.campaign_queue(campaign_id=campaign.pk)
    # when: dispatched at 07:18
    result = services.campaign_dispatch(campaign_id=campaign.pk, sleep=lambda s: None)
    # then: nothing went, and the dispatcher will come back at 08:00
    assert not OutboxMessage.objects.exists()
    assert result["wait_until"] == shanghai(2026, 12, 1, 8)
    assert not result["more"]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING
    # when: at 08:00
    time_machine.move_to(shanghai(2026, 12, 1, 8), tick=False)
    services.campaign_dispatch(campaign_id=campaign.pk, sleep=lambda s: None)
    assert OutboxMessage.objects.count() == 3


def test_a_transactional_sms_goes_out_in_quiet_hours(records_officer):
    template = _template("appointment_reminder", "{name}您好，您预约的验光明天上午10点。")
    campaign = _campaign(records_officer, template)
    night = shanghai(2026, 12, 1, 22, 30)
    launch_confirmed(records_officer, campaign, now=night)
    _send_all(campaign, night)
    bodies = list(OutboxMessage.objects.values_list("body", flat=True))
    assert len(bodies) == 3
    assert all(b.startswith("【康宁大药房】") and "退订" not in b for b in bodies)


def test_a_dispatch_that_reaches_the_quiet_hours_stops_there(records_officer, settings):
    settings.CAMPAIGN_RATES = {"sms": 2}
    campaign = _campaign(records_officer, _template(), vips=4)
    evening = shanghai(2026, 12, 1, 20, 59, 59)
    launch_confirmed(records_officer, campaign, now=evening)
    services.campaign_queue(campaign_id=campaign.pk, now=evening)
    clock = {"t": 0.0}  # seconds since 20:59:59, moved by the rate limit's waits

    def now() -> dt.datetime:
        return evening + dt.timedelta(seconds=clock["t"])

    # when: the first batch goes at 20:59:59, the second would at 21:00:00
    result = services.campaigns_dispatch(
        gateway="sms",
        clock=lambda: clock["t"],
        sleep=lambda s: clock.update(t=clock["t"] + s),
        now=now,
    )
    # then
    assert OutboxMessage.objects.count() == 2
    assert result["wait_until"] == shanghai(2026, 12, 2, 8)
    assert campaign.recipients.filter(status="pending").count() == 2


def test_the_page_and_api_say_when_a_campaign_waits(records_officer):
    campaign = _campaign(records_officer, _template(), vips=1)
    estimate = campaign_estimate(campaign, now=shanghai(2026, 12, 1, 23))
    assert estimate.quiet_hours == "21:00–08:00"
    assert estimate.quiet_until == shanghai(2026, 12, 2, 8)
    day = campaign_estimate(campaign, now=shanghai(2026, 12, 1, 10))
    assert day.quiet_until is None


def test_events_are_kept_in_order(records_officer):
    campaign = _campaign(records_officer, _template(), vips=1)
    services.campaign_cancel(actor=records_officer, campaign_id=campaign.pk)
    assert list(CampaignEvent.objects.filter(campaign=campaign).values_list("kind", flat=True)) == [
        "created",
        "cancelled",
    ]
