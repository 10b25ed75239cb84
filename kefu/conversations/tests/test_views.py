"""The agent's inbox pages: who may open which chat, the lists, one chat with its customer, and
the forms (reply, note, transfer, close with the record, ticket, status, quick replies) with their
HTMX fragments and errors; the list's constant query count."""

import datetime as dt

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from kefu.conversations import services
from kefu.conversations.adapters import Inbound, Sender
from kefu.conversations.models import AgentStatus, Conversation, Message
from kefu.tickets.models import Ticket
from kefu.tickets.tests.fixtures import at

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
MONDAY_10 = at(2026, 11, 30, 10)
TWO_MINUTES = dt.timedelta(minutes=2)


def client_for(user) -> Client:
    client = Client(headers={"accept-language": "en"})
    if user is not None:
        client.force_login(user)
    return client


def chat(channel, body="在吗？", *, key="visitor:x", name="张女士", phone="", now=MONDAY_10):
    """A customer writes on the channel; returns their conversation."""
    received = services.message_receive(
        channel=channel,
        inbound=Inbound(sender=Sender(key=key, name=name, phone=phone), body=body),
        now=now,
    )
    return received.conversation


def everyone_offline() -> None:
    AgentStatus.objects.update(status=AgentStatus.Status.OFFLINE)


def detail_url(conversation) -> str:
    return reverse("conversations:conversation_detail", args=[conversation.pk])


def url(name: str, conversation) -> str:
    return reverse(f"conversations:{name}", args=[conversation.pk])


@pytest.fixture
def mine(web_chat, online_agent):
    """A chat routed to the online agent; the customer left a phone number."""
    return chat(web_chat, key="visitor:mine", name="张女士", phone="13812345678")


@pytest.fixture
def waiting(web_chat, online_agent, mine):
    """A chat left while nobody was online: an offline message, no agent yet (the agent is back
    online but busy with `mine`, room for one chat only)."""
    everyone_offline()
    conversation = chat(web_chat, "有人吗？", key="visitor:waiting", name="李先生")
    AgentStatus.objects.filter(user=online_agent).update(
        status=AgentStatus.Status.ONLINE, capacity=1
    )
    return conversation


@pytest.fixture
def others(web_chat, online_agent, second_agent, chat_supervisor, mine):
    """A chat the supervisor handed to the second agent."""
    conversation = chat(web_chat, "我要退货", key="visitor:other", name="王女士")
    return services.conversation_transfer(
        actor=chat_supervisor, conversation_id=conversation.pk, agent_id=second_agent.pk
    )


# --- Who sees what ----------------------------------------------------------------------------

PAGE_STATUS = {
    # role: inbox, own chat, waiting chat, another agent's chat
    "records_officer": {"inbox": 403, "mine": 403, "waiting": 403, "others": 403},
    "online_agent": {"inbox": 200, "mine": 200, "waiting": 200, "others": 404},
    "chat_supervisor": {"inbox": 200, "mine": 200, "waiting": 200, "others": 200},
}


@pytest.mark.parametrize("page", ["inbox", "mine", "waiting", "others"])
@pytest.mark.parametrize("role", ["anonymous", *sorted(PAGE_STATUS)])
def test_inbox_permission_matrix(request, role, page, mine, waiting, others, records_officer):
    """Anonymous users go to the login; without view_conversation the inbox is refused; an agent
    opens their own and waiting chats but not another agent's; supervisors open every chat."""
    user = None if role == "anonymous" else request.getfixturevalue(role)
    target = reverse("conversations:inbox") if page == "inbox" else detail_url(locals()[page])
    # when
    response = client_for(user).get(target)
    # then
    if role == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    else:
        assert response.status_code == PAGE_STATUS[role][page]


def test_actions_on_another_agents_chat_are_not_found(others, online_agent):
    """An agent cannot post into a chat they cannot see."""
    client = client_for(online_agent)
    # when
    response = client.post(url("message_send", others), {"body": "插一句"}, headers=HX)
    # then
    assert response.status_code == 404
    assert not others.messages.filter(direction=Message.Direction.OUT, author=online_agent)


def test_navigation_shows_the_inbox_to_agents_only(online_agent, records_officer):
    inbox = reverse("conversations:inbox")
    assert f'href="{inbox}"' in client_for(online_agent).get("/inbox/").content.decode()
    officer_page = client_for(records_officer).get(reverse("core:home")).content.decode()
    assert f'href="{inbox}"' not in officer_page


