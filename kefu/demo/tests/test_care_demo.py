"""The demo's member care: templates, segments, the lists, a sent campaign, store visits."""

from io import StringIO

import pytest
from django.core.management import call_command

from kefu.appointments.models import Appointment, OpeningHours
from kefu.campaigns.models import Campaign, MessageTemplate, OutboxMessage, Segment
from kefu.followups.models import CareList, FollowUpPlan

pytestmark = pytest.mark.django_db


def test_demo_loads_member_care_and_store_visits():
    out = StringIO()
    call_command("demo", customers=300, seed=3, stdout=out)
    assert MessageTemplate.objects.filter(purpose="birthday").exists()
    assert set(Segment.objects.values_list("name", flat=True)) >= {"VIP 会员", "流失风险"}
    assert FollowUpPlan.objects.filter(level="key_account").exists()
    assert CareList.objects.count() == len(CareList.Kind.values)
    campaign = Campaign.objects.get()
    assert campaign.status == Campaign.Status.DONE
    assert OutboxMessage.objects.filter(recipient__campaign=campaign).exists()
    assert OpeningHours.objects.exists()
    assert Appointment.objects.filter(status=Appointment.Status.BOOKED).exists()
    assert "store visits booked" in out.getvalue()


def test_demo_starts_the_day_with_todays_calls_not_a_backlog():
    """The calls due before today were made; the lists' calls are due by their occasion or
    spread over the coming working days, nobody over their calls a day."""
    import datetime as dt
    from collections import Counter

    from django.utils import timezone

    from kefu.followups.models import FollowUp
    from kefu.followups.services import followup_rule

    call_command("demo", customers=300, seed=3, stdout=StringIO())
    now = timezone.now()
    start_of_today = dt.datetime.combine(
        timezone.localdate(now), dt.time.min, tzinfo=timezone.get_current_timezone()
    )
    open_calls = FollowUp.objects.open()
    assert open_calls.exists()
    assert not open_calls.filter(due_at__lt=start_of_today).exists()
    assert open_calls.filter(due_at__lt=now).count() <= 10
    assert FollowUp.objects.filter(status="done", completed_at__lt=start_of_today).exists()
    key_accounts = open_calls.filter(care_list__kind=CareList.Kind.KEY_ACCOUNTS)
    per_day = Counter(
        (f.assignee_id, timezone.localdate(f.due_at))
        for f in key_accounts.only("assignee", "due_at")
    )
    assert per_day
    assert max(per_day.values()) <= followup_rule("member_care").calls_per_day
    from kefu.customers.selectors import celebrated_on

    today = timezone.localdate(now)
    birthdays = open_calls.filter(purpose="birthday_greeting").select_related("customer")
    assert birthdays.exists()
    for greeting in birthdays:
        birthday = greeting.customer.birthday
        celebrated = min(
            celebrated_on(birthday, year)
            for year in (today.year, today.year + 1)
            if celebrated_on(birthday, year) >= today
        )
        assert today <= timezone.localdate(greeting.due_at) <= celebrated
