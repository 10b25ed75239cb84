"""Consultations: receiving, routing, answering, the 000 rules, closing and rating."""

import datetime as dt

import pytest
from django.db import connection, transaction

from kefu.accounts.tests.factories import UserFactory
from kefu.audit.models import AuditEntry
from kefu.conversations import services
from kefu.conversations.adapters import Inbound, Sender
from kefu.conversations.models import (
    AgentStatus,
    CallRecord,
    Conversation,
    ConversationEvent,
    InboxQueue,
    Message,
    QuickReply,
)
from kefu.conversations.services import (
    agent_status_set,
    call_record,
    conversation_close,
    conversation_rate,
    conversation_timers_run,
    conversation_transfer,
    conversation_wait_check,
    conversations_hand_out,
    message_receive,
    message_send,
    note_add,
    quick_reply_render,
    quick_reply_save,
)
from kefu.core.exceptions import Conflict, Forbidden, NotFound, ValidationFailed
from kefu.customers.models import CustomerEvent
from kefu.followups.models import FollowUp
from kefu.notifications.models import Notification
from kefu.tickets.models import Ticket, TicketEvent
from kefu.tickets.tests.fixtures import at

MONDAY_10 = at(2026, 11, 30, 10)
pytestmark = pytest.mark.django_db


def _say(channel, body, *, key="visitor:abc", external_id="", now=MONDAY_10, **sender):
    return message_receive(
        channel=channel,
        inbound=Inbound(sender=Sender(key=key, **sender), body=body, external_id=external_id),
        now=now,
    )


def test_first_message_opens_a_conversation_routed_and_greeted(web_chat, online_agent):
    # when
    received = _say(web_chat, "在吗？", name="张女士", phone="13812345678")
    # then
    conversation = received.conversation
    assert received.created
    assert conversation.status == Conversation.Status.OPEN
    assert conversation.assignee == online_agent
    assert conversation.customer.name == "张女士"
    assert conversation.customer.contacts.get().value == "+8613812345678"
    assert conversation.waiting_since == MONDAY_10
    assert [m.body for m in received.automatic] == [web_chat.greeting]
    assert conversation.greeted_at == MONDAY_10
    assert CustomerEvent.objects.filter(
        customer=conversation.customer, kind=CustomerEvent.Kind.CONVERSATION_STARTED
    ).exists()


def test_next_messages_join_the_open_conversation_and_retries_are_stored_once(
    web_chat, online_agent
):
    first = _say(web_chat, "在吗？", external_id="m1")
    # when: the same message again, then a new one
    again = _say(web_chat, "在吗？", external_id="m1")
    second = _say(web_chat, "想问下营业时间", external_id="m2")
    # then
    assert not again.created
    assert again.message.pk == first.message.pk
    assert second.conversation.pk == first.conversation.pk
    assert Message.objects.filter(direction=Message.Direction.IN).count() == 2


def test_known_phone_matches_the_existing_customer(web_chat, online_agent):
    first = _say(web_chat, "你好", key="visitor:1", name="李先生", phone="13900001111")
    # when: another visitor gives the same phone
    other = _say(web_chat, "你好", key="visitor:2", name="李", phone="139 0000 1111")
    # then
    assert other.conversation.customer == first.conversation.customer


def test_no_agent_online_sends_the_away_reply_and_marks_an_offline_message(web_chat, second_agent):
    received = _say(web_chat, "有人吗")
    conversation = received.conversation
    assert conversation.status == Conversation.Status.QUEUED
    assert conversation.is_offline
    assert received.automatic[0].body == f"{web_chat.greeting}\n{web_chat.away_message}"
    # when: an agent comes online
    agent_status_set(actor=second_agent, status=AgentStatus.Status.ONLINE, now=MONDAY_10)
    # then: the offline message is handed to them
    conversation.refresh_from_db()
    assert conversation.assignee == second_agent


def test_outside_business_hours_the_away_reply_is_sent(web_chat, online_agent):
    received = _say(web_chat, "在吗", now=at(2026, 11, 30, 21))
    assert web_chat.away_message in received.automatic[0].body


def test_offline_messages_are_handed_out_first(web_chat, second_agent):
    late = _say(web_chat, "晚上好", key="visitor:late", now=at(2026, 11, 29, 22))
    AgentStatus.objects.filter(user=second_agent).update(capacity=1)
    assert late.conversation.is_offline
    agent_status_set(actor=second_agent, status=AgentStatus.Status.ONLINE, now=MONDAY_10)
    late.conversation.refresh_from_db()
    assert late.conversation.assignee == second_agent


def test_least_busy_assignment(web_chat, online_agent, second_agent):
    AgentStatus.objects.filter(user=second_agent).update(status=AgentStatus.Status.ONLINE)
    a = _say(web_chat, "1", key="visitor:a").conversation
    b = _say(web_chat, "2", key="visitor:b").conversation
    assert {a.assignee, b.assignee} == {online_agent, second_agent}


