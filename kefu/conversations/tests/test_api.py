"""The consultations API: who sees which conversation, answering, notes, transfer, closing with
the consultation record, tickets from chats, the agent's status, hotline calls from the telephony
system (stored once per call id, a callback for every missed call) and quick replies."""

import pytest
from django.test import Client
from django.utils import timezone

from kefu.accounts.services import api_token_create
from kefu.accounts.tests.factories import UserFactory
from kefu.conversations.adapters import Inbound, Sender
from kefu.conversations.models import (
    AgentStatus,
    CallRecord,
    Conversation,
    Message,
    QuickReply,
)
from kefu.conversations.services import message_receive, note_add
from kefu.followups.models import FollowUp
from kefu.tickets.tests.fixtures import at

pytestmark = pytest.mark.django_db

BASE = "/api/v1/conversations"
MONDAY_10 = at(2026, 11, 30, 10)


def api_client(user) -> Client:
    """A client authenticated the way integrations are: a bearer token acting as `user`."""
    if user is None:
        return Client()
    _token, key = api_token_create(user=user, name="test", actor=None)
    return Client(headers={"authorization": f"Bearer {key}"})


def session_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _say(channel, body, *, key, name="访客", phone=""):
    return message_receive(
        channel=channel,
        inbound=Inbound(sender=Sender(key=key, name=name, phone=phone), body=body),
        now=MONDAY_10,
    )


@pytest.fixture
def other_agent(db, chat_queue):
    user = UserFactory(username="chat-agent-3", role="agent", display_name="小赵")
    chat_queue.members.add(user)
    return user


@pytest.fixture
def chats(web_chat, online_agent, other_agent):
    """The online agent has one chat; another agent has one; one waits for an agent."""
    mine = _say(web_chat, "在吗？", key="visitor:mine", name="张女士", phone="13812341234")
    AgentStatus.objects.filter(user=online_agent).update(status=AgentStatus.Status.OFFLINE)
    theirs = _say(web_chat, "营业时间？", key="visitor:theirs", name="李先生").conversation
    Conversation.objects.filter(pk=theirs.pk).update(
        assignee=other_agent, status=Conversation.Status.OPEN
    )
    waiting = _say(web_chat, "有人吗", key="visitor:waiting", name="王先生").conversation
    return {"mine": mine.conversation, "theirs": theirs, "waiting": waiting}


def _ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


# --- Conversations: who sees what --------------------------------------------------------------
@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 401), ("handler", 403), ("agent", 200), ("supervisor", 200)],
)
def test_conversation_list_permission_matrix(request, role, status):
    user = None if role == "anonymous" else request.getfixturevalue(role)
    response = api_client(user).get(BASE)
    assert response.status_code == status
    if status >= 400:
        assert response.json()["code"] in ("not_authenticated", "permission_denied")


def test_agent_sees_own_and_waiting_conversations_and_supervisor_sees_all(
    chats, online_agent, chat_supervisor
):
    """An agent lists their chats and those waiting for an agent; another agent's chat is not
    found for them. The supervisor lists every chat."""
    # when
    agent_ids = _ids(api_client(online_agent).get(BASE))
    supervisor_ids = _ids(api_client(chat_supervisor).get(BASE))
    # then
    assert agent_ids == {chats["mine"].pk, chats["waiting"].pk}
    assert supervisor_ids == {c.pk for c in chats.values()}
    theirs = api_client(online_agent).get(f"{BASE}/{chats['theirs'].pk}")
    assert theirs.status_code == 404
    assert theirs.json()["code"] == "not_found"


def test_conversation_list_filters(chats, web_chat, online_agent, chat_supervisor):
    client = api_client(chat_supervisor)
    mine, waiting = chats["mine"], chats["waiting"]

    assert _ids(client.get(BASE, {"status": "queued"})) == {waiting.pk}
    assert _ids(client.get(BASE, {"assignee": "none"})) == {waiting.pk}
    assert _ids(client.get(BASE, {"assignee": online_agent.pk})) == {mine.pk}
    assert _ids(client.get(BASE, {"customer": mine.customer_id})) == {mine.pk}
    assert _ids(client.get(BASE, {"channel": "site"})) == {c.pk for c in chats.values()}
    assert _ids(client.get(BASE, {"channel": "nowhere"})) == set()
    assert _ids(client.get(BASE, {"waiting": "true"})) == {c.pk for c in chats.values()}
    assert _ids(api_client(online_agent).get(BASE, {"assignee": "me"})) == {mine.pk}
    bad = client.get(BASE, {"status": "sleeping"})
    assert bad.status_code == 422
    assert "status" in bad.json()["errors"]


