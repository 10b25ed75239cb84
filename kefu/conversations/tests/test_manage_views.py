"""Consultation pages: the call list (each call linked to its customer and callback), recording a
call by hand (also from the customer's profile), quick replies, and the profile's conversations
and calls."""

import pytest
from django.test import Client
from django.urls import reverse

from kefu.accounts.tests.factories import UserFactory
from kefu.conversations.adapters import Inbound, Sender
from kefu.conversations.models import (
    AgentStatus,
    CallRecord,
    Channel,
    Conversation,
    QuickReply,
)
from kefu.conversations.services import call_record, conversation_close, message_receive
from kefu.customers.models import CustomerEvent
from kefu.followups.models import FollowUp
from kefu.tickets.tests.fixtures import at

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
CALLS = "conversation_admin:call_list"
RECORD = "conversation_admin:call_create"
REPLIES = "conversation_admin:quickreply_list"


def client_for(user) -> Client:
    client = Client(headers={"accept-language": "en"})
    if user is not None:
        client.force_login(user)
    return client


def _record(actor, **data):
    call, _created = call_record(
        actor=actor, data={"phone": "13900001111", "result": "missed", **data}
    )
    return call


# --- Calls list -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("anonymous", 302),
        ("agent", 200),
        ("supervisor", 200),
        ("handler", 403),
        ("administrator", 403),
    ],
)
def test_call_pages_permission_matrix(request, role, status):
    user = None if role == "anonymous" else request.getfixturevalue(role)
    client = client_for(user)
    assert client.get(reverse(CALLS)).status_code == status
    assert client.get(reverse(RECORD)).status_code == status
    if role == "anonymous":
        assert client.get(reverse(CALLS))["Location"].startswith(reverse("accounts:login"))


def test_call_list_links_customer_and_callback_and_masks_the_phone(agent, supervisor):
    missed = _record(agent, agent=agent.pk, caller_name="赵先生")
    answered = _record(
        supervisor, phone="13900002222", result="answered", started_at="2026-11-30T09:00+08:00"
    )
    # when
    html = client_for(supervisor).get(reverse(CALLS)).content.decode()
    # then
    row = html.split(f'id="call-{missed.pk}"')[1].split("</tr>")[0]
    assert missed.customer.get_absolute_url() in row
    assert "赵先生" in row
    assert "139****1111" in row
    assert f"#followup-{missed.callback_id}" in row
    assert "13900001111" not in html
    assert f'id="call-{answered.pk}"' in html


def test_call_list_filters_by_result_and_day(supervisor):
    missed = _record(supervisor, started_at="2026-11-30T09:00+08:00")
    answered = _record(
        supervisor, phone="13900002222", result="answered", started_at="2026-12-01T09:00+08:00"
    )
    client = client_for(supervisor)
    # when
    by_result = client.get(reverse(CALLS), {"result": "missed"}).content.decode()
    by_day = client.get(
        reverse(CALLS), {"date_from": "2026-12-01", "date_to": "2026-12-01"}, headers=HX
    ).content.decode()
    # then
    assert f'id="call-{missed.pk}"' in by_result
    assert f'id="call-{answered.pk}"' not in by_result
    assert f'id="call-{answered.pk}"' in by_day
    assert f'id="call-{missed.pk}"' not in by_day
    assert "<html" not in by_day  # the HTMX fragment only


def test_call_list_bad_filter_shows_the_error(supervisor):
    response = client_for(supervisor).get(
        reverse(CALLS), {"date_from": "2026-12-02", "date_to": "2026-12-01"}
    )
    assert response.status_code == 200
    assert "The end comes after the start." in response.content.decode()


# --- Recording a call ---------------------------------------------------------------------------
def test_missed_call_recorded_by_hand_says_a_callback_was_created(agent):
    client = client_for(agent)
    # when
    response = client.post(
        reverse(RECORD),
        {"phone": "139 0000 1111", "caller_name": "钱女士", "direction": "in", "result": "missed"},
    )
    # then
    call = CallRecord.objects.get()
    assert response.status_code == 302
    assert f"recorded={call.pk}" in response["Location"]
    followup = FollowUp.objects.get()
    assert call.callback == followup
    assert followup.assignee == agent
    assert followup.purpose == FollowUp.Purpose.PROMISED_CALLBACK
    page = client.get(response["Location"]).content.decode()
    assert 'data-testid="callback-created"' in page
    assert f"#followup-{followup.pk}" in page
    assert "钱女士" in page