def test_capacity_full_leaves_the_chat_waiting(web_chat, online_agent):
    AgentStatus.objects.filter(user=online_agent).update(capacity=1)
    _say(web_chat, "1", key="visitor:a")
    second = _say(web_chat, "2", key="visitor:b").conversation
    assert second.status == Conversation.Status.QUEUED
    assert second.assignee is None


def test_agent_answer_clears_the_wait_and_counts_first_response(web_chat, online_agent):
    conversation = _say(web_chat, "在吗").conversation
    # when
    reply = message_send(
        actor=online_agent,
        conversation_id=conversation.pk,
        body="您好",
        now=at(2026, 11, 30, 10, 0),
    )
    # then
    conversation.refresh_from_db()
    assert reply.status == Message.Status.SENT  # web chat: the socket delivers it
    assert conversation.waiting_since is None
    assert conversation.first_response_at is not None


def test_another_agent_cannot_answer_but_the_supervisor_can(
    web_chat, online_agent, second_agent, chat_supervisor
):
    conversation = _say(web_chat, "在吗").conversation
    with pytest.raises(Forbidden):
        message_send(actor=second_agent, conversation_id=conversation.pk, body="我来")
    message_send(actor=chat_supervisor, conversation_id=conversation.pk, body="主管回复")


def test_empty_answer_names_the_field(web_chat, online_agent):
    conversation = _say(web_chat, "在吗").conversation
    with pytest.raises(ValidationFailed) as exc:
        message_send(actor=online_agent, conversation_id=conversation.pk, body="  ")
    assert "body" in exc.value.errors


def test_notes_are_not_customer_messages(web_chat, online_agent):
    conversation = _say(web_chat, "在吗").conversation
    note = note_add(actor=online_agent, conversation_id=conversation.pk, body="老客户，态度急")
    assert note.direction == Message.Direction.NOTE
    assert not note.is_visible_to_customer


def test_wait_alerts_agent_after_60s_then_supervisor(web_chat, online_agent, chat_supervisor):
    conversation = _say(web_chat, "在吗").conversation
    assert (
        conversation_wait_check(conversation_id=conversation.pk, now=at(2026, 11, 30, 10, 0, 59))
        == 0
    )
    # when: a minute passes
    assert (
        conversation_wait_check(conversation_id=conversation.pk, now=at(2026, 11, 30, 10, 1)) == 1
    )
    assert Notification.objects.filter(recipient=online_agent, kind="conversation_waiting").exists()
    assert not Notification.objects.filter(recipient=chat_supervisor).exists()
    # when: two minutes, through the periodic pass
    assert conversation_timers_run(now=at(2026, 11, 30, 10, 2)) == 1
    assert (
        Notification.objects.filter(recipient=chat_supervisor, kind="conversation_waiting").count()
        == 1
    )
    # then: nothing fires twice
    assert conversation_timers_run(now=at(2026, 11, 30, 10, 5)) == 0
    assert ConversationEvent.objects.filter(kind=ConversationEvent.Kind.WAIT_ALERT).count() == 2


def test_transfer_to_agent_and_to_queue(web_chat, online_agent, second_agent, chat_queue):
    conversation = _say(web_chat, "在吗").conversation
    conversation_transfer(
        actor=online_agent,
        conversation_id=conversation.pk,
        agent_id=second_agent.pk,
        note="售后问题",
    )
    conversation.refresh_from_db()
    assert conversation.assignee == second_agent
    with pytest.raises(Forbidden):
        conversation_transfer(
            actor=online_agent, conversation_id=conversation.pk, agent_id=online_agent.pk
        )
    conversation_transfer(
        actor=second_agent, conversation_id=conversation.pk, queue_id=chat_queue.pk
    )
    conversation.refresh_from_db()
    assert conversation.assignee == online_agent  # routed again: the only online agent


def test_close_records_the_consultation_and_the_customer_rates(web_chat, online_agent):
    conversation = _say(web_chat, "想预约到店").conversation
    message_send(actor=online_agent, conversation_id=conversation.pk, body="好的")
    with pytest.raises(ValidationFailed) as exc:
        conversation_close(
            actor=online_agent, conversation_id=conversation.pk, topic="", outcome="x"
        )
    assert set(exc.value.errors) == {"topic", "outcome"}
    conversation_close(
        actor=online_agent,
        conversation_id=conversation.pk,
        topic="预约到店",
        outcome=Conversation.Outcome.APPOINTMENT,
        now=at(2026, 11, 30, 10, 10),
    )
    conversation.refresh_from_db()
    assert conversation.is_closed
    assert conversation.messages.filter(data__survey=True).exists()
    # when
    conversation_rate(conversation_id=conversation.pk, rating=5, comment="很耐心")
    # then
    conversation.refresh_from_db()
    assert (conversation.rating, conversation.rated_agent) == (5, online_agent)
    with pytest.raises(Conflict):
        conversation_rate(conversation_id=conversation.pk, rating=1)
    # a new message after closing starts a new conversation
    assert _say(web_chat, "还有个问题").conversation.pk != conversation.pk


