"""Merging two customer records moves their chats, calls, identities, appointments, opt-outs."""

import pytest

from kefu.campaigns.services import optout_record
from kefu.conversations.adapters import Inbound, Sender
from kefu.conversations.models import CallRecord, ChannelIdentity, Conversation
from kefu.conversations.services import call_record, message_receive
from kefu.customers.services import customer_merge
from kefu.tickets.tests.fixtures import at

pytestmark = pytest.mark.django_db
MONDAY_10 = at(2026, 11, 30, 10)


def test_merge_moves_chats_calls_and_opt_outs(web_chat, online_agent, manager):
    # given: the same person wrote twice as two visitors and called once
    first = message_receive(
        channel=web_chat,
        inbound=Inbound(sender=Sender(key="visitor:a"), body="在吗"),
        now=MONDAY_10,
    ).conversation
    second = message_receive(
        channel=web_chat,
        inbound=Inbound(sender=Sender(key="visitor:b"), body="你好"),
        now=MONDAY_10,
    ).conversation
    call, _ = call_record(actor=manager, data={"phone": "13812345678", "result": "missed"})
    optout_record(actor=None, customer_id=second.customer_id, channel="sms")
    # when
    customer_merge(actor=manager, target_id=first.customer_id, duplicate_id=second.customer_id)
    customer_merge(actor=manager, target_id=first.customer_id, duplicate_id=call.customer_id)
    # then: one open chat per channel stays, everything points to the survivor
    survivor = first.customer
    assert set(Conversation.objects.values_list("customer", flat=True)) == {survivor.pk}
    assert Conversation.objects.open().filter(customer=survivor, channel=web_chat).count() == 1
    assert CallRecord.objects.get().customer == survivor
    assert set(ChannelIdentity.objects.values_list("customer", flat=True)) == {survivor.pk}
    assert survivor.opt_outs.filter(channel="sms").exists()
