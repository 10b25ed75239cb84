"""The demo department's member care: store appointment hours, message templates, segments, a
monthly plan for key accounts, a birthday-greeting campaign sent to the outbox, the records
officer's lists and the store visits (demo.visits) — all through the services."""

import datetime as dt
import random

from django.utils import timezone

from kefu.accounts.models import Store, User
from kefu.appointments.models import OpeningHours, StoreSchedule
from kefu.campaigns import services as campaigns
from kefu.campaigns.models import Campaign, MessageTemplate
from kefu.campaigns.selectors import campaign_estimate
from kefu.customers.models import CustomerEvent
from kefu.demo.visits import visits_load
from kefu.followups.models import CareList, FollowUp, FollowUpPlan
from kefu.followups.services import care_list_build, followup_complete
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
    rng = random.Random(seed)
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
    # The calls that fell due before today were made on their day; then the records officer's
    # lists are handed over, each call due by its occasion or spread within capacity.
    worked = _followups_worked_until_today(rng, now=now)
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
    # She confirms the recipients the page shows; a large audience goes to a manager first.
    estimate = campaign_estimate(campaign, now=now)
    launched = campaigns.campaign_launch(
        actor=records, campaign_id=campaign.pk, confirm_count=estimate.recipients, now=now
    )
    if launched.status == Campaign.Status.AWAITING_APPROVAL:
        manager = User.objects.filter(role="manager", is_active=True).order_by("pk").first()
        campaigns.campaign_approve(actor=manager, campaign_id=campaign.pk, now=now)
    queued = campaigns.campaign_queue(campaign_id=campaign.pk, now=now)
    campaigns.campaign_dispatch(campaign_id=campaign.pk, sleep=lambda s: None)
    # Store visits: four weeks recorded by the stores, bookings for the coming days.
    visits = visits_load(seed=seed, now=now)
    # Like the other demo steps: what the services stamped with the clock carries the load's
    # moment (the store managers have read the booking notices).
    Notification.objects.filter(created_at__gt=now).update(created_at=now, read_at=now)
    return {
        "followups": sum(c.handed_over for c in lists),
        "followups_worked": worked,
        "campaign_recipients": queued,
        "appointments": visits["appointments"],
        "visits": visits["visits"],
        "visit_orders": visits["orders"],
    }


# How the calls of the past went: most customers are reached, some not (the rule tries again).
OUTCOMES = [
    (FollowUp.Outcome.REACHED, 0.8, "已联系顾客，情况已了解并记录"),
    (FollowUp.Outcome.NOT_REACHED, 0.15, "电话无人接听"),
    (FollowUp.Outcome.REFUSED, 0.05, "顾客表示不需要回访"),
]


def _followups_worked_until_today(rng: random.Random, *, now: dt.datetime) -> int:
    """The department made its calls: every follow-up due before today (aftercare of last
    month's complaints, callbacks, the retries they lead to) is recorded by its assignee within
    two hours of its due time, so the day starts with today's calls, not a backlog. What the
    service stamps with the clock carries the call's moment."""
    start_of_today = dt.datetime.combine(
        timezone.localdate(now), dt.time.min, tzinfo=timezone.get_current_timezone()
    )
    worked = 0
    for _pass in range(10):  # retries of retries; each purpose's rule stops after a few
        due = list(
            FollowUp.objects.open()
            .filter(due_at__lt=start_of_today)
            .select_related("assignee")
            .order_by("due_at", "id")
        )
        if not due:
            break
        for followup in due:
            outcome, _weight, note = rng.choices(OUTCOMES, weights=[w for _o, w, _n in OUTCOMES])[0]
            moment = min(followup.due_at + dt.timedelta(minutes=rng.randint(5, 120)), now)
            mark = timezone.now()
            followup_complete(
                actor=followup.assignee,
                followup_id=followup.pk,
                outcome=outcome,
                outcome_note=note,
                now=moment,
            )
            CustomerEvent.objects.filter(created_at__gte=mark).update(created_at=moment)
            FollowUp.objects.filter(created_at__gte=mark).update(created_at=moment)
            FollowUp.objects.filter(updated_at__gte=mark).update(updated_at=moment)
            worked += 1
    return worked
