"""Bulk messages: audiences, birthdays across a year end and 29 February, opt-outs, sending at
most once per recipient and at the gateway's rate."""

import datetime as dt
import itertools

import pytest
import time_machine

from kefu.campaigns import services
from kefu.campaigns.models import (
    Campaign,
    CampaignRecipient,
    MessageTemplate,
    OptOut,
    OutboxMessage,
)
from kefu.campaigns.occasions import birthday_days, festival_on
from kefu.campaigns.segments import segment_customers
from kefu.campaigns.tests.factories import launch_confirmed
from kefu.core.exceptions import Conflict, ValidationFailed
from kefu.customers.models import Customer
from kefu.customers.services import customer_touch
from kefu.customers.tests.factories import make_customer
from kefu.tickets.tests.fixtures import at

pytestmark = pytest.mark.django_db


@pytest.fixture
def birthday_sms(db):
    return MessageTemplate.objects.create(
        name="生日祝福",
        gateway="sms",
        purpose=MessageTemplate.Purpose.BIRTHDAY,
        body="{name}您好，祝您生日快乐！{gift}",
        gift="凭短信到{store}领取生日礼品一份。",
    )


def _run(campaign: Campaign) -> None:
    services.campaign_dispatch(campaign_id=campaign.pk, max_seconds=30, sleep=lambda s: None)


def test_birthday_window_crosses_the_year_end():
    assert birthday_days(dt.date(2026, 12, 30), 4) == [(12, 30), (12, 31), (1, 1), (1, 2)]


def test_29_february_is_celebrated_on_the_28th_in_other_years():
    assert (2, 29) in birthday_days(dt.date(2027, 2, 28), 1)
    assert birthday_days(dt.date(2028, 2, 28), 1) == [(2, 28)]
    assert (2, 29) in birthday_days(dt.date(2028, 2, 27), 3)


def test_birthday_greetings_on_new_years_eve_and_the_next_days(birthday_sms):
    # given
    eve = make_customer(name="除夕生", birthday=dt.date(1990, 12, 31))
    new_year = make_customer(name="元旦生", birthday=dt.date(1985, 1, 1))
    make_customer(name="别的日子", birthday=dt.date(1985, 6, 1))
    # when: the daily job runs on 31 December, twice, then on 1 January
    first = services.birthday_greetings_run(now=at(2026, 12, 31, 9))
    again = services.birthday_greetings_run(now=at(2026, 12, 31, 9, 5))
    january = services.birthday_greetings_run(now=at(2027, 1, 1, 9))
    # then: each is greeted once, on their day
    assert again is None
    assert list(first.recipients.values_list("customer", flat=True)) == [eve.pk]
    assert list(january.recipients.values_list("customer", flat=True)) == [new_year.pk]
    _run(first)
    _run(january)
    bodies = list(OutboxMessage.objects.order_by("id").values_list("body", flat=True))
    assert len(bodies) == 2
    assert bodies[0].startswith("除夕生您好，祝您生日快乐！凭短信到")
    assert bodies[0].endswith("回T退订")


def test_an_sms_carries_the_signature_and_a_chinese_opt_out_footer(settings):
    """Bulk SMS in China: 【签名】 first; marketing ones end with 回T退订 (it was an English
    "Reply TD to unsubscribe"), reminders without it."""
    settings.CAMPAIGN_SIGNATURES = {"sms": "康宁大药房"}
    customer = Customer(name="王芳", number="KH1")
    promotion = MessageTemplate(gateway="sms", purpose="promotion", body="{name}您好，会员日9折。")
    reminder = MessageTemplate(gateway="sms", purpose="reminder", body="{name}您好，请按时服药。")
    today = dt.date(2026, 12, 1)
    assert services.render(promotion, customer, today=today)[1] == (
        "【康宁大药房】王芳您好，会员日9折。回T退订"
    )
    assert (
        services.render(reminder, customer, today=today)[1]
        == "【康宁大药房】王芳您好，请按时服药。"
    )


