"""The timeline reads follow-ups, messages sent and store appointments."""

import pytest

from kefu.customers.display import event_detail
from kefu.customers.models import CustomerEvent
from kefu.customers.tests.factories import make_customer

pytestmark = pytest.mark.django_db


def test_care_events_read_as_text():
    customer = make_customer()

    def line(kind, **data):
        return event_detail(CustomerEvent.objects.create(customer=customer, kind=kind, data=data))

    assert line("appointment_booked", store="人民路店", at="2026-12-01T07:00:00+00:00") == (
        "人民路店 · 2026-12-01 15:00"
    )
    assert line("appointment_visited", store="人民路店", purchase_amount="268.50") == (
        "人民路店 · ¥268.50"
    )
    assert "·" in line("followup_done", purpose="member_care", outcome="reached")
    assert line("message_sent", body="会员日提醒") == "会员日提醒"
    assert "sms" in line("updated", opt_out="sms")