def test_conversation_list_pages_with_offset(chats, chat_supervisor):
    client = api_client(chat_supervisor)
    first = client.get(BASE, {"limit": 2}).json()
    assert first["has_more"] is True
    rest = client.get(BASE, {"limit": 2, "offset": first["next"]}).json()
    assert rest["has_more"] is False
    seen = [r["id"] for r in first["results"] + rest["results"]]
    assert sorted(seen) == sorted(c.pk for c in chats.values())


def test_conversation_payload_names_the_customer_without_the_phone(chats, online_agent):
    """The customer appears by id, number and name; no phone number in any form."""
    mine = chats["mine"]
    response = api_client(online_agent).get(f"{BASE}/{mine.pk}")
    body = response.json()
    assert response.status_code == 200
    assert body["customer"] == {
        "id": mine.customer.pk,
        "number": mine.customer.number,
        "name": "张女士",
    }
    assert body["channel"]["code"] == "site"
    assert body["assignee"]["id"] == online_agent.pk
    text = response.content.decode()
    assert "13812341234" not in text
    assert "8613812341234" not in text
    listing = api_client(online_agent).get(BASE).content.decode()
    assert "13812341234" not in listing


# --- Messages ---------------------------------------------------------------------------------
def test_messages_in_order_with_notes_and_after_id(chats, online_agent):
    mine = chats["mine"]
    note = note_add(actor=online_agent, conversation_id=mine.pk, body="老客户，态度要好")
    client = api_client(online_agent)
    # when
    rows = client.get(f"{BASE}/{mine.pk}/messages").json()
    # then: the customer's message, the greeting, the note
    assert [r["direction"] for r in rows] == ["in", "out", "note"]
    assert rows[-1]["body"] == "老客户，态度要好"
    after = client.get(f"{BASE}/{mine.pk}/messages", {"after_id": rows[0]["id"]}).json()
    assert [r["id"] for r in after] == [rows[1]["id"], note.pk]
    before = client.get(f"{BASE}/{mine.pk}/messages", {"before_id": note.pk, "limit": 1}).json()
    assert [r["id"] for r in before] == [rows[1]["id"]]
    assert client.get(f"{BASE}/{chats['theirs'].pk}/messages").status_code == 404


def test_agent_answers_a_waiting_chat_and_it_becomes_theirs(chats, online_agent):
    waiting = chats["waiting"]
    # when
    response = api_client(online_agent).post(
        f"{BASE}/{waiting.pk}/messages", {"body": "您好，请问有什么可以帮您？"}, "application/json"
    )
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["direction"] == "out"
    assert body["status"] == "sent"  # web chat: the widget's socket carries it
    message = Message.objects.get(pk=body["id"])
    assert message.author == online_agent
    waiting.refresh_from_db()
    assert waiting.assignee == online_agent
    assert waiting.waiting_since is None


def test_empty_answer_and_note_name_the_body_field(chats, online_agent):
    client = api_client(online_agent)
    mine = chats["mine"]
    for path in ("messages", "notes"):
        response = client.post(f"{BASE}/{mine.pk}/{path}", {"body": "  "}, "application/json")
        assert response.status_code == 422
        assert "body" in response.json()["errors"]


def test_agent_adds_a_note_the_customer_never_sees(chats, online_agent):
    mine = chats["mine"]
    response = api_client(online_agent).post(
        f"{BASE}/{mine.pk}/notes", {"body": "客户要求周末回电"}, "application/json"
    )
    assert response.status_code == 201
    assert response.json()["direction"] == "note"
    assert Message.objects.get(pk=response.json()["id"]).direction == Message.Direction.NOTE


def test_agent_cannot_answer_another_agents_chat(chats, online_agent):
    response = api_client(online_agent).post(
        f"{BASE}/{chats['theirs'].pk}/messages", {"body": "你好"}, "application/json"
    )
    assert response.status_code == 404
    assert not Message.objects.filter(author=online_agent).exists()


# --- Transfer, close, ticket --------------------------------------------------------------------
def test_transfer_to_another_agent_and_to_nobody_names_the_field(chats, online_agent, second_agent):
    mine = chats["mine"]
    client = api_client(online_agent)
    # when: nobody chosen
    bad = client.post(f"{BASE}/{mine.pk}/transfer", {"note": "?"}, "application/json")
    # then
    assert bad.status_code == 422
    assert "agent" in bad.json()["errors"]
    # when
    response = client.post(
        f"{BASE}/{mine.pk}/transfer",
        {"agent": second_agent.pk, "note": "售后问题请小李跟进"},
        "application/json",
    )
    # then
    assert response.status_code == 200, response.content
    assert response.json()["assignee"]["id"] == second_agent.pk
    mine.refresh_from_db()
    assert mine.assignee == second_agent