# --- The lists --------------------------------------------------------------------------------


def test_mine_lists_the_agents_open_chats(mine, waiting, others, online_agent):
    """The default list is the agent's own open chats, with preview, channel and wait badge."""
    # given: the customer has waited two minutes by the server's clock
    Conversation.objects.filter(pk=mine.pk).update(waiting_since=timezone.now() - TWO_MINUTES)
    # when
    html = client_for(online_agent).get(reverse("conversations:inbox")).content.decode()
    # then
    assert f'data-conversation="{mine.pk}"' in html
    assert f'data-conversation="{waiting.pk}"' not in html
    assert f'data-conversation="{others.pk}"' not in html
    assert "张女士" in html
    assert "官网在线咨询" in html
    assert "在吗？" in html
    assert 'class="wait-badge late"' in html  # the customer has waited more than a minute
    assert "data-waiting-since=" in html
    assert ">2 min</span>" in html
    assert "unread-dot" in html
    assert 'id="inbox-config"' in html
    assert 'hx-trigger="every 10s, inbox-refresh from:body"' in html


def test_waiting_lists_chats_without_an_agent_offline_messages_flagged(
    web_chat, online_agent, waiting, mine
):
    """Waiting shows chats nobody has yet; offline messages come first and are flagged."""
    # given: a chat queued while agents were online but full
    AgentStatus.objects.filter(user=online_agent).update(capacity=1)
    queued = chat(web_chat, "请问几点关门", key="visitor:late", name="赵女士")
    assert queued.status == Conversation.Status.QUEUED
    assert not queued.is_offline
    # when
    html = client_for(online_agent).get(reverse("conversations:inbox"), {"view": "waiting"})
    html = html.content.decode()
    # then
    assert f'data-conversation="{mine.pk}"' not in html
    assert html.index(f'data-conversation="{waiting.pk}"') < html.index(
        f'data-conversation="{queued.pk}"'
    )
    assert "Offline message" in html
    assert 'data-testid="count-waiting">2<' in html


def test_supervisor_sees_waiting_chats_in_hand_out_order_with_how_long_each_waited(
    web_chat, chat_queue, online_agent, chat_supervisor, time_machine
):
    """The waiting list reads in the order chats are handed out (offline messages first, then
    the customer waiting longest since their first unanswered message, not the oldest chat),
    each with its queue and its wait."""
    # given: a chat answered at 09:01, put back into the queue, where its customer writes
    # again at 09:50; another customer has waited since 09:30; an offline message from the night
    AgentStatus.objects.filter(user=online_agent).update(capacity=1)
    early = chat(web_chat, "我要退货", key="visitor:early", now=at(2026, 11, 30, 9))
    services.message_send(
        actor=online_agent, conversation_id=early.pk, body="好的", now=at(2026, 11, 30, 9, 1)
    )
    since_930 = chat(web_chat, "在吗", key="visitor:930", now=at(2026, 11, 30, 9, 30))
    services.agent_status_set(actor=online_agent, status="away", now=at(2026, 11, 30, 9, 40))
    services.conversation_transfer(
        actor=online_agent,
        conversation_id=early.pk,
        queue_id=chat_queue.pk,
        now=at(2026, 11, 30, 9, 40),
    )
    chat(web_chat, "还在吗？", key="visitor:early", now=at(2026, 11, 30, 9, 50))
    night = chat(web_chat, "晚上好", key="visitor:night", now=at(2026, 11, 29, 22))
    assert night.is_offline
    time_machine.move_to(MONDAY_10, tick=False)
    # when
    response = client_for(chat_supervisor).get(reverse("conversations:inbox"), {"view": "waiting"})
    # then
    html = response.content.decode()
    rows = [f'data-conversation="{c.pk}"' for c in (night, since_930, early)]
    assert all(row in html for row in rows)
    assert html.index(rows[0]) < html.index(rows[1]) < html.index(rows[2])
    assert ">30 min</span>" in html  # since 09:30
    assert ">10 min</span>" in html  # since 09:50, not since the chat began at 09:00
    assert html.count('class="row-queue muted">在线咨询</span>') == 3