def test_rating_out_of_range_names_the_field(web_chat, online_agent):
    conversation = _say(web_chat, "在吗").conversation
    with pytest.raises(ValidationFailed) as exc:
        conversation_rate(conversation_id=conversation.pk, rating=6)
    assert "rating" in exc.value.errors


def test_missed_call_creates_a_callback_due_at_once(agent):
    call, created = call_record(
        actor=agent,
        data={"phone": "13812345678", "result": "missed", "external_id": "cdr-1"},
        now=MONDAY_10,
    )
    assert created
    assert call.callback.purpose == FollowUp.Purpose.PROMISED_CALLBACK
    assert call.callback.due_at == MONDAY_10
    assert call.callback.assignee == agent
    again, created_again = call_record(
        actor=agent, data={"phone": "13812345678", "result": "missed", "external_id": "cdr-1"}
    )
    assert not created_again
    assert again.pk == call.pk
    assert FollowUp.objects.count() == 1
    assert CustomerEvent.objects.filter(kind=CustomerEvent.Kind.CALL_RECORDED).count() == 1


def test_answered_call_has_no_callback_and_bad_input_names_fields(agent):
    call, _ = call_record(
        actor=agent, data={"phone": "13812345678", "result": "answered"}, now=MONDAY_10
    )
    assert call.callback is None
    assert call.agent == agent
    with pytest.raises(ValidationFailed) as exc:
        call_record(actor=agent, data={"phone": "", "result": "maybe", "recording_url": "ftp://x"})
    assert set(exc.value.errors) == {"phone", "result", "recording_url"}
    assert CallRecord.objects.count() == 1


def test_quick_reply_variables(web_chat, online_agent):
    reply = quick_reply_save(
        actor=online_agent,
        data={"shortcut": "/hi", "title": "问候", "body": "{customer_name}您好，我是{agent_name}"},
    )
    conversation = _say(web_chat, "在吗", name="张女士").conversation
    assert (
        quick_reply_render(reply, conversation=conversation, agent=online_agent)
        == "张女士您好，我是小王"
    )
    with pytest.raises(ValidationFailed) as exc:
        quick_reply_save(
            actor=online_agent, data={"shortcut": "hi there!", "title": "x", "body": "{foo}"}
        )
    assert set(exc.value.errors) == {"shortcut", "body"}


def test_a_failed_delivery_is_queued_again_until_the_last_attempt(online_agent, chat_queue):
    """A provider failure puts the message back in the queue for the task's retry; the last
    attempt marks it failed. The provider is called outside any transaction."""
    from kefu.conversations.models import Channel
    from kefu.conversations.services import DeliveryRetry, message_deliver

    hook = Channel.objects.create(
        kind=Channel.Kind.WEBHOOK,
        code="qq",
        name="QQ",
        queue=chat_queue,
        config={"secret": "s", "outbound_url": "http://127.0.0.1:9/nowhere"},
    )
    conversation = message_receive(
        channel=hook, inbound=Inbound(sender=Sender(key="qq:1"), body="在吗"), now=MONDAY_10
    ).conversation
    reply = Message.objects.create(
        conversation=conversation,
        channel=hook,
        direction=Message.Direction.OUT,
        body="您好",
        author=online_agent,
        status=Message.Status.QUEUED,
    )
    with pytest.raises(DeliveryRetry):
        message_deliver(message_id=reply.pk, final=False)
    reply.refresh_from_db()
    assert reply.status == Message.Status.QUEUED
    assert "127.0.0.1:9" in reply.error
    message_deliver(message_id=reply.pk, final=True)
    reply.refresh_from_db()
    assert reply.status == Message.Status.FAILED
    # a failed or sent message is never handed to the provider again
    assert message_deliver(message_id=reply.pk).status == Message.Status.FAILED


# --- Handing out waiting chats (000 在线咨询规范 2) ----------------------------------------------


def test_going_online_hands_out_offline_messages_first_then_the_longest_waiting(
    web_chat, chat_queue, second_agent
):
    # given: two offline messages from the night; an agent for one chat at a time takes the
    # first at 09:25, and two chats queue behind them
    night = _say(web_chat, "晚上好", key="visitor:n1", now=at(2026, 11, 29, 22)).conversation
    later_night = _say(web_chat, "在吗", key="visitor:n2", now=at(2026, 11, 29, 23)).conversation
    busy = UserFactory(username="busy", role="agent")
    chat_queue.members.add(busy)
    agent_status_set(actor=busy, status="online", capacity=1, now=at(2026, 11, 30, 9, 25))
    first = _say(web_chat, "请问", key="visitor:first", now=at(2026, 11, 30, 9, 40)).conversation
    later = _say(web_chat, "有人吗", key="visitor:later", now=at(2026, 11, 30, 9, 50)).conversation
    night.refresh_from_db()
    assert night.assignee == busy
    assert later_night.is_offline
    assert not first.is_offline
    # when: an agent with room for two comes online
    agent_status_set(actor=second_agent, status="online", capacity=2, now=MONDAY_10)
    # then: the offline message, then the chat waiting longest; the last one still waits
    for conversation in (later_night, first, later):
        conversation.refresh_from_db()
    assert [later_night.assignee, first.assignee, later.assignee] == [
        second_agent,
        second_agent,
        None,
    ]
    assert later.status == Conversation.Status.QUEUED