def test_close_needs_a_topic_then_records_the_consultation(chats, online_agent):
    mine = chats["mine"]
    client = api_client(online_agent)
    # when
    bad = client.post(f"{BASE}/{mine.pk}/close", {"outcome": "answered"}, "application/json")
    # then
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid"
    assert list(bad.json()["errors"]) == ["topic"]
    # when
    response = client.post(
        f"{BASE}/{mine.pk}/close",
        {"topic": "营业时间", "outcome": "answered", "note": "已告知"},
        "application/json",
    )
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "closed"
    assert (body["topic"], body["outcome"], body["outcome_note"]) == (
        "营业时间",
        "answered",
        "已告知",
    )
    again = client.post(
        f"{BASE}/{mine.pk}/close", {"topic": "x", "outcome": "answered"}, "application/json"
    )
    assert again.status_code == 409


def test_open_a_ticket_from_a_conversation(chats, online_agent):
    mine = chats["mine"]
    # when
    response = api_client(online_agent).post(
        f"{BASE}/{mine.pk}/ticket",
        {"type": "complaint", "subject": "买到过期药品"},
        "application/json",
    )
    # then
    assert response.status_code == 201, response.content
    mine.refresh_from_db()
    ticket = mine.ticket
    assert response.json() == {
        "id": ticket.pk,
        "number": ticket.number,
        "subject": "买到过期药品",
        "status": ticket.status,
    }
    assert ticket.customer == mine.customer
    assert "在吗？" in ticket.description  # the transcript
    detail = api_client(online_agent).get(f"{BASE}/{mine.pk}").json()
    assert detail["ticket"]["id"] == ticket.pk


def test_open_a_ticket_with_a_bad_type_names_the_field(chats, online_agent):
    response = api_client(online_agent).post(
        f"{BASE}/{chats['mine'].pk}/ticket", {"type": "praise", "subject": "x"}, "application/json"
    )
    assert response.status_code == 422
    assert "type" in response.json()["errors"]


# --- The agent's status -------------------------------------------------------------------------
def test_agent_goes_online_and_reads_the_status(chats, second_agent):
    """Going online hands the agent the chat that waited."""
    client = api_client(second_agent)
    assert client.get(f"{BASE}/agent-status").json()["status"] == "offline"
    # when
    response = client.put(
        f"{BASE}/agent-status", {"status": "online", "capacity": 4}, "application/json"
    )
    # then
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "online"
    assert response.json()["capacity"] == 4
    assert response.json()["open_conversations"] == 1
    chats["waiting"].refresh_from_db()
    assert chats["waiting"].assignee == second_agent
    assert client.get(f"{BASE}/agent-status").json()["status"] == "online"


def test_agent_status_errors_name_the_fields(online_agent, handler):
    response = api_client(online_agent).put(
        f"{BASE}/agent-status", {"status": "asleep", "capacity": 99}, "application/json"
    )
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"status", "capacity"}
    forbidden = api_client(handler).put(
        f"{BASE}/agent-status", {"status": "online"}, "application/json"
    )
    assert forbidden.status_code == 403


def test_session_login_works_for_the_browser(chats, online_agent):
    """The inbox page's scripts call the API with the session cookie."""
    response = session_client(online_agent).get(f"{BASE}/{chats['mine'].pk}")
    assert response.status_code == 200


# --- Calls --------------------------------------------------------------------------------------
def _call(client, **data):
    body = {"phone": "13900001111", "caller_name": "赵先生", "result": "missed", **data}
    return client.post(f"{BASE}/calls", body, "application/json")


def test_missed_call_creates_a_callback_due_now_for_the_agent(agent):
    client = api_client(agent)
    before = timezone.now()
    # when
    response = _call(client, agent=agent.pk, external_id="pbx-1")
    # then
    after = timezone.now()
    assert response.status_code == 201, response.content
    body = response.json()
    call = CallRecord.objects.get()
    assert body["id"] == call.pk
    assert body["result"] == "missed"
    assert body["phone"] == "139****1111"
    assert body["customer"]["name"] == "赵先生"
    followup = FollowUp.objects.get()
    assert followup.purpose == FollowUp.Purpose.PROMISED_CALLBACK
    assert followup.assignee == agent
    assert before <= followup.due_at <= after
    assert followup.customer == call.customer
    assert body["callback"]["id"] == followup.pk
    assert body["callback"]["assignee"]["id"] == agent.pk
    assert "13900001111" not in response.content.decode()