def test_all_is_for_leads_and_closed_lists_closed_chats(
    mine, waiting, others, online_agent, chat_supervisor
):
    # given
    services.conversation_close(
        actor=online_agent, conversation_id=mine.pk, topic="营业时间", outcome="answered"
    )
    # when
    lead = client_for(chat_supervisor).get(reverse("conversations:inbox"), {"view": "all"})
    agent = client_for(online_agent).get(reverse("conversations:inbox"), {"view": "all"})
    closed = client_for(online_agent).get(reverse("conversations:inbox"), {"view": "closed"})
    # then
    lead_html = lead.content.decode()
    assert f'data-conversation="{waiting.pk}"' in lead_html
    assert f'data-conversation="{others.pk}"' in lead_html
    assert 'data-tab="all"' in lead_html
    agent_html = agent.content.decode()
    assert 'data-tab="all"' not in agent_html  # agents get their own list instead
    assert f'data-conversation="{others.pk}"' not in agent_html
    closed_html = closed.content.decode()
    assert f'data-conversation="{mine.pk}"' in closed_html
    assert "Answered" in closed_html


def test_htmx_refresh_returns_the_list_alone(mine, online_agent):
    # when
    response = client_for(online_agent).get(
        reverse("conversations:inbox"), {"view": "mine", "current": str(mine.pk)}, headers=HX
    )
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="inbox-list"')
    assert "<html" not in html
    assert 'class="inbox-row current' in html


def test_inbox_list_runs_a_constant_number_of_queries(web_chat, chat_supervisor):
    """The list costs the same number of queries for 2 chats as for 8."""

    def queries_for_list() -> int:
        client = client_for(chat_supervisor)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(reverse("conversations:inbox"), {"view": "all"})
        assert response.status_code == 200
        return len(captured)

    for n in range(2):
        chat(web_chat, key=f"visitor:q{n}", name=f"顾客{n}")
    few = queries_for_list()
    for n in range(2, 8):
        chat(web_chat, key=f"visitor:q{n}", name=f"顾客{n}")
    # when
    many = queries_for_list()
    # then
    assert Conversation.objects.count() == 8
    assert many == few


# --- The status switch ------------------------------------------------------------------------


def test_status_switch_sets_status_and_capacity(online_agent):
    # when
    response = client_for(online_agent).post(
        reverse("conversations:agent_status"), {"status": "busy", "capacity": "4"}, headers=HX
    )
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<form id="status-switch" class="status-switch status-busy"')
    assert "inbox-refresh" in response["HX-Trigger"]
    record = AgentStatus.objects.get(user=online_agent)
    assert (record.status, record.capacity) == ("busy", 4)


def test_status_switch_names_a_bad_capacity(online_agent):
    # when
    response = client_for(online_agent).post(
        reverse("conversations:agent_status"), {"status": "online", "capacity": "99"}, headers=HX
    )
    # then
    assert response.status_code == 200
    assert "Chats at once: Between 1 and 50 chats." in response.content.decode()
    assert AgentStatus.objects.get(user=online_agent).capacity == 3


def test_going_online_hands_out_waiting_chats(web_chat, online_agent, second_agent):
    # given: a chat left while nobody was online
    everyone_offline()
    waiting = chat(web_chat, "留言：请回电", key="visitor:left")
    # when
    client_for(second_agent).post(
        reverse("conversations:agent_status"), {"status": "online"}, headers=HX
    )
    # then
    waiting.refresh_from_db()
    assert waiting.assignee == second_agent


# --- One chat ---------------------------------------------------------------------------------


def test_detail_shows_messages_and_the_customer_with_a_masked_phone(mine, online_agent):
    # when
    response = client_for(online_agent).get(detail_url(mine))
    # then
    assert response.status_code == 200
    html = response.content.decode()
    first = mine.messages.get(direction=Message.Direction.IN)
    greeting = mine.messages.get(is_automatic=True)
    assert f'data-id="{first.pk}"' in html
    assert f'data-id="{greeting.pk}"' in html
    assert 'class="message message-out message-auto"' in html
    assert 'id="reply-body"' in html
    assert 'id="reply-send"' in html
    assert 'id="customer-panel"' in html
    assert mine.customer.number in html
    assert "138****5678" in html
    assert "13812345678" not in html
    assert "customer_contact_reveal" not in html
    assert "/reveal/" not in html
    assert f'"conversation": {mine.pk}' in html  # the script's config


