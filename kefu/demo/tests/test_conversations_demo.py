"""`kefu demo` consultations: the online queue, its channels, the team's quick replies, and two
weeks of chats and hotline calls played through the conversation services."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command

from kefu.businesstime.selectors import work_calendar_get
from kefu.conversations.models import (
    AgentStatus,
    CallRecord,
    Channel,
    Conversation,
    ConversationEvent,
    InboxQueue,
    Message,
    QuickReply,
)
from kefu.customers.imports import customer_import_rows
from kefu.customers.models import Customer
from kefu.demo import conversations as demo_conversations
from kefu.demo import data
from kefu.followups.models import FollowUp
from kefu.tickets.tests.fixtures import at

pytestmark = pytest.mark.django_db

# A Tuesday afternoon: the outcome of a load up to a fixed moment does not depend on the day.
NOW = at(2026, 11, 24, 16, 20)


@pytest.fixture
def department():
    """The demo department and 300 customers, without tickets or chats."""
    data.department_create()
    customer_import_rows(actor=None, rows=data.customer_rows(seed=1, count=300), commit=True)


def counts() -> dict[str, int]:
    return {
        "queues": InboxQueue.objects.count(),
        "channels": Channel.objects.count(),
        "quick_replies": QuickReply.objects.count(),
        "conversations": Conversation.objects.count(),
        "messages": Message.objects.count(),
        "events": ConversationEvent.objects.count(),
        "calls": CallRecord.objects.count(),
        "callbacks": FollowUp.objects.count(),
        "customers": Customer.objects.count(),
    }


def test_chats_and_calls_are_played_through_the_services(department):
    """Chats on every kind of channel end with a record and often a rating; a few are still
    going on; missed calls are called back; everything is dated within the last two weeks."""
    done = demo_conversations.conversations_load(seed=1, count=16, calls=10, now=NOW)

    assert done["conversations"] == Conversation.objects.count() == 16
    closed = Conversation.objects.filter(status=Conversation.Status.CLOSED)
    assert closed.count() >= 10
    assert not closed.filter(topic="").exists()
    assert set(closed.values_list("outcome", flat=True)) <= set(Conversation.Outcome.values)
    assert closed.exclude(rating=None).exists()
    assert Conversation.objects.exclude(status=Conversation.Status.CLOSED).exists()
    assert Conversation.objects.values("channel").distinct().count() >= 3
    for conversation in Conversation.objects.prefetch_related("messages"):
        directions = [m.direction for m in conversation.messages.all()]
        assert directions[0] == Message.Direction.IN
        assert conversation.events.filter(kind=ConversationEvent.Kind.CREATED).exists()
    assert Message.objects.filter(is_automatic=True).exists()  # greetings and away replies
    assert Message.objects.filter(author__username__in=demo_conversations.ONLINE_AGENTS).exists()
    # No provider can confirm the demo's sends: nothing is left for the worker to deliver.
    assert not Message.objects.filter(status=Message.Status.QUEUED).exists()
    earliest = NOW - dt.timedelta(days=demo_conversations.DAYS + 1)
    assert all(earliest <= m.created_at <= NOW for m in Message.objects.all())
    assert all(earliest <= c.created_at <= NOW for c in Conversation.objects.all())

    calls = CallRecord.objects.all()
    assert calls.filter(direction=CallRecord.Direction.IN).count() == 10
    missed = calls.exclude(result=CallRecord.Result.ANSWERED).filter(
        direction=CallRecord.Direction.IN
    )
    assert missed.exists()
    assert all(c.callback_id for c in missed)
    called_back = calls.filter(direction=CallRecord.Direction.OUT)
    assert called_back.count() == FollowUp.objects.exclude(completed_at=None).count() >= 1
    # Nobody is logged in once the demo is loaded.
    assert not AgentStatus.objects.exclude(status=AgentStatus.Status.OFFLINE).exists()


def test_configuration_has_the_channels_queue_and_quick_replies(department):
    demo_conversations.conversations_load(seed=1, count=2, calls=0, now=NOW)

    queue = InboxQueue.objects.get(name="在线咨询")
    assert sorted(queue.members.values_list("username", flat=True)) == (
        demo_conversations.ONLINE_AGENTS
    )
    channels = {c.code: c for c in Channel.objects.all()}
    assert {code: c.kind for code, c in channels.items()} == {
        "site": Channel.Kind.WEB_CHAT,
        "wechat": Channel.Kind.WECHAT,
        "mail": Channel.Kind.EMAIL,
        "qq": Channel.Kind.WEBHOOK,
        "hotline": Channel.Kind.PHONE,
    }
    assert channels["site"].name == "官网在线咨询"
    assert channels["site"].greeting
    assert channels["site"].away_message
    assert channels["wechat"].setting("token") == "kefu-demo-token"
    assert channels["wechat"].setting("appid") == ""
    assert channels["mail"].setting("address") == "service@kefu.localhost"
    assert channels["qq"].platform == "QQ"
    assert channels["qq"].setting("secret") == "kefu-demo-secret"
    replies = {r.shortcut: r for r in QuickReply.objects.all()}
    assert sorted(replies) == ["bye", "hi", "hours", "order", "wait"]
    assert all(r.owner_id is None for r in replies.values())
    assert "{customer_name}" in replies["hi"].body
    assert "{order_no}" in replies["order"].body


def test_the_demo_says_nothing_vague():
    """000 在线咨询规范 8: never 差不多 or 不清楚 in an answer."""
    texts = [body for _s, _t, body in demo_conversations.QUICK_REPLIES]
    texts += [
        text
        for chat in [*demo_conversations.CHATS, *demo_conversations.OPEN_CHATS]
        for kind, text in chat.lines
        if kind != demo_conversations.C
    ]
    texts += [c.greeting + c.away_message for c in demo_conversations.CHANNELS]
    assert not [t for t in texts if "差不多" in t or "不清楚" in t]


def test_loading_again_adds_nothing_twice(department):
    """The same seed again: the configuration, chats and calls are there already."""
    demo_conversations.conversations_load(seed=1, count=6, calls=4, now=NOW)
    first = counts()

    done = demo_conversations.conversations_load(seed=1, count=6, calls=4, now=NOW)

    assert counts() == first
    assert done["conversations"] == 0
    assert first["conversations"] == 6
    assert first["quick_replies"] == len(demo_conversations.QUICK_REPLIES)


def test_same_seed_gives_the_same_chats(department):
    """Channels, customers, what is said and when come from the seed alone."""
    customers = demo_conversations._customers()

    def story(seed: int):
        planner = demo_conversations.Planner(
            seed=seed,
            now=NOW,
            calendar=work_calendar_get(),
            customers=customers,
            stores=["人民路店", "解放路店"],
        )
        plans, steps = planner.chats(20)
        return [(p.channel, p.sender, p.chat.topic) for p in plans], [
            (s.at, s.action, s.plan.index) for s in steps
        ]

    first = story(5)
    assert story(5) == first
    assert story(6) != first
    assert all(at_ <= NOW for at_, _a, _i in first[1])


def test_demo_command_loads_chats_after_the_tickets():
    """One chat per 80 customers, half as many calls; a small demo adds no customer."""
    out = StringIO()
    call_command("demo", customers=400, tickets=4, stdout=out)

    assert Conversation.objects.count() == 5
    assert CallRecord.objects.filter(direction=CallRecord.Direction.IN).count() == 2
    assert Customer.objects.count() == 400
    assert "4 tickets, 5 chats, 2 calls" in out.getvalue()


def test_demo_without_tickets_loads_no_chats():
    """--tickets 0 loads the department and its customers alone."""
    call_command("demo", customers=400, tickets=0, stdout=StringIO())

    assert not Conversation.objects.exists()
    assert not Channel.objects.exists()


def test_offline_messages_left_at_night_go_to_the_first_agent_online(department):
    """Loaded at 23:10 (issue 10): the last chats of the evening wait as offline messages. The
    hotline's agent01, of no chat queue, goes online: after the queue's overflow time the chats
    are theirs, offline messages first, not left waiting in 等待中."""
    from kefu.accounts.models import User
    from kefu.conversations.services import agent_status_set

    night = at(2026, 11, 24, 23, 10)
    demo_conversations.conversations_load(seed=1, count=16, calls=0, now=night)
    unassigned = Conversation.objects.filter(status=Conversation.Status.QUEUED, assignee=None)
    waiting = list(unassigned.all())
    assert len(waiting) == 3
    assert all(c.is_offline for c in waiting)
    agent01 = User.objects.get(username="agent01")
    assert not agent01.inbox_queues.exists()
    # when
    agent_status_set(actor=agent01, status="online", now=night + dt.timedelta(minutes=1))
    # then
    assert not unassigned.exists()
    assert {c.assignee_id for c in Conversation.objects.filter(pk__in=[c.pk for c in waiting])} == {
        agent01.pk
    }