def test_the_same_call_reported_twice_is_stored_once(agent):
    """The telephony system retries: the second report answers 200 with the stored call."""
    client = api_client(agent)
    first = _call(client, agent=agent.pk, external_id="pbx-42")
    # when
    second = _call(client, agent=agent.pk, external_id="pbx-42")
    # then
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert CallRecord.objects.count() == 1
    assert FollowUp.objects.count() == 1


def test_answered_call_with_times_has_a_duration_and_no_callback(agent):
    response = _call(
        api_client(agent),
        result="answered",
        direction="in",
        agent=agent.pk,
        started_at="2026-11-30T10:00:00+08:00",
        answered_at="2026-11-30T10:00:10+08:00",
        ended_at="2026-11-30T10:03:10+08:00",
        recording_url="https://pbx.example.com/rec/1.mp3",
        notes="咨询营业时间",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["duration_seconds"] == 180
    assert body["callback"] is None
    assert not FollowUp.objects.exists()


def test_call_with_bad_input_names_the_fields(agent):
    client = api_client(agent)
    # when
    bad_result = _call(client, result="busy")
    bad_fields = _call(client, phone="", recording_url="ftp://x", direction="sideways")
    bad_time = _call(client, started_at="yesterday")
    # then
    assert bad_result.status_code == 422
    assert list(bad_result.json()["errors"]) == ["result"]
    assert set(bad_fields.json()["errors"]) == {"phone", "recording_url", "direction"}
    assert bad_time.status_code == 422
    assert "started_at" in bad_time.json()["errors"]
    assert not CallRecord.objects.exists()


@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 401), ("handler", 403), ("agent", 200), ("supervisor", 200)],
)
def test_call_list_permission_matrix(request, role, status):
    user = None if role == "anonymous" else request.getfixturevalue(role)
    assert api_client(user).get(f"{BASE}/calls").status_code == status
    if role != "anonymous":
        posted = _call(api_client(user))
        assert posted.status_code == (403 if role == "handler" else 201)


def test_call_list_filters(agent, supervisor):
    client = api_client(supervisor)
    missed = _call(client, agent=agent.pk, started_at="2026-11-30T09:00:00+08:00").json()
    answered = _call(
        client, phone="13900002222", result="answered", started_at="2026-12-01T09:00:00+08:00"
    ).json()

    def ids(**params):
        return _ids(client.get(f"{BASE}/calls", params))

    assert ids() == {missed["id"], answered["id"]}
    assert ids(result="missed") == {missed["id"]}
    assert ids(agent=agent.pk) == {missed["id"]}
    assert ids(agent="me") == {answered["id"]}  # the supervisor answered it
    assert ids(customer=answered["customer"]["id"]) == {answered["id"]}
    assert ids(date_from="2026-12-01") == {answered["id"]}
    assert ids(date_to="2026-11-30") == {missed["id"]}
    bad = client.get(f"{BASE}/calls", {"result": "busy", "date_from": "not a date"})
    assert bad.status_code == 422
    assert "date_from" in bad.json()["errors"]


# --- Quick replies ------------------------------------------------------------------------------
@pytest.fixture
def replies(online_agent, other_agent):
    return {
        "mine": QuickReply.objects.create(
            owner=online_agent, shortcut="hi", title="问候", body="您好"
        ),
        "team": QuickReply.objects.create(shortcut="hours", title="营业时间", body="9点到6点"),
        "theirs": QuickReply.objects.create(
            owner=other_agent, shortcut="bye", title="再见", body="再见"
        ),
    }


def test_quick_replies_are_mine_and_the_teams(replies, online_agent, handler):
    client = api_client(online_agent)
    rows = client.get(f"{BASE}/quick-replies").json()
    assert {r["id"]: r["is_team"] for r in rows} == {
        replies["mine"].pk: False,
        replies["team"].pk: True,
    }
    found = client.get(f"{BASE}/quick-replies", {"q": "营业"}).json()
    assert [r["shortcut"] for r in found] == ["hours"]
    assert api_client(handler).get(f"{BASE}/quick-replies").status_code == 403


def test_agent_adds_changes_and_deletes_own_quick_reply(online_agent):
    client = api_client(online_agent)
    # when
    created = client.post(
        f"{BASE}/quick-replies",
        {"shortcut": "/thanks", "title": "感谢", "body": "谢谢{customer_name}的耐心"},
        "application/json",
    )
    # then
    assert created.status_code == 201, created.content
    reply_id = created.json()["id"]
    assert created.json()["shortcut"] == "thanks"
    assert created.json()["is_team"] is False
    changed = client.put(
        f"{BASE}/quick-replies/{reply_id}",
        {"shortcut": "thanks", "title": "感谢", "body": "谢谢您，{agent_name}为您服务"},
        "application/json",
    )
    assert changed.status_code == 200
    assert QuickReply.objects.get(pk=reply_id).body == "谢谢您，{agent_name}为您服务"
    assert client.delete(f"{BASE}/quick-replies/{reply_id}").status_code == 204
    assert not QuickReply.objects.filter(pk=reply_id).exists()