def test_leap_day_birthday_greeted_on_28_february_2027_and_29_february_2028(birthday_sms):
    leap = make_customer(name="闰日生", birthday=dt.date(2000, 2, 29))
    on_28th = services.birthday_greetings_run(now=at(2027, 2, 28, 9))
    assert list(on_28th.recipients.values_list("customer", flat=True)) == [leap.pk]
    assert services.birthday_greetings_run(now=at(2028, 2, 28, 9)).recipients.count() == 0
    on_29th = services.birthday_greetings_run(now=at(2028, 2, 29, 9))
    assert list(on_29th.recipients.values_list("customer", flat=True)) == [leap.pk]


def test_opt_out_is_honoured_and_recorded(
    birthday_sms, records_officer, django_capture_on_commit_callbacks
):
    # given
    keen = make_customer(name="愿意", level="vip")
    refuses = make_customer(name="退订", level="vip")
    no_phone = make_customer(name="无电话", level="vip", phone=None)
    services.optout_record(actor=None, customer_id=refuses.pk, channel="sms", source="回复TD")
    segment = services.segment_save(actor=records_officer, name="VIP", filters={"levels": ["vip"]})
    campaign = services.campaign_create(
        actor=records_officer,
        data={"name": "会员日", "template": birthday_sms.pk, "segment": segment.pk},
    )
    # when: launched; the worker queues and dispatches it
    with django_capture_on_commit_callbacks(execute=True):
        launch_confirmed(records_officer, campaign)
    # then
    statuses = dict(campaign.recipients.values_list("customer", "status"))
    assert statuses == {
        keen.pk: CampaignRecipient.Status.SENT,
        refuses.pk: CampaignRecipient.Status.OPTED_OUT,
        no_phone.pk: CampaignRecipient.Status.NO_ADDRESS,
    }
    assert list(OutboxMessage.objects.values_list("customer", flat=True)) == [keen.pk]
    assert refuses.events.filter(data__opt_out="sms").exists()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE


def test_a_retried_campaign_sends_nothing_twice(birthday_sms, records_officer):
    customers = [make_customer(name=f"客户{i}", level="vip") for i in range(5)]
    segment = services.segment_save(actor=records_officer, name="VIP", filters={"levels": ["vip"]})
    campaign = services.campaign_create(
        actor=records_officer,
        data={"name": "促销", "template": birthday_sms.pk, "segment": segment.pk},
    )
    launch_confirmed(records_officer, campaign)
    # when: the queue and the dispatch run again (a worker retried them)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    services.campaign_queue(campaign_id=campaign.pk)
    _run(campaign)
    _run(campaign)
    # then
    assert OutboxMessage.objects.count() == len(customers)
    assert campaign.recipients.count() == len(customers)
    with pytest.raises(Conflict):
        launch_confirmed(records_officer, campaign)


def test_the_rate_limit_holds(birthday_sms, records_officer, settings):
    # given: a gateway taking 10 messages a second and 25 recipients
    settings.CAMPAIGN_RATES = {"sms": 10}
    for i in range(25):
        make_customer(name=f"客户{i}", level="vip")
    segment = services.segment_save(actor=records_officer, name="VIP", filters={"levels": ["vip"]})
    campaign = services.campaign_create(
        actor=records_officer,
        data={"name": "限速", "template": birthday_sms.pk, "segment": segment.pk},
    )
    launch_confirmed(records_officer, campaign)
    services.campaign_queue(campaign_id=campaign.pk)
    # when: dispatching on a clock that only the sends and the waits move
    clock = {"t": 0.0}
    batches = []

    def sleep(seconds: float) -> None:
        clock["t"] += seconds

    original = services._outbox_batch

    def batch(campaign, limit, **kwargs):
        sent = original(campaign, limit, **kwargs)
        if sent:
            batches.append((clock["t"], sent))
        return sent

    services._outbox_batch = batch
    try:
        services.campaign_dispatch(
            campaign_id=campaign.pk, max_seconds=60, clock=lambda: clock["t"], sleep=sleep
        )
    finally:
        services._outbox_batch = original
    # then: no second holds more than 10 sends, and all 25 went out
    assert [n for _t, n in batches] == [10, 10, 5]
    starts = [t for t, _n in batches]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(starts))
    assert OutboxMessage.objects.count() == 25


