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
