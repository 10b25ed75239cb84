"""Dispatching under a lease: one dispatcher per gateway (the rate holds), campaigns served in
turn, and what a stopped dispatcher left half-done resolved without a second message. The
provider here is a stand-in behind the gateway interface; the real-worker crash tests are in
test_worker.py."""

import datetime as dt
from types import SimpleNamespace

import pytest
from django.utils import timezone

from kefu.campaigns import services
from kefu.campaigns.models import Campaign, CampaignRecipient, MessageTemplate, OutboxMessage
from kefu.campaigns.tests.factories import launch_confirmed
from kefu.core import leases
from kefu.core.leases import lease_acquire
from kefu.core.models import Lease
from kefu.customers.tests.factories import make_customer

pytestmark = pytest.mark.django_db

LEASE = "campaign-dispatch-sms"


class Provider:
    """An SMS provider outside Kefu that takes every message (a stand-in for its HTTP API)."""

    name = "provider"
    idempotent = False
    taken: list[tuple[str, str]] = []  # (reference, to), across instances
    on_send = None

    def send(self, *, to, subject, body, reference, customer, template_id=""):
        Provider.taken.append((reference, to))
        if Provider.on_send is not None:
            Provider.on_send(len(Provider.taken))
        return f"p-{len(Provider.taken)}"


class DedupingProvider(Provider):
    """A provider that drops a second message with the same reference (an idempotency key)."""

    idempotent = True

    def send(self, *, reference, **message):
        if any(r == reference for r, _to in Provider.taken):
            return "p-duplicate-dropped"
        return super().send(reference=reference, **message)


@pytest.fixture(autouse=True)
def _fresh_provider(settings):
    settings.CAMPAIGN_RATES = {"sms": 0, "email": 0, "wechat": 0}
    Provider.taken = []
    Provider.on_send = None


@pytest.fixture
def template(db):
    return MessageTemplate.objects.create(
        name="会员日", gateway="sms", purpose="promotion", body="{name}您好，会员日全场9折。"
    )


def _campaign(records_officer, template, level: str, count: int, name: str) -> Campaign:
    for i in range(count):
        make_customer(name=f"{name}{i}", level=level)
    segment = services.segment_save(actor=records_officer, name=name, filters={"levels": [level]})
    campaign = services.campaign_create(
        actor=records_officer, data={"name": name, "template": template.pk, "segment": segment.pk}
    )
    launch_confirmed(records_officer, campaign)
    services.campaign_queue(campaign_id=campaign.pk)
    return campaign


def _dead_dispatcher(campaign: Campaign, rows: int) -> str:
    """A worker took the gateway's lease, handed `rows` messages to the provider (claimed) and
    was killed: its lease lapsed a while ago."""
    long_ago = timezone.now() - dt.timedelta(minutes=5)
    dead = lease_acquire(LEASE, ttl=60, now=long_ago)
    claimed = campaign.recipients.filter(status="pending").order_by("id")[:rows]
    CampaignRecipient.objects.filter(pk__in=[r.pk for r in claimed]).update(
        status="sending", claim=dead.holder
    )
    return dead.holder


def _dispatch(**kwargs):
    kwargs.setdefault("sleep", lambda s: None)
    return services.campaigns_dispatch(gateway="sms", **kwargs)


def test_a_message_a_dead_worker_handed_over_is_not_sent_again(records_officer, template, settings):
    """The provider may or may not have taken it: sending again could message the customer
    twice, so it is marked 'not confirmed' for a person to check; the rest go out."""
    settings.CAMPAIGN_GATEWAYS = {"sms": "kefu.campaigns.tests.test_dispatch.Provider"}
    settings.CAMPAIGN_SIGNATURES = {"sms": "康宁大药房"}
    campaign = _campaign(records_officer, template, "vip", 3, "A")
    holder = _dead_dispatcher(campaign, rows=1)
    unsure = campaign.recipients.get(status="sending")
    # when
    result = _dispatch()
    # then
    unsure.refresh_from_db()
    assert unsure.status == CampaignRecipient.Status.UNCONFIRMED
    assert "服务商" in unsure.error  # check with the provider
    assert [r for r, _to in Provider.taken] == [
        f"campaign-{campaign.pk}-recipient-{r.pk}"
        for r in campaign.recipients.filter(status="sent").order_by("id")
    ]
    assert len(Provider.taken) == 2
    assert result["sent"] == 2
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE
    resumed = campaign.events.get(kind="resumed")
    assert resumed.data == {"previous": holder, "unconfirmed": 1}


def test_a_deduplicating_provider_gets_it_again_under_the_same_reference(
    records_officer, template, settings
):
    settings.CAMPAIGN_GATEWAYS = {"sms": "kefu.campaigns.tests.test_dispatch.DedupingProvider"}
    settings.CAMPAIGN_SIGNATURES = {"sms": "康宁大药房"}
    campaign = _campaign(records_officer, template, "vip", 2, "A")
    _dead_dispatcher(campaign, rows=1)
    unsure = campaign.recipients.get(status="sending")
    reference = f"campaign-{campaign.pk}-recipient-{unsure.pk}"
    Provider.taken.append((reference, unsure.address))  # it had reached the provider
    # when
    _dispatch()
    # then: sent again with its reference, which the provider dropped; the customer has one
    unsure.refresh_from_db()
    assert unsure.status == CampaignRecipient.Status.SENT
    assert unsure.provider_id == "p-duplicate-dropped"
    assert [r for r, _to in Provider.taken].count(reference) == 1
    assert campaign.recipients.filter(status="sent").count() == 2