def test_closing_a_chat_hands_the_freed_place_to_the_next_waiting(web_chat, online_agent):
    # given: the agent takes one chat at a time; two more wait, the older one an offline message
    AgentStatus.objects.filter(user=online_agent).update(capacity=1)
    current = _say(web_chat, "在吗", key="visitor:now", now=at(2026, 11, 30, 9, 55)).conversation
    waiting = _say(web_chat, "请问", key="visitor:wait", now=at(2026, 11, 30, 9, 57)).conversation
    offline = _say(web_chat, "留言", key="visitor:off", now=at(2026, 11, 30, 9, 58)).conversation
    Conversation.objects.filter(pk=offline.pk).update(is_offline=True)
    assert current.assignee == online_agent
    assert waiting.assignee is None
    assert offline.assignee is None
    # when: the agent closes the current chat
    conversation_close(
        actor=online_agent,
        conversation_id=current.pk,
        topic="营业时间",
        outcome=Conversation.Outcome.ANSWERED,
        now=MONDAY_10,
    )
    # then: the offline message goes to the agent at once; the other chat still waits its turn
    offline.refresh_from_db()
    waiting.refresh_from_db()
    assert (offline.assignee, offline.status) == (online_agent, Conversation.Status.OPEN)
    assert waiting.assignee is None
    assert offline.events.filter(kind=ConversationEvent.Kind.ASSIGNED, actor=None).exists()


def test_transferring_a_chat_away_frees_the_place_for_the_next_waiting(
    web_chat, online_agent, second_agent
):
    # given: a full agent with a chat waiting behind them
    AgentStatus.objects.filter(user=online_agent).update(capacity=1)
    current = _say(web_chat, "退货", key="visitor:now", now=at(2026, 11, 30, 9, 55)).conversation
    waiting = _say(web_chat, "请问", key="visitor:wait", now=at(2026, 11, 30, 9, 57)).conversation
    # when: the agent hands the current chat to a colleague
    conversation_transfer(
        actor=online_agent, conversation_id=current.pk, agent_id=second_agent.pk, now=MONDAY_10
    )
    # then: the waiting chat takes the freed place
    waiting.refresh_from_db()
    assert waiting.assignee == online_agent


def test_raising_capacity_hands_out_waiting_chats(web_chat, online_agent):
    # given
    AgentStatus.objects.filter(user=online_agent).update(capacity=1)
    _say(web_chat, "一", key="visitor:1")
    second = _say(web_chat, "二", key="visitor:2").conversation
    assert second.assignee is None
    # when
    agent_status_set(actor=online_agent, status="online", capacity=2, now=MONDAY_10)
    # then
    second.refresh_from_db()
    assert second.assignee == online_agent


def test_a_queue_with_nobody_free_overflows_to_any_online_agent_after_its_time(
    web_chat, chat_queue, second_agent
):
    """agent01 of the hotline team is online; the online team is not: after the queue's
    overflow time (two minutes by default) its waiting chats go to agent01."""
    # given: an offline message in the online team's queue; its only member is offline
    assert chat_queue.overflow_after == 120
    left = _say(web_chat, "有人吗", key="visitor:left", now=at(2026, 11, 30, 9, 20)).conversation
    hotline = UserFactory(username="agent01", role="agent", display_name="张敏")
    # when: an agent of no queue comes online 40 minutes later
    agent_status_set(actor=hotline, status="online", now=MONDAY_10)
    # then
    left.refresh_from_db()
    assert left.assignee == hotline
    assert left.events.get(kind=ConversationEvent.Kind.ASSIGNED).data["overflow"] is True


def test_a_chat_overflows_only_after_the_queue_time_and_members_come_first(
    web_chat, chat_queue, second_agent
):
    # given: a non-member is online; the queue's member is offline
    hotline = UserFactory(username="agent01", role="agent")
    agent_status_set(actor=hotline, status="online", now=MONDAY_10)
    fresh = _say(web_chat, "在吗", key="visitor:fresh", now=MONDAY_10).conversation
    # then: a new chat waits for its queue (the customer is not told nobody is there)
    assert fresh.assignee is None
    assert not fresh.is_offline
    assert conversations_hand_out(now=at(2026, 11, 30, 10, 1, 59)) == 0
    # when: a member comes online within the overflow time, they get it
    agent_status_set(actor=second_agent, status="online", now=at(2026, 11, 30, 10, 1))
    fresh.refresh_from_db()
    assert fresh.assignee == second_agent