def test_the_agent_calls_the_customer_of_her_chat(mine, online_agent):
    """The customer panel keeps the phone masked and offers a call button; pressing it gives the
    number for that call as a tel: link, audited as a reveal for this conversation."""
    from kefu.audit.models import AuditEntry

    client = client_for(online_agent)
    call_url = url("conversation_call", mine)
    page = client.get(detail_url(mine)).content.decode()
    assert f'hx-post="{call_url}"' in page
    assert "13812345678" not in page
    response = client.post(call_url, headers=HX)
    assert response.status_code == 200
    assert 'href="tel:+8613812345678"' in response.content.decode()
    entry = AuditEntry.objects.get(action="customer.contact_revealed")
    assert (entry.actor, entry.target_id) == (online_agent, str(mine.customer_id))
    assert entry.changes["call_for"] == {"type": "conversation", "id": mine.pk}


def test_another_agents_chat_offers_no_call(others, second_agent, online_agent, chat_supervisor):
    """The chat of the second agent: the first agent gets no number (and no button where she
    may see the chat); the supervisor may call."""
    from kefu.audit.models import AuditEntry
    from kefu.customers.models import ContactPoint

    ContactPoint.objects.create(
        customer=others.customer, kind="phone", value="+8613900001111", is_primary=True
    )
    call_url = url("conversation_call", others)
    response = client_for(online_agent).post(call_url, headers=HX)
    assert response.status_code in (403, 404)
    assert not AuditEntry.objects.filter(action="customer.contact_revealed").exists()
    supervisor = client_for(chat_supervisor)
    assert f'hx-post="{call_url}"' in supervisor.get(detail_url(others)).content.decode()
    answer = supervisor.post(call_url, headers=HX)
    assert answer.status_code == 200
    assert 'href="tel:+8613900001111"' in answer.content.decode()


def test_a_stored_media_address_that_is_not_http_is_no_link(mine, online_agent):
    """A message stored before addresses were checked, with a javascript: PicUrl, shows as
    text: no href and no src carry it."""
    # given
    mine.messages.create(
        channel=mine.channel,
        direction=Message.Direction.IN,
        kind=Message.Kind.IMAGE,
        media_url="javascript:alert(document.cookie)",
    )
    mine.messages.create(
        channel=mine.channel,
        direction=Message.Direction.IN,
        kind=Message.Kind.IMAGE,
        media_url="https://mmbiz.qpic.cn/mmbiz_jpg/abc/0",
    )
    # when
    html = client_for(online_agent).get(detail_url(mine)).content.decode()
    # then
    assert "javascript:" not in html.lower()
    assert 'href="https://mmbiz.qpic.cn/mmbiz_jpg/abc/0"' in html


def test_supervisor_may_reveal_the_phone_on_demand(mine, chat_supervisor):
    html = client_for(chat_supervisor).get(detail_url(mine)).content.decode()
    assert "138****5678" in html
    assert "13812345678" not in html  # only after clicking Show (audited)
    assert "/reveal/" in html


def test_detail_lists_the_customers_history_calls_and_tickets(web_chat, mine, online_agent, agent):
    # given: an earlier, closed chat, a call and an open ticket of the same customer
    services.conversation_close(
        actor=online_agent, conversation_id=mine.pk, topic="营业时间", outcome="answered"
    )
    again = chat(web_chat, "又来了", key="visitor:mine", now=at(2026, 11, 30, 11))
    services.call_record(
        actor=online_agent,
        data={"phone": "13812345678", "result": "answered", "notes": "问会员积分"},
    )
    from kefu.tickets.services import ticket_create

    ticket = ticket_create(
        actor=agent,
        data={"type": "complaint", "subject": "发货慢", "customer": mine.customer_id},
    )
    # when
    html = client_for(online_agent).get(detail_url(again)).content.decode()
    # then
    assert detail_url(mine) in html
    assert "营业时间" in html
    assert "问会员积分" in html
    assert ticket.number in html


def test_load_earlier_returns_the_older_messages(mine, online_agent):
    # given: 120 more messages
    Message.objects.bulk_create(
        Message(
            conversation=mine,
            channel=mine.channel,
            direction=Message.Direction.IN,
            body=f"第{n}条",
        )
        for n in range(120)
    )
    client = client_for(online_agent)
    page = client.get(detail_url(mine)).content.decode()
    ids = list(mine.messages.order_by("id").values_list("id", flat=True))
    shown = ids[-100:]
    assert f'data-id="{shown[0]}"' in page
    assert f'data-id="{ids[-101]}"' not in page
    assert f"?before_id={shown[0]}" in page
    # when
    response = client.get(detail_url(mine), {"before_id": shown[0]}, headers=HX)
    # then
    html = response.content.decode()
    assert all(f'data-id="{pk}"' in html for pk in ids[:-100])
    assert f'data-id="{shown[0]}"' not in html
    assert "before_id" not in html  # nothing older left