def test_the_outbox_resolves_rows_left_sending_exactly(records_officer, template):
    """Rows a stopped dispatcher left claimed: sent if their outbox record exists, else sent
    now, once."""
    campaign = _campaign(records_officer, template, "vip", 3, "A")
    _dead_dispatcher(campaign, rows=2)
    recorded, unrecorded = campaign.recipients.filter(status="sending").order_by("id")
    OutboxMessage.objects.create(
        gateway="sms", to=recorded.address, body="…", recipient=recorded, reference="x"
    )
    # when
    _dispatch()
    # then: one message each
    assert OutboxMessage.objects.count() == 3
    assert set(campaign.recipients.values_list("status", flat=True)) == {"sent"}
    assert OutboxMessage.objects.filter(recipient=unrecorded).count() == 1


def test_a_live_dispatcher_keeps_others_off_the_gateway_and_serves_every_campaign(
    records_officer, template, settings
):
    # given: another worker is dispatching SMS (its lease is fresh), and two campaigns wait
    settings.CAMPAIGN_RATES = {"sms": 2}
    first = _campaign(records_officer, template, "vip", 4, "A")
    second = _campaign(records_officer, template, "normal", 2, "B")
    live = lease_acquire(LEASE, ttl=60)
    # when: a second dispatch starts
    busy = _dispatch()
    # then: it sends nothing (the rate of the gateway holds)
    assert busy["busy"]
    assert not OutboxMessage.objects.exists()
    # when: the live one dispatches (here: after it is given up)
    live.release()
    clock = {"t": 0.0}
    _dispatch(clock=lambda: clock["t"], sleep=lambda s: clock.update(t=clock["t"] + s))
    # then: the campaigns went in turn, a batch of 2 a second each
    order = list(OutboxMessage.objects.order_by("id").values_list("recipient__campaign", flat=True))
    assert order == [first.pk, first.pk, second.pk, second.pk, first.pk, first.pk]
    assert clock["t"] >= 2.0
    assert set(Campaign.objects.values_list("status", flat=True)) == {"done"}


def test_a_dispatcher_that_lost_its_lease_stops_at_once(records_officer, template, settings):
    """It stalled past its lease and another worker took over: it hands over no more."""
    settings.CAMPAIGN_GATEWAYS = {"sms": "kefu.campaigns.tests.test_dispatch.Provider"}
    settings.CAMPAIGN_SIGNATURES = {"sms": "康宁大药房"}
    campaign = _campaign(records_officer, template, "vip", 5, "A")

    def taken_over(count: int) -> None:
        if count == 2:
            Lease.objects.filter(name=LEASE).update(holder="another-worker")

    Provider.on_send = taken_over
    # when: a third of its 3 s lease passes before each message, so it renews each time
    settings.LEASE_SECONDS = 3
    clock = {"t": 0.0}

    def tick() -> float:
        clock["t"] += 1.1
        return clock["t"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(leases, "time", SimpleNamespace(monotonic=tick))
        _dispatch()
    # then: two went out; the rest wait for the new holder, none is left claimed
    assert len(Provider.taken) == 2
    statuses = list(campaign.recipients.order_by("id").values_list("status", flat=True))
    assert statuses == ["sent", "sent", "pending", "pending", "pending"]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING


def test_the_sweep_finds_what_no_live_worker_is_on(records_officer, template):
    now = timezone.now()
    campaign = _campaign(records_officer, template, "vip", 2, "A")
    # a live dispatcher: nothing to pick up
    live = lease_acquire(LEASE, ttl=60, now=now)
    assert services.campaigns_stalled(now=now)["gateways"] == []
    # its worker died: once the lease lapses, the gateway is picked up again
    later = now + dt.timedelta(seconds=61)
    assert services.campaigns_stalled(now=later)["gateways"] == ["sms"]
    live.release()
    # a campaign queued long ago whose recipients nobody is writing
    Campaign.objects.filter(pk=campaign.pk).update(status="queued", queued_at=now)
    assert services.campaigns_stalled(now=now)["queued"] == []
    assert services.campaigns_stalled(now=later)["queued"] == [campaign.pk]


def test_the_sweep_leaves_marketing_campaigns_in_quiet_hours_alone(
    records_officer, template, settings, time_machine
):
    settings.SMS_QUIET_HOURS = "21:00-08:00"
    time_machine.move_to(dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC))  # 18:00 in Shanghai
    _campaign(records_officer, template, "vip", 2, "A")
    assert services.campaigns_stalled(now=timezone.now())["gateways"] == ["sms"]
    night = dt.datetime(2026, 12, 1, 15, tzinfo=dt.UTC)  # 23:00 in Shanghai
    assert services.campaigns_stalled(now=night)["gateways"] == []