def test_the_sweep_overflows_a_chat_once_its_queue_time_has_passed(web_chat, chat_queue):
    # given
    hotline = UserFactory(username="agent01", role="agent")
    agent_status_set(actor=hotline, status="online", now=MONDAY_10)
    fresh = _say(web_chat, "在吗", key="visitor:fresh", now=MONDAY_10).conversation
    # when: the worker's pass two minutes later
    assert conversations_hand_out(now=at(2026, 11, 30, 10, 1, 59)) == 0
    assert conversations_hand_out(now=at(2026, 11, 30, 10, 2)) == 1
    # then
    fresh.refresh_from_db()
    assert fresh.assignee == hotline


def test_a_queue_without_overflow_keeps_its_chats_for_its_own_agents(web_chat, chat_queue):
    # given: a skill queue that never overflows
    chat_queue.overflow_after = None
    chat_queue.save()
    left = _say(web_chat, "会员积分", key="visitor:vip", now=at(2026, 11, 30, 9)).conversation
    hotline = UserFactory(username="agent01", role="agent")
    # when
    agent_status_set(actor=hotline, status="online", now=MONDAY_10)
    conversations_hand_out(now=at(2026, 11, 30, 12))
    # then
    left.refresh_from_db()
    assert left.assignee is None


def test_the_sweep_hands_out_chats_no_trigger_reached(web_chat, online_agent, second_agent):
    """A status written past the services (an import, an old row) is caught by the worker."""
    # given: chats waiting while an agent is marked online with room, and nobody told
    AgentStatus.objects.update(status=AgentStatus.Status.OFFLINE)
    one = _say(web_chat, "一", key="visitor:1", now=at(2026, 11, 30, 9)).conversation
    two = _say(web_chat, "二", key="visitor:2", now=at(2026, 11, 30, 9, 1)).conversation
    AgentStatus.objects.filter(user__in=[online_agent, second_agent]).update(
        status=AgentStatus.Status.ONLINE
    )
    # when
    handed = conversations_hand_out(now=MONDAY_10)
    # then: one each (least busy), nothing more to do on the next pass
    assert handed == 2
    one.refresh_from_db()
    two.refresh_from_db()
    assert {one.assignee, two.assignee} == {online_agent, second_agent}
    assert conversations_hand_out(now=MONDAY_10) == 0


def test_the_worker_runs_the_hand_out_every_minute(web_chat, online_agent):
    from huey.contrib.djhuey import HUEY

    from kefu.conversations.tasks import conversation_hand_out_periodic_task

    # given
    AgentStatus.objects.update(status=AgentStatus.Status.OFFLINE)
    left = _say(web_chat, "留言", key="visitor:1").conversation
    AgentStatus.objects.filter(user=online_agent).update(status=AgentStatus.Status.ONLINE)
    # then: a periodic task of the worker, due every minute
    task = conversation_hand_out_periodic_task.task_class()
    assert task.name in {p.name for p in HUEY._registry.periodic_tasks}
    minutes = [at(2026, 11, 30, 10, m) for m in range(60)]
    assert all(task.validate_datetime(moment) for moment in minutes)
    # when
    conversation_hand_out_periodic_task()
    left.refresh_from_db()
    assert left.assignee == online_agent


@pytest.mark.django_db(transaction=True)
def test_two_agents_coming_online_at_once_never_take_the_same_chat(web_chat, chat_queue):
    """Six offline messages; three agents with room for two each press 'online' at the same
    moment: each chat goes to exactly one of them, none gets more than two."""
    import threading

    from django.db import connection

    # given
    for n in range(6):
        _say(web_chat, f"留言{n}", key=f"visitor:{n}", now=at(2026, 11, 30, 8, n))
    agents = []
    for n in range(3):
        user = UserFactory(username=f"online{n}", role="agent")
        chat_queue.members.add(user)
        AgentStatus.objects.create(user=user, capacity=2)
        agents.append(user)
    barrier = threading.Barrier(len(agents))
    errors: list[BaseException] = []

    def go_online(user) -> None:
        try:
            barrier.wait(10)
            agent_status_set(actor=user, status="online", now=MONDAY_10)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=go_online, args=(user,)) for user in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # then
    assert errors == []
    conversations = list(Conversation.objects.all())
    assert len(conversations) == 6
    assert all(c.status == Conversation.Status.OPEN for c in conversations)
    assert sorted(Conversation.objects.filter(assignee=user).count() for user in agents) == [
        2,
        2,
        2,
    ]
    assigned = ConversationEvent.objects.filter(kind=ConversationEvent.Kind.ASSIGNED)
    assert sorted(assigned.values_list("conversation_id", flat=True)) == sorted(
        c.pk for c in conversations
    )


# --- Every service on its own: the write, its timeline entry, the refusal paths ------------------


