"""The demo department's member care: store appointment hours, message templates, segments, a
monthly plan for key accounts, a birthday-greeting campaign sent to the outbox, the records
officer's lists and the store visits (demo.visits) — all through the services."""

import datetime as dt

from django.utils import timezone

from kefu.accounts.models import Store, User
from kefu.appointments.models import OpeningHours, StoreSchedule
from kefu.campaigns import services as campaigns
from kefu.campaigns.models import MessageTemplate
from kefu.demo.visits import visits_load
from kefu.followups.models import CareList, FollowUpPlan
from kefu.followups.services import care_list_build
from kefu.notifications.models import Notification

TEMPLATES = [
    {
        "name": "会员生日祝福",
        "gateway": "sms",
        "purpose": "birthday",
        "body": "{name}您好，今天是您的生日，{store}全体同仁祝您生日快乐、身体健康！{gift}",
        "gift": "生日当月凭本短信到{store}领取养生礼包一份。",
    },
    {
        "name": "节日问候",
        "gateway": "sms",
        "purpose": "holiday",
        "body": "{name}您好，{holiday}快乐！祝您和家人节日安康。",
    },
    {
        "name": "会员日促销",
        "gateway": "sms",
        "purpose": "promotion",
        "body": "{name}您好，本月会员日全场保健品满200减30，欢迎到{store}选购。",
    },
    {
        "name": "冬季养生提示",
        "gateway": "email",
        "purpose": "health_tip",
        "subject": "冬季养生小贴士",
        "body": "{name}您好：\n天气转凉，请注意保暖，早晚温差大时适当增减衣物；慢病会员请按时服药。",
    },
]
SEGMENTS = [
    ("VIP 会员", {"levels": ["vip", "key_account"], "statuses": ["member"]}),
    ("流失风险", {"churn_risk": True}),
    ("未来 7 天生日", {"birthday_within_days": 7}),
]


def care_load(*, seed: int, now: dt.datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    records = User.objects.get(username="records")
    stores = list(Store.objects.filter(is_active=True))
    for store in stores:
        StoreSchedule.objects.get_or_create(store=store, defaults={"capacity": 3})
        if not OpeningHours.objects.filter(store=store).exists():
            OpeningHours.objects.bulk_create(
                OpeningHours(store=store, weekday=d, opens_at=dt.time(9), closes_at=dt.time(21))
                for d in range(7)
            )
    for data in TEMPLATES:
        if not MessageTemplate.objects.filter(name=data["name"]).exists():
            campaigns.template_save(actor=records, data=data)
    segments = {}
    for name, filters in SEGMENTS:
        segments[name] = campaigns.segment_save(actor=records, name=name, filters=filters)
    FollowUpPlan.objects.get_or_create(
        name="大客户月度回访",
        defaults={"level": "key_account", "interval_days": 30, "assignee_role": "vip_specialist"},
    )
    # The records officer's Monday lists, handed over as follow-ups.
    lists = [care_list_build(actor=records, kind=kind, now=now) for kind in CareList.Kind.values]
    # A member-day message to the VIP segment, sent to the local outbox.
    campaign = campaigns.campaign_create(
        actor=records,
        data={
            "name": "会员日促销（演示）",
            "template": MessageTemplate.objects.get(name="会员日促销").pk,
            "segment": segments["VIP 会员"].pk,
        },
    )
    campaigns.campaign_launch(actor=records, campaign_id=campaign.pk, now=now)
    queued = campaigns.campaign_queue(campaign_id=campaign.pk, now=now)
    campaigns.campaign_dispatch(campaign_id=campaign.pk, sleep=lambda s: None)
    # Store visits: four weeks recorded by the stores, bookings for the coming days.
    visits = visits_load(seed=seed, now=now)
    # Like the other demo steps: what the services stamped with the clock carries the load's
    # moment (the store managers have read the booking notices).
    Notification.objects.filter(created_at__gt=now).update(created_at=now, read_at=now)
    return {
        "followups": sum(c.handed_over for c in lists),
        "campaign_recipients": queued,
        "appointments": visits["appointments"],
        "visits": visits["visits"],
        "visit_orders": visits["orders"],
    }