def test_answered_call_names_no_callback(agent):
    client = client_for(agent)
    response = client.post(
        reverse(RECORD),
        {
            "phone": "13900001111",
            "direction": "out",
            "result": "answered",
            "started_at": "2026-11-30T10:00",
            "ended_at": "2026-11-30T10:05",
            "notes": "回访满意",
        },
        follow=True,
    )
    call = CallRecord.objects.get()
    assert (call.direction, call.agent, call.notes) == ("out", agent, "回访满意")
    assert call.started_at == at(2026, 11, 30, 10)
    page = response.content.decode()
    assert 'data-testid="call-recorded"' in page
    assert 'data-testid="callback-created"' not in page
    assert not FollowUp.objects.exists()


def test_call_form_errors_rerender_with_the_field_named(agent):
    client = client_for(agent)
    # when: no number; then a number that is not one; then ended before it started (htmx)
    no_phone = client.post(reverse(RECORD), {"direction": "in", "result": "missed"})
    bad_phone = client.post(
        reverse(RECORD), {"phone": "abc", "direction": "in", "result": "missed"}
    )
    bad_times = client.post(
        reverse(RECORD),
        {
            "phone": "13900001111",
            "direction": "in",
            "result": "answered",
            "started_at": "2026-11-30T10:00",
            "ended_at": "2026-11-30T09:00",
        },
        headers=HX,
    )
    no_result = client.post(reverse(RECORD), {"phone": "13900001111", "direction": "in"})
    # then
    for response in (no_phone, bad_phone, bad_times, no_result):
        assert response.status_code == 200
    assert 'id="id_phone_error"' in no_phone.content.decode()
    assert 'id="id_phone_error"' in bad_phone.content.decode()
    assert 'id="id_ended_at_error"' in bad_times.content.decode()
    assert "<html" not in bad_times.content.decode()
    assert 'id="id_result_error"' in no_result.content.decode()
    assert not CallRecord.objects.exists()


def test_record_a_call_from_the_profile_offers_the_customers_phones_masked(agent, customer):
    client = client_for(agent)
    contact = customer.contacts.get()
    # when
    page = client.get(reverse(RECORD), {"customer": customer.pk}).content.decode()
    # then
    assert "138****1234" in page
    assert "13812341234" not in page
    assert f'value="{contact.pk}" selected' in page
    # when: the agent keeps the customer's phone
    response = client.post(
        reverse(RECORD),
        {"customer": customer.pk, "contact": contact.pk, "direction": "in", "result": "dropped"},
    )
    # then
    assert response.status_code == 302
    call = CallRecord.objects.get()
    assert call.customer == customer
    assert call.callback.customer == customer
    assert f"customer={customer.pk}" in response["Location"]


def test_another_customers_contact_is_refused(agent, customer, duplicate):
    other = duplicate.contacts.get()
    response = client_for(agent).post(
        reverse(RECORD),
        {"customer": customer.pk, "contact": other.pk, "direction": "in", "result": "missed"},
    )
    assert response.status_code == 200
    assert 'id="id_contact_error"' in response.content.decode()
    assert not CallRecord.objects.exists()


# --- Quick replies ----------------------------------------------------------------------------
@pytest.fixture
def replies(agent, online_agent):
    return {
        "mine": QuickReply.objects.create(owner=agent, shortcut="hi", title="问候", body="您好"),
        "team": QuickReply.objects.create(shortcut="hours", title="营业时间", body="9点到6点"),
        "theirs": QuickReply.objects.create(
            owner=online_agent, shortcut="bye", title="再见", body="再见"
        ),
    }


@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 302), ("agent", 200), ("supervisor", 200), ("handler", 403)],
)
def test_quick_reply_page_permission_matrix(request, role, status):
    user = None if role == "anonymous" else request.getfixturevalue(role)
    assert client_for(user).get(reverse(REPLIES)).status_code == status


def test_quick_reply_page_lists_mine_and_the_teams(agent, replies):
    html = client_for(agent).get(reverse(REPLIES)).content.decode()
    mine = html.split('data-section="mine"')[1].split('data-section="team"')[0]
    team = html.split('data-section="team"')[1]
    assert f'id="quickreply-{replies["mine"].pk}"' in mine
    assert f'id="quickreply-{replies["team"].pk}"' in team
    assert f'id="quickreply-{replies["theirs"].pk}"' not in html
    # agents do not get edit links for team replies, nor the team box
    assert reverse("conversation_admin:quickreply_edit", args=[replies["team"].pk]) not in html
    assert 'name="team"' not in html