def test_payloads_say_what_the_live_updates_show(web_chat, online_agent, second_agent):
    """A message, its conversation and the customer's "who answers" line, as the sockets and
    the API carry them."""
    # given: one chat taken by 小王, one waiting for an agent
    AgentStatus.objects.filter(user=online_agent).update(capacity=1)
    taken = _say(web_chat, "在吗？", key="visitor:a", name="张女士")
    waiting = _say(web_chat, "有人吗", key="visitor:b", now=at(2026, 11, 30, 10, 1)).conversation
    # when
    message = services.message_payload(taken.message)
    conversation = services.conversation_payload(taken.conversation)
    # then
    assert message == {
        "id": taken.message.pk,
        "conversation": taken.conversation.pk,
        "direction": Message.Direction.IN,
        "kind": Message.Kind.TEXT,
        "body": "在吗？",
        "author": "",
        "is_automatic": False,
        "status": Message.Status.RECEIVED,
        "media_url": "",
        "attachment": "",
        "attachment_name": "",
        "created_at": message["created_at"],
    }
    assert dt.datetime.fromisoformat(message["created_at"]) == MONDAY_10
    assert conversation == {
        "id": taken.conversation.pk,
        "status": Conversation.Status.OPEN,
        "channel": "官网在线咨询",
        "channel_kind": "web_chat",
        "customer": "张女士",
        "assignee": online_agent.pk,
        "is_offline": False,
        "waiting_since": conversation["waiting_since"],
        "preview": "在吗？",
    }
    assert dt.datetime.fromisoformat(conversation["waiting_since"]) == MONDAY_10
    assert services.assignment_payload(taken.conversation) == {"status": "open", "agent": "小王"}
    assert services.assignment_payload(waiting) == {"status": "queued", "agent": ""}


@pytest.mark.django_db(transaction=True)
def test_the_routing_lock_is_taken_only_inside_a_transaction(db):
    """Outside a transaction the lock would be released at once: refused. Inside one it is
    held until the transaction ends (a PostgreSQL advisory lock)."""

    with pytest.raises(RuntimeError):
        services.routing_lock()
    with transaction.atomic():
        services.routing_lock()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND pid = pg_backend_pid()"
                )
                assert cursor.fetchone()[0] == 1


def test_agents_online_counts_the_queues_agents_or_anyone_when_it_overflows(
    chat_queue, online_agent
):
    """Someone answers a queue's chat when one of its agents is online, or anyone online when the
    queue overflows; inactive accounts never count."""
    # given: the chat queue's member is online; a skill queue that never overflows has nobody
    skill = InboxQueue.objects.create(name="会员积分", skill="points", overflow_after=None)
    assert services.agents_online() is True
    assert services.agents_online(queue_id=chat_queue.pk) is True
    assert services.agents_online(queue_id=skill.pk) is False
    # when: the member goes away, an agent of no queue comes online
    AgentStatus.objects.filter(user=online_agent).update(status=AgentStatus.Status.AWAY)
    hotline = UserFactory(username="agent01", role="agent")
    AgentStatus.objects.create(user=hotline, status=AgentStatus.Status.ONLINE)
    # then: the chat queue overflows to them; the skill queue waits for its own
    assert services.agents_online(queue_id=chat_queue.pk) is True
    assert services.agents_online(queue_id=skill.pk) is False
    # an inactive account online counts for nobody
    hotline.is_active = False
    hotline.save()
    assert services.agents_online() is False


def test_notes_are_refused_to_other_agents_and_when_empty(web_chat, online_agent, second_agent):
    """Another agent's chat takes no note from an agent, an empty note is named; a note is stored
    with its author at `now`."""
    conversation = _say(web_chat, "在吗").conversation
    with pytest.raises(Forbidden):
        services.note_add(actor=second_agent, conversation_id=conversation.pk, body="我来")
    with pytest.raises(ValidationFailed) as empty:
        services.note_add(actor=online_agent, conversation_id=conversation.pk, body=" ")
    assert "body" in empty.value.errors
    assert not conversation.messages.filter(direction=Message.Direction.NOTE).exists()
    note = services.note_add(
        actor=online_agent,
        conversation_id=conversation.pk,
        body="老客户",
        now=at(2026, 11, 30, 10, 3),
    )
    assert (note.author, note.created_at) == (online_agent, at(2026, 11, 30, 10, 3))


def test_the_chats_agent_gets_the_customers_number_to_call_and_the_reveal_is_audited(
    web_chat, online_agent, second_agent, chat_supervisor
):
    """The chat's agent (or a supervisor) gets the full number, audited as a reveal for this
    conversation; another agent is refused and nothing is revealed."""
    # given: 小王's chat, and one waiting for an agent
    AgentStatus.objects.filter(user=online_agent).update(capacity=1)
    mine = _say(web_chat, "请给我回电", key="visitor:a", phone="13812345678").conversation
    waiting = _say(web_chat, "在吗", key="visitor:b", phone="13900001111").conversation
    reveals = AuditEntry.objects.filter(action="customer.contact_revealed")
    # when
    phone = services.conversation_call(actor=online_agent, conversation_id=mine.pk, ip="127.0.0.1")
    # then
    assert phone.value == "+8613812345678"
    entry = reveals.get()
    assert entry.actor == online_agent
    assert entry.changes["call_for"] == {"type": "conversation", "id": mine.pk}
    # another agent does not see 小王's chat, and does not call about a chat nobody has taken
    with pytest.raises(NotFound):
        services.conversation_call(actor=second_agent, conversation_id=mine.pk)
    with pytest.raises(Forbidden):
        services.conversation_call(actor=second_agent, conversation_id=waiting.pk)
    assert reveals.count() == 1
    # the supervisor may call about any chat
    services.conversation_call(actor=chat_supervisor, conversation_id=waiting.pk)
    assert reveals.count() == 2