def test_reply_over_htmx_returns_the_fragment_and_stores_the_message(mine, online_agent):
    # when
    response = client_for(online_agent).post(
        url("message_send", mine), {"body": "您好，这里是官网客服"}, headers=HX
    )
    # then
    assert response.status_code == 200
    sent = mine.messages.get(author=online_agent)
    assert sent.direction == Message.Direction.OUT
    assert sent.body == "您好，这里是官网客服"
    html = response.content.decode()
    assert 'id="reply-panel"' in html
    assert 'hx-swap-oob="beforeend:#messages"' in html
    assert f'data-id="{sent.pk}"' in html
    assert 'id="reply-body"' in html
    assert "您好，这里是官网客服</textarea>" not in html
    mine.refresh_from_db()
    assert mine.waiting_since is None


def test_first_reply_to_a_waiting_chat_updates_the_header_without_a_reload(
    web_chat, waiting, online_agent, chat_supervisor
):
    """The header said 等待接入 / 尚未分配客服; the answer's fragment carries the new header
    (out of band), and the page's script can fetch the header alone when the socket says so."""
    # given
    client = client_for(online_agent)
    page = client.get(detail_url(waiting)).content.decode()
    assert 'id="chat-head"' in page
    assert "No agent yet" in page
    # when
    response = client.post(url("message_send", waiting), {"body": "您好，在的"}, headers=HX)
    # then
    html = response.content.decode()
    assert '<header class="chat-head" id="chat-head" hx-swap-oob="true">' in html
    head = html[html.index('id="chat-head"') :]
    assert "Agent: 小王" in head
    assert 'class="badge conversation-status-open"' in head
    # and the header alone, for the socket's refresh (a supervisor's screen)
    alone = client_for(chat_supervisor).get(detail_url(waiting), {"part": "head"}, headers=HX)
    alone_html = alone.content.decode()
    assert alone_html.lstrip().startswith('<header class="chat-head" id="chat-head">')
    assert "Agent: 小王" in alone_html
    assert "<html" not in alone_html


def test_pages_give_their_scripts_the_departments_time_zone(mine, online_agent, web_chat):
    """Times the scripts write (live messages) follow the same zone as the server's."""
    inbox = client_for(online_agent).get(detail_url(mine)).content.decode()
    chat_page = Client().get(reverse("webchat:chat_page", args=[web_chat.code])).content.decode()
    assert '"time_zone": "Asia/Shanghai"' in inbox
    assert '"time_zone": "Asia/Shanghai"' in chat_page


def test_reply_without_htmx_redirects_back(mine, online_agent):
    response = client_for(online_agent).post(url("message_send", mine), {"body": "好的"})
    assert response.status_code == 302
    assert response["Location"] == detail_url(mine)
    assert mine.messages.filter(author=online_agent, body="好的").exists()


def test_empty_reply_shows_the_error_under_the_box(mine, online_agent):
    # when
    response = client_for(online_agent).post(url("message_send", mine), {"body": "  "}, headers=HX)
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="reply-errors"' in html
    assert "Reply: Write a message first." in html
    assert not mine.messages.filter(author=online_agent).exists()