def test_quick_reply_with_an_unknown_variable_names_the_body(online_agent):
    response = api_client(online_agent).post(
        f"{BASE}/quick-replies",
        {"shortcut": "addr", "title": "地址", "body": "寄到{address}"},
        "application/json",
    )
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["body"]
    assert "address" in response.json()["errors"]["body"][0]


def test_team_replies_are_for_leads_and_others_replies_are_not_found(
    replies, online_agent, chat_supervisor
):
    agent_client = api_client(online_agent)
    body = {"shortcut": "hours", "title": "营业时间", "body": "8点到8点"}
    # agents may not change or add team replies
    assert (
        agent_client.put(
            f"{BASE}/quick-replies/{replies['team'].pk}", body, "application/json"
        ).status_code
        == 403
    )
    team_add = {**body, "shortcut": "new", "team": True}
    assert (
        agent_client.post(f"{BASE}/quick-replies", team_add, "application/json").status_code == 403
    )
    assert agent_client.delete(f"{BASE}/quick-replies/{replies['team'].pk}").status_code == 403
    # another agent's reply does not exist for them
    assert agent_client.delete(f"{BASE}/quick-replies/{replies['theirs'].pk}").status_code == 404
    # the supervisor changes the team reply
    lead_client = api_client(chat_supervisor)
    response = lead_client.put(
        f"{BASE}/quick-replies/{replies['team'].pk}", body, "application/json"
    )
    assert response.status_code == 200
    assert response.json()["is_team"] is True
    assert QuickReply.objects.get(pk=replies["team"].pk).body == "8点到8点"
    assert lead_client.post(f"{BASE}/quick-replies", team_add, "application/json").json()["is_team"]


def test_quick_reply_shortcut_clash_names_the_shortcut(replies, online_agent):
    response = api_client(online_agent).post(
        f"{BASE}/quick-replies", {"shortcut": "hi", "title": "x", "body": "y"}, "application/json"
    )
    assert response.status_code == 422
    assert "shortcut" in response.json()["errors"]


def test_openapi_lists_the_endpoints(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert f"{BASE}/calls" in paths
    assert f"{BASE}/{{conversation_id}}/close" in paths


def test_lists_cost_the_same_queries_for_more_rows(
    chats, web_chat, agent, chat_supervisor, django_assert_max_num_queries
):
    """The conversation and call lists read their rows with their relations in one go."""
    client = api_client(chat_supervisor)
    for n in range(2):
        _call(client, phone=f"1390000222{n}", agent=agent.pk)
    client.get(BASE)  # warm caches (token, permissions)
    with django_assert_max_num_queries(10) as few:
        assert client.get(BASE).status_code == 200
        assert client.get(f"{BASE}/calls").status_code == 200
    baseline = len(few)
    # when: more rows
    for n in range(5):
        _say(web_chat, "你好", key=f"visitor:more{n}")
        _call(client, phone=f"1390000333{n}", agent=agent.pk)
    # then
    with django_assert_max_num_queries(baseline):
        assert len(client.get(BASE).json()["results"]) == 8
        assert len(client.get(f"{BASE}/calls").json()["results"]) == 7


def test_call_gives_the_chats_agent_the_number_and_audits_it(chats, online_agent, other_agent):
    """The agent of the chat gets the number for the call; another agent does not; the
    waiting chat is nobody's yet: no number either."""
    from kefu.audit.models import AuditEntry

    mine = chats["mine"]
    response = api_client(online_agent).post(f"{BASE}/{mine.pk}/call")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["conversation_id"], body["phone"], body["tel"]) == (
        mine.pk,
        "+8613812341234",
        "tel:+8613812341234",
    )
    entry = AuditEntry.objects.get(action="customer.contact_revealed")
    assert entry.changes["call_for"] == {"type": "conversation", "id": mine.pk}
    refused = api_client(other_agent).post(f"{BASE}/{mine.pk}/call")
    waiting = api_client(online_agent).post(f"{BASE}/{chats['waiting'].pk}/call")
    assert refused.status_code in (403, 404)
    assert waiting.status_code == 403
    assert AuditEntry.objects.filter(action="customer.contact_revealed").count() == 1