def test_agent_adds_a_quick_reply_and_errors_rerender(agent):
    client = client_for(agent)
    # when
    bad = client.post(
        reverse(REPLIES), {"shortcut": "addr", "title": "地址", "body": "寄到{address}"}, headers=HX
    )
    good = client.post(
        reverse(REPLIES), {"shortcut": "thanks", "title": "感谢", "body": "谢谢{customer_name}"}
    )
    # then
    assert bad.status_code == 200
    assert 'id="new_body_error"' in bad.content.decode()
    assert "address" in bad.content.decode()
    assert good.status_code == 302
    reply = QuickReply.objects.get()
    assert (reply.owner, reply.shortcut) == (agent, "thanks")


def test_agent_edits_and_deletes_own_reply_but_not_the_teams(agent, replies):
    client = client_for(agent)
    edit = reverse("conversation_admin:quickreply_edit", args=[replies["mine"].pk])
    assert client.get(edit).status_code == 200
    response = client.post(edit, {"shortcut": "hi", "title": "问候", "body": "您好呀"})
    assert response.status_code == 302
    assert QuickReply.objects.get(pk=replies["mine"].pk).body == "您好呀"
    bad = client.post(edit, {"shortcut": "hi", "title": "", "body": "x"})
    assert bad.status_code == 200
    assert 'id="id_title_error"' in bad.content.decode()
    # the team's reply and another agent's
    team_edit = reverse("conversation_admin:quickreply_edit", args=[replies["team"].pk])
    assert client.get(team_edit).status_code == 403
    theirs = reverse("conversation_admin:quickreply_edit", args=[replies["theirs"].pk])
    assert client.get(theirs).status_code == 404
    team_delete = reverse("conversation_admin:quickreply_delete", args=[replies["team"].pk])
    assert client.post(team_delete).status_code == 403
    # delete one's own
    own_delete = reverse("conversation_admin:quickreply_delete", args=[replies["mine"].pk])
    assert client.post(own_delete).status_code == 302
    assert not QuickReply.objects.filter(pk=replies["mine"].pk).exists()
    assert QuickReply.objects.filter(pk=replies["team"].pk).exists()


def test_supervisor_adds_and_edits_team_replies(supervisor, replies):
    client = client_for(supervisor)
    assert 'name="team"' in client.get(reverse(REPLIES)).content.decode()
    response = client.post(
        reverse(REPLIES), {"shortcut": "wait", "title": "稍等", "body": "请稍等", "team": "on"}
    )
    assert response.status_code == 302
    assert QuickReply.objects.get(shortcut="wait").owner is None
    team_edit = reverse("conversation_admin:quickreply_edit", args=[replies["team"].pk])
    client.post(team_edit, {"shortcut": "hours", "title": "营业时间", "body": "8点到8点"})
    assert QuickReply.objects.get(pk=replies["team"].pk).body == "8点到8点"


# --- The customer's profile ---------------------------------------------------------------------
def test_customer_profile_shows_conversations_calls_and_record_a_call(
    web_chat, online_agent, agent, customer
):
    received = message_receive(
        channel=web_chat,
        inbound=Inbound(
            sender=Sender(key="visitor:zs", name="张三", phone="13812341234"), body="在吗"
        ),
        now=at(2026, 11, 30, 10),
    )
    conversation = received.conversation
    assert conversation.customer == customer
    conversation_close(
        actor=online_agent, conversation_id=conversation.pk, topic="营业时间", outcome="answered"
    )
    call = _record(agent, phone="13812341234")
    # when
    html = client_for(agent).get(customer.get_absolute_url()).content.decode()
    # then
    assert f'id="conversation-{conversation.pk}"' in html
    assert conversation.get_absolute_url() in html
    assert f'id="call-{call.pk}"' in html
    assert f"{reverse(RECORD)}?customer={customer.pk}" in html
    kinds = set(customer.events.values_list("kind", flat=True))
    assert {
        CustomerEvent.Kind.CONVERSATION_STARTED,
        CustomerEvent.Kind.CONVERSATION_CLOSED,
        CustomerEvent.Kind.CALL_RECORDED,
    } <= kinds
    assert "官网在线咨询 · 营业时间" in html  # the closed conversation on the timeline
    assert "Incoming · Missed" in html  # the call on the timeline


def test_customer_profile_hides_consultations_from_roles_without_them(records_officer, customer):
    html = client_for(records_officer).get(customer.get_absolute_url()).content.decode()
    assert 'id="customer-conversations"' not in html
    assert 'id="customer-calls"' not in html
    assert reverse(RECORD) not in html