def test_a_visitor_without_a_phone_cannot_be_called(web_chat, online_agent):
    """A visitor who left no phone cannot be called: a conflict coded no_phone."""
    conversation = _say(web_chat, "在吗").conversation
    with pytest.raises(Conflict) as refused:
        services.conversation_call(actor=online_agent, conversation_id=conversation.pk)
    assert refused.value.code == "no_phone"


def test_a_ticket_opened_from_a_chat_carries_its_customer_channel_and_transcript(
    web_chat, online_agent
):
    """The ticket is the chat's customer's, on the web chat channel, described by the chat's
    transcript without the internal notes; the chat links to it and records it."""
    # given
    conversation = _say(web_chat, "买的药过期了", name="张女士", phone="13812345678").conversation
    services.message_send(
        actor=online_agent,
        conversation_id=conversation.pk,
        body="抱歉，我为您登记投诉",
        now=at(2026, 11, 30, 10, 1),
    )
    services.note_add(actor=online_agent, conversation_id=conversation.pk, body="老客户，态度急")
    # when
    ticket = services.conversation_open_ticket(
        actor=online_agent,
        conversation_id=conversation.pk,
        data={"type": "complaint", "subject": "买到过期药品"},
        now=at(2026, 11, 30, 10, 2),
    )
    # then
    assert (ticket.customer, ticket.channel) == (conversation.customer, Ticket.Channel.WEB_CHAT)
    assert "[10:00] 张女士: 买的药过期了" in ticket.description
    assert "[10:01]" in ticket.description
    assert "抱歉，我为您登记投诉" in ticket.description
    assert "老客户" not in ticket.description
    assert ticket.events.filter(kind=TicketEvent.Kind.CREATED).get().created_at == at(
        2026, 11, 30, 10, 2
    )
    conversation.refresh_from_db()
    assert conversation.ticket == ticket
    opened = conversation.events.get(kind=ConversationEvent.Kind.TICKET_OPENED)
    assert opened.data == {"ticket": ticket.pk}
    assert (opened.actor, opened.created_at) == (online_agent, at(2026, 11, 30, 10, 2))
    # one ticket per chat
    with pytest.raises(Conflict):
        services.conversation_open_ticket(
            actor=online_agent,
            conversation_id=conversation.pk,
            data={"type": "complaint", "subject": "再开一张"},
        )
    assert Ticket.objects.count() == 1


def test_opening_a_ticket_from_a_chat_refused_writes_nothing(web_chat, online_agent, second_agent):
    """Another agent's chat, or a ticket without a subject, is refused: no ticket, no link, no
    entry on either timeline."""
    # given
    conversation = _say(web_chat, "买的药过期了").conversation
    # then: another agent's chat is refused; a ticket without a subject names the field
    with pytest.raises(Forbidden):
        services.conversation_open_ticket(
            actor=second_agent,
            conversation_id=conversation.pk,
            data={"type": "complaint", "subject": "过期药品"},
        )
    with pytest.raises(ValidationFailed) as refused:
        services.conversation_open_ticket(
            actor=online_agent, conversation_id=conversation.pk, data={"type": "complaint"}
        )
    assert "subject" in refused.value.errors
    assert not Ticket.objects.exists()
    conversation.refresh_from_db()
    assert conversation.ticket is None
    assert not conversation.events.filter(kind=ConversationEvent.Kind.TICKET_OPENED).exists()
    assert not CustomerEvent.objects.filter(kind="ticket_opened").exists()


def test_quick_replies_are_deleted_by_their_owner_and_team_replies_by_supervisors(
    online_agent, second_agent, chat_supervisor
):
    """Agents delete their own quick replies, not a colleague's or the team's; supervisors delete
    team replies; an unknown one is not found."""
    # given
    own = services.quick_reply_save(
        actor=online_agent, data={"shortcut": "hi", "title": "问候", "body": "您好"}
    )
    colleagues = services.quick_reply_save(
        actor=second_agent, data={"shortcut": "bye", "title": "道别", "body": "再见"}
    )
    team = services.quick_reply_save(
        actor=chat_supervisor,
        data={"shortcut": "hours", "title": "营业时间", "body": "每天9点到18点"},
        team=True,
    )
    # then: an agent deletes neither a colleague's reply nor the team's
    for reply in (colleagues, team):
        with pytest.raises(Forbidden):
            services.quick_reply_delete(actor=online_agent, reply_id=reply.pk)
    with pytest.raises(NotFound):
        services.quick_reply_delete(actor=online_agent, reply_id=99999)
    assert QuickReply.objects.count() == 3
    # when
    services.quick_reply_delete(actor=online_agent, reply_id=own.pk)
    services.quick_reply_delete(actor=chat_supervisor, reply_id=team.pk)
    # then
    assert list(QuickReply.objects.values_list("shortcut", flat=True)) == ["bye"]