def test_reply_with_an_attachment_is_stored_and_served(mine, online_agent, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    upload = SimpleUploadedFile("价目表.pdf", b"%PDF-1.4 price list", "application/pdf")
    client = client_for(online_agent)
    # when
    response = client.post(
        url("message_send", mine), {"body": "", "attachment": upload}, headers=HX
    )
    # then
    assert response.status_code == 200
    sent = mine.messages.get(author=online_agent)
    assert sent.kind == Message.Kind.FILE
    assert sent.attachment_name == "价目表.pdf"
    file_url = reverse("conversations:message_attachment", args=[mine.pk, sent.pk])
    assert file_url in response.content.decode()
    served = client.get(file_url)
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == b"%PDF-1.4 price list"


def test_too_large_attachment_is_refused_naming_the_limit(mine, online_agent, settings):
    settings.ATTACHMENT_MAX_BYTES = 10
    upload = SimpleUploadedFile("photo.jpg", b"x" * 11, "image/jpeg")
    # when
    response = client_for(online_agent).post(
        url("message_send", mine), {"body": "看图", "attachment": upload}, headers=HX
    )
    # then
    assert response.status_code == 200
    assert "Attachment: The file is larger than 10" in response.content.decode()
    assert not mine.messages.filter(author=online_agent).exists()


def test_a_program_is_refused_naming_the_file(mine, online_agent, settings, tmp_path):
    """An agent cannot send tool.exe: the reply box says which file and which types go."""
    settings.MEDIA_ROOT = tmp_path
    upload = SimpleUploadedFile("tool.exe", b"MZ\x90\x00", "application/octet-stream")
    # when
    response = client_for(online_agent).post(
        url("message_send", mine), {"body": "装这个", "attachment": upload}, headers=HX
    )
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert "tool.exe: files of type .exe are not accepted." in html
    assert ".pdf" in html  # the accepted types are named
    assert not mine.messages.filter(author=online_agent).exists()
    assert not list(tmp_path.rglob("tool*.exe"))


@pytest.mark.parametrize(
    ("name", "content", "disposition", "content_type"),
    [
        ("照片.png", b"\x89PNG\r\n", "inline", "image/png"),
        ("说明.html", b"<script>alert(1)</script>", "attachment", "application/octet-stream"),
        ("logo.svg", b"<svg onload='alert(1)'/>", "attachment", "application/octet-stream"),
    ],
)
def test_a_chat_file_opens_in_the_browser_only_when_it_is_a_picture_or_pdf(
    mine, online_agent, settings, tmp_path, name, content, disposition, content_type
):
    """Files stored before the type list (or kept under another list) are still served safely:
    a download under a type the browser cannot run, never sniffed."""
    # given
    settings.MEDIA_ROOT = tmp_path
    message = mine.messages.create(
        channel=mine.channel, direction=Message.Direction.IN, attachment_name=name
    )
    message.attachment.save(name, ContentFile(content))
    # when
    served = client_for(online_agent).get(
        reverse("conversations:message_attachment", args=[mine.pk, message.pk])
    )
    # then
    assert served.status_code == 200
    assert served["Content-Disposition"].startswith(disposition)
    assert served["Content-Type"] == content_type
    assert served["X-Content-Type-Options"] == "nosniff"


def test_note_is_added_for_agents_only(mine, online_agent):
    # when
    response = client_for(online_agent).post(
        url("note_add", mine), {"body": "客户是老会员，语气放软"}, headers=HX
    )
    # then
    assert response.status_code == 200
    note = mine.messages.get(direction=Message.Direction.NOTE)
    assert note.body == "客户是老会员，语气放软"
    html = response.content.decode()
    assert 'id="note-panel"' in html
    assert f'data-id="{note.pk}"' in html
    empty = client_for(online_agent).post(url("note_add", mine), {"body": ""}, headers=HX)
    assert "Write a note first." in empty.content.decode()


def test_transfer_to_another_agent(mine, online_agent, second_agent):
    # when
    response = client_for(online_agent).post(
        url("conversation_transfer", mine),
        {"agent": second_agent.pk, "note": "客户要退货，请跟进"},
        headers=HX,
    )
    # then
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("conversations:inbox")  # no longer ours to see
    mine.refresh_from_db()
    assert mine.assignee == second_agent


def test_transfer_needs_an_agent_or_a_queue(mine, online_agent):
    response = client_for(online_agent).post(
        url("conversation_transfer", mine), {"note": "转给谁？"}, headers=HX
    )
    assert response.status_code == 200
    assert "Agent: Choose an agent or a queue." in response.content.decode()
    mine.refresh_from_db()
    assert mine.assignee == online_agent


def test_close_keeps_the_consultation_record(mine, online_agent):
    # when
    response = client_for(online_agent).post(
        url("conversation_close", mine),
        {"topic": "咨询营业时间", "outcome": "appointment", "note": "约周六到人民路店"},
        headers=HX,
    )
    # then
    assert response.status_code == 200
    assert response["HX-Redirect"] == detail_url(mine)
    mine.refresh_from_db()
    assert mine.status == Conversation.Status.CLOSED
    assert (mine.topic, mine.outcome, mine.outcome_note) == (
        "咨询营业时间",
        "appointment",
        "约周六到人民路店",
    )


def test_close_names_the_missing_fields(mine, online_agent):
    # when
    response = client_for(online_agent).post(
        url("conversation_close", mine), {"topic": "", "outcome": ""}, headers=HX
    )
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="close-panel"' in html
    assert "Topic: Say what the customer asked about." in html
    assert "Outcome: Choose an outcome." in html
    assert "This field is required." not in html  # the ticket fields are not asked for
    mine.refresh_from_db()
    assert mine.status == Conversation.Status.OPEN


def test_closed_chat_shows_the_record_and_the_rating(mine, online_agent):
    # given
    services.conversation_close(
        actor=online_agent, conversation_id=mine.pk, topic="会员积分", outcome="answered"
    )
    services.conversation_rate(conversation_id=mine.pk, rating=4, comment="回复很快")
    # when
    html = client_for(online_agent).get(detail_url(mine)).content.decode()
    # then
    assert 'id="consultation-record"' in html
    assert '<dd id="record-topic">会员积分</dd>' in html
    assert 'id="conversation-rating" data-rating="4"' in html
    assert "4/5" in html
    assert "回复很快" in html
    assert 'id="reply-body"' not in html


def test_close_with_a_complaint_ticket_opens_it_and_goes_there(mine, online_agent):
    # when
    response = client_for(online_agent).post(
        url("conversation_close", mine),
        {
            "topic": "药品过期",
            "outcome": "ticket",
            "note": "客户很生气",
            "ticket-type": "complaint",
            "ticket-severity": "urgent",
            "ticket-subject": "",
        },
        headers=HX,
    )
    # then
    assert response.status_code == 200
    mine.refresh_from_db()
    ticket = mine.ticket
    assert ticket is not None
    assert response["HX-Redirect"] == ticket.get_absolute_url()
    assert mine.status == Conversation.Status.CLOSED
    assert (ticket.type, ticket.severity, ticket.subject) == ("complaint", "urgent", "药品过期")
    assert ticket.customer_id == mine.customer_id
    assert "在吗？" in ticket.description  # the transcript


def test_close_with_a_ticket_changes_nothing_when_the_ticket_is_refused(mine, online_agent):
    # when: the ticket type is missing and so is the topic
    response = client_for(online_agent).post(
        url("conversation_close", mine),
        {"topic": "", "outcome": "ticket", "ticket-type": ""},
        headers=HX,
    )
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert "Type: This field is required." in html
    mine.refresh_from_db()
    assert mine.status == Conversation.Status.OPEN
    assert mine.ticket is None
    assert not Ticket.objects.exists()


def test_open_ticket_from_the_chat(mine, online_agent):
    # when
    response = client_for(online_agent).post(
        url("conversation_open_ticket", mine),
        {"type": "after_sales", "severity": "normal", "subject": "换货"},
        headers=HX,
    )
    # then
    assert response.status_code == 200
    mine.refresh_from_db()
    assert mine.ticket is not None
    assert mine.ticket.subject == "换货"
    assert mine.ticket.channel == Ticket.Channel.WEB_CHAT
    assert response["HX-Redirect"] == mine.ticket.get_absolute_url()
    assert mine.status == Conversation.Status.OPEN  # the chat goes on


def test_open_ticket_names_the_missing_subject(mine, online_agent):
    response = client_for(online_agent).post(
        url("conversation_open_ticket", mine),
        {"type": "complaint", "severity": "normal"},
        headers=HX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="ticket-panel"' in html
    assert "Subject: This field is required." in html
    assert not Ticket.objects.exists()


def test_quick_reply_suggestions_are_filled_in_for_the_chat(mine, online_agent):
    # given
    services.quick_reply_save(
        actor=online_agent,
        data={
            "shortcut": "hello",
            "title": "问候",
            "body": "{customer_name}您好，我是{agent_name}，您的订单{order_no}已发货。",
        },
    )
    services.quick_reply_save(
        actor=online_agent, data={"shortcut": "bye", "title": "结束语", "body": "感谢咨询"}
    )
    # when
    response = client_for(online_agent).get(
        url("quick_reply_suggest", mine), {"q": "hel", "order_no": "DD2026001"}
    )
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-text="张女士您好，我是小王，您的订单DD2026001已发货。"' in html
    assert "/hello" in html
    assert "/bye" not in html
    none = client_for(online_agent).get(url("quick_reply_suggest", mine), {"q": "zzz"})
    assert "No quick reply matches." in none.content.decode()