# --- The admin site: administrators configure channels and queues -------------------------------
def test_administrator_adds_a_channel_with_its_settings(administrator, chat_queue):
    client = client_for(administrator)
    # when
    response = client.post(
        "/admin/conversations/channel/add/",
        {
            "kind": "wechat",
            "code": "wx-main",
            "name": "公众号",
            "platform": "",
            "is_active": "on",
            "queue": chat_queue.pk,
            "greeting": "您好",
            "away_message": "",
            "has_survey": "on",
            "config": '{"appid": "wx123", "token": "t0ken", "note": "总部"}',
        },
    )
    # then
    assert response.status_code == 302, response.content.decode()[:2000]
    channel = Channel.objects.get(code="wx-main")
    assert channel.setting("appid") == "wx123"
    change = client.get(f"/admin/conversations/channel/{channel.pk}/change/").content.decode()
    assert "&quot;note&quot;: &quot;总部&quot;" in change  # indented, Chinese kept readable
    bad = client.post(
        f"/admin/conversations/channel/{channel.pk}/change/",
        {"kind": "wechat", "code": "wx-main", "name": "公众号", "config": '["not", "an object"]'},
    )
    assert bad.status_code == 200
    assert Channel.objects.get(pk=channel.pk).setting("appid") == "wx123"


def test_administrator_manages_queue_members_and_agents_cannot(administrator, agent, chat_queue):
    page = client_for(administrator).get(f"/admin/conversations/inboxqueue/{chat_queue.pk}/change/")
    assert page.status_code == 200
    assert "selectfilter" in page.content.decode().lower()  # filter_horizontal widgets
    assert client_for(agent).get("/admin/conversations/channel/").status_code == 302


def test_every_consultation_model_lists_in_the_admin(
    web_chat, online_agent, agent, django_user_model
):
    """Superusers (support) can open every list and a conversation read-mostly, without adding."""
    message_receive(
        channel=web_chat,
        inbound=Inbound(sender=Sender(key="visitor:a"), body="在吗"),
        now=at(2026, 11, 30, 10),
    )
    _record(agent, agent=agent.pk)
    QuickReply.objects.create(shortcut="hi", title="问候", body="您好")
    root = django_user_model.objects.create_superuser("root", password="x")
    client = client_for(root)
    for model in (
        "channel",
        "inboxqueue",
        "agentstatus",
        "conversation",
        "message",
        "callrecord",
        "quickreply",
    ):
        assert client.get(f"/admin/conversations/{model}/").status_code == 200, model
    conversation = Conversation.objects.get()
    assert (
        client.get(f"/admin/conversations/conversation/{conversation.pk}/change/").status_code
        == 200
    )
    assert client.get("/admin/conversations/message/add/").status_code == 403
    assert client.get("/admin/conversations/conversation/add/").status_code == 403


def test_an_agent_put_online_or_into_a_queue_in_the_admin_gets_the_waiting_chats(
    web_chat, chat_queue, second_agent
):
    """Changes in the administration site that make room hand out waiting chats at once."""
    root = UserFactory(username="root", role="administrator", is_superuser=True, is_staff=True)
    chat_queue.overflow_after = None  # its chats wait for its own agents
    chat_queue.save()
    left = message_receive(
        channel=web_chat,
        inbound=Inbound(sender=Sender(key="visitor:left"), body="留言：请回电"),
    ).conversation
    outsider = UserFactory(username="outsider", role="agent")
    client = client_for(root)
    # when: the administrator sets the queue's agent online
    response = client.post(
        f"/admin/conversations/agentstatus/{second_agent.pk}/change/",
        {"user": second_agent.pk, "status": "online", "capacity": 1},
    )
    # then
    assert response.status_code == 302, response.content.decode()[:2000]
    left.refresh_from_db()
    assert left.assignee == second_agent
    # given: a second chat, and an online agent outside the queue
    AgentStatus.objects.create(user=outsider, status=AgentStatus.Status.ONLINE)
    other = message_receive(
        channel=web_chat,
        inbound=Inbound(sender=Sender(key="visitor:other"), body="在吗"),
    ).conversation
    assert other.assignee is None
    # when: the administrator adds that agent to the queue
    response = client.post(
        f"/admin/conversations/inboxqueue/{chat_queue.pk}/change/",
        {
            "name": chat_queue.name,
            "skill": "",
            "strategy": chat_queue.strategy,
            "overflow_after": "",
            "members": [second_agent.pk, outsider.pk],
        },
    )
    # then
    assert response.status_code == 302, response.content.decode()[:2000]
    other.refresh_from_db()
    assert other.assignee == outsider