def test_a_message_without_sender_or_content_is_refused_and_nothing_is_stored(web_chat):
    """No sender, no content, a non-web media link or a refused file type is named; no
    conversation, message or customer entry is stored."""
    refusals = [
        (Inbound(sender=Sender(key=""), body="在吗"), "sender"),
        (Inbound(sender=Sender(key="visitor:a"), body="  "), "body"),
        (Inbound(sender=Sender(key="visitor:a"), body="图", media_url="javascript:x"), "media_url"),
        (
            Inbound(sender=Sender(key="visitor:a"), body="", attachments=[("a.exe", b"MZ")]),
            "attachments",
        ),
    ]
    for inbound, field_name in refusals:
        with pytest.raises(ValidationFailed) as refused:
            services.message_receive(channel=web_chat, inbound=inbound, now=MONDAY_10)
        assert field_name in refused.value.errors
    assert not Conversation.objects.exists()
    assert not Message.objects.exists()
    assert not CustomerEvent.objects.exists()


def test_agent_status_names_bad_input_and_needs_chat_work(online_agent, records_officer):
    """An unknown status and an out-of-range capacity are named together, a role that answers no
    chats is refused, and the status stays; a good change is stored at `now`."""
    with pytest.raises(ValidationFailed) as refused:
        services.agent_status_set(actor=online_agent, status="asleep", capacity=0, now=MONDAY_10)
    assert set(refused.value.errors) == {"status", "capacity"}
    with pytest.raises(Forbidden):
        services.agent_status_set(actor=records_officer, status="online", now=MONDAY_10)
    status = AgentStatus.objects.get(user=online_agent)
    assert (status.status, status.capacity) == (AgentStatus.Status.ONLINE, 3)
    assert not AgentStatus.objects.filter(user=records_officer).exists()
    # when
    services.agent_status_set(actor=online_agent, status="away", capacity=5, now=MONDAY_10)
    # then
    status.refresh_from_db()
    assert (status.status, status.capacity, status.changed_at) == ("away", 5, MONDAY_10)


def test_another_agents_chat_is_neither_closed_nor_transferred_by_an_agent(
    web_chat, online_agent, second_agent, chat_queue
):
    """An agent may not close or transfer another agent's chat, and a transfer names an agent or a
    queue; nothing changes."""
    conversation = _say(web_chat, "在吗").conversation
    with pytest.raises(Forbidden):
        services.conversation_close(
            actor=second_agent,
            conversation_id=conversation.pk,
            topic="营业时间",
            outcome="answered",
        )
    with pytest.raises(Forbidden):
        services.conversation_transfer(
            actor=second_agent, conversation_id=conversation.pk, queue_id=chat_queue.pk
        )
    with pytest.raises(ValidationFailed) as neither:
        services.conversation_transfer(actor=online_agent, conversation_id=conversation.pk)
    assert "agent" in neither.value.errors
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assignee) == (Conversation.Status.OPEN, online_agent)
    assert not conversation.events.filter(
        kind__in=[ConversationEvent.Kind.CLOSED, ConversationEvent.Kind.TRANSFERRED]
    ).exists()


def test_closing_writes_the_record_on_both_timelines(web_chat, online_agent):
    """Closing stores the consultation record and writes a CLOSED entry on the chat and one on the
    customer's timeline; a closed chat does not close twice."""
    conversation = _say(web_chat, "想预约到店").conversation
    services.conversation_close(
        actor=online_agent,
        conversation_id=conversation.pk,
        topic="预约到店",
        outcome=Conversation.Outcome.APPOINTMENT,
        note=" 周六上午 ",
        now=at(2026, 11, 30, 10, 10),
    )
    conversation.refresh_from_db()
    assert (conversation.closed_at, conversation.closed_by, conversation.outcome_note) == (
        at(2026, 11, 30, 10, 10),
        online_agent,
        "周六上午",
    )
    closed = conversation.events.get(kind=ConversationEvent.Kind.CLOSED)
    assert closed.data == {"topic": "预约到店", "outcome": "appointment"}
    assert (closed.actor, closed.created_at) == (online_agent, at(2026, 11, 30, 10, 10))
    assert CustomerEvent.objects.filter(
        customer=conversation.customer, kind="conversation_closed"
    ).exists()
    with pytest.raises(Conflict):
        services.conversation_close(
            actor=online_agent, conversation_id=conversation.pk, topic="再关", outcome="answered"
        )


def test_recording_a_call_needs_the_permission(handler):
    """A role without add_callrecord records no call and gets no callback task."""
    with pytest.raises(Forbidden):
        services.call_record(
            actor=handler, data={"phone": "13812345678", "result": "missed"}, now=MONDAY_10
        )
    assert not CallRecord.objects.exists()
    assert not FollowUp.objects.exists()