def test_segment_filters_and_churn_rule(records_officer, store):
    # given
    vip = make_customer(name="VIP", level="vip", store=store)
    lapsed = make_customer(name="流失", level="normal")
    active = make_customer(name="活跃", level="normal")
    customer_touch(customer_id=lapsed.pk, on=dt.date(2026, 6, 1), purchase=True)
    customer_touch(customer_id=active.pk, on=dt.date(2026, 6, 1), purchase=True)
    customer_touch(customer_id=active.pk, on=dt.date(2026, 11, 1))  # a call since
    today = dt.date(2026, 11, 30)
    # when / then
    assert set(segment_customers({"levels": ["vip"], "stores": [store.pk]}, today=today)) == {vip}
    assert set(segment_customers({"churn_risk": True}, today=today)) == {lapsed}
    with pytest.raises(ValidationFailed) as exc:
        services.segment_save(
            actor=records_officer, name="", filters={"levels": ["gold"], "foo": 1}
        )
    assert set(exc.value.errors) == {"name", "levels", "foo"}


def test_holidays_public_and_lunar():
    assert festival_on(dt.date(2026, 9, 25)) == "中秋节"
    assert festival_on(dt.date(2027, 2, 6)) == "春节"
    assert festival_on(dt.date(2027, 2, 5)) == "除夕"
    assert festival_on(dt.date(2026, 10, 1)) == "国庆节"
    assert festival_on(dt.date(2026, 11, 30)) == ""


def test_holiday_greeting_once_per_festival(records_officer):
    MessageTemplate.objects.create(
        name="节日", gateway="sms", purpose="holiday", body="{name}，{holiday}快乐！"
    )
    make_customer(name="会员", status=Customer.Status.MEMBER)
    with time_machine.travel(at(2026, 9, 25, 9)):
        campaign = services.holiday_greetings_run(now=at(2026, 9, 25, 9))
        assert services.holiday_greetings_run(now=at(2026, 9, 25, 10)) is None
        _run(campaign)
    assert OutboxMessage.objects.get().body.startswith("会员，中秋节快乐！")


def test_benefit_given_once_per_occasion(agent):
    member = make_customer(name="会员", status=Customer.Status.MEMBER)
    services.benefit_record(actor=agent, customer_id=member.pk, kind="birthday", occasion="2026")
    with pytest.raises(Conflict):
        services.benefit_record(
            actor=agent, customer_id=member.pk, kind="birthday", occasion="2026"
        )


def test_test_send_goes_to_oneself(birthday_sms, records_officer):
    services.campaign_test_send(
        actor=records_officer, template_id=birthday_sms.pk, to="13800009999"
    )
    message = OutboxMessage.objects.get()
    assert message.to == "13800009999"
    assert message.subject.startswith("[")
    assert not OptOut.objects.exists()


def test_a_cancelled_campaign_sends_no_further_batch(birthday_sms, records_officer):
    for i in range(3):
        make_customer(name=f"客户{i}", level="vip")
    segment = services.segment_save(actor=records_officer, name="VIP", filters={"levels": ["vip"]})
    campaign = services.campaign_create(
        actor=records_officer,
        data={"name": "取消", "template": birthday_sms.pk, "segment": segment.pk},
    )
    launch_confirmed(records_officer, campaign)
    services.campaign_queue(campaign_id=campaign.pk)
    # when: cancelled before the worker's batch
    services.campaign_cancel(actor=records_officer, campaign_id=campaign.pk)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)  # a racing run
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CANCELLED)
    _run(campaign)
    # then
    assert not OutboxMessage.objects.exists()
    assert campaign.recipients.filter(status="pending").count() == 3


def test_messages_sent_go_on_the_customers_timeline(birthday_sms, records_officer):
    customer = make_customer(name="时间线", level="vip")
    segment = services.segment_save(actor=records_officer, name="VIP", filters={"levels": ["vip"]})
    campaign = services.campaign_create(
        actor=records_officer,
        data={"name": "时间线", "template": birthday_sms.pk, "segment": segment.pk},
    )
    launch_confirmed(records_officer, campaign)
    services.campaign_queue(campaign_id=campaign.pk)
    _run(campaign)
    event = customer.events.get(kind="message_sent")
    assert event.data["campaign"] == campaign.pk
    assert event.data["body"].startswith("时间线您好")
