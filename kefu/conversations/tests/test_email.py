"""The e-mail channel: mail in through the SMTP listener and IMAP, threading, replies over SMTP.

Real exchanges on loopback: smtplib talks to Kefu's aiosmtpd listener, the agent's reply goes
to the `smtp_server` sink, and the IMAP poller reads a small IMAP4rev1 server standing in for the
mail provider (and pymap, a real IMAP server, when it is installed).
"""

import asyncio
import base64
import imaplib
import importlib.util
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from django.db import OperationalError
from django.test import override_settings

from kefu.conversations import mail
from kefu.conversations.adapters import DeliveryFailed
from kefu.conversations.adapters.email import EmailAdapter, reply_subject
from kefu.conversations.mail import (
    MailboxUnavailable,
    _imap_folder,
    imap_poll,
    mail_parse,
    mail_receive,
    smtp_controller,
)
from kefu.conversations.models import Channel, Conversation, ConversationEvent, Message
from kefu.conversations.services import conversation_close, message_send
from kefu.conversations.tasks import imap_poll_periodic_task
from kefu.core.exceptions import ValidationFailed
from kefu.customers.models import Customer
from kefu.tickets.tests.fixtures import at

MONDAY_10 = at(2026, 11, 30, 10)
MAILBOX = "service@shop.example"
CUSTOMER = "zhangsan@example.cn"


# --- Fixtures and helpers --------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def monday(time_machine):
    """Monday 10:00, office open: an online agent takes the mail, no away reply goes out."""
    time_machine.move_to(MONDAY_10, tick=True)
    return time_machine


@pytest.fixture
def mail_channel(db, chat_queue):
    return Channel.objects.create(
        kind=Channel.Kind.EMAIL,
        code="mail",
        name="商城客服",
        queue=chat_queue,
        config={"address": "Service@Shop.example"},
    )


@pytest.fixture
def listener(transactional_db):
    """Kefu's SMTP listener (`kefu smtp`) on a free loopback port; it stores mail from its own
    thread, so the test database is a transactional one."""
    controller = smtp_controller("127.0.0.1", _free_port())
    controller.start()
    yield controller
    controller.stop()


def _mail(
    body="你好，我上周下的订单还没有发货，麻烦帮我查一下。",
    *,
    subject="订单 20261130 还没发货",
    sender=f"张三 <{CUSTOMER}>",
    to=MAILBOX,
    message_id=None,
    in_reply_to=None,
    references=None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain="example.cn")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    message.set_content(body)
    return message


def _gbk_mail(message_id: str) -> bytes:
    """A mail as older Chinese mail programs send it: GBK text labelled gb2312 (the body has
    characters outside GB2312), header words in GBK."""

    def word(text: str, charset: str) -> bytes:
        return f"=?{charset}?B?".encode() + base64.b64encode(text.encode("gbk")) + b"?="

    return (
        b"From: "
        + word("李四", "GB2312")
        + b" <LiSi@Example.cn>\r\n"
        + b"To: service@shop.example\r\n"
        + b"Subject: "
        + word("咨询：镕铖家具的保修", "gbk")
        + b"\r\n"
        + f"Message-ID: <{message_id}>\r\n".encode()
        + b"MIME-Version: 1.0\r\n"
        + b"Content-Type: text/plain; charset=gb2312\r\n"
        + b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        + "您好，镕铖牌沙发保修几年？谢谢。".encode("gbk")
        + b"\r\n"
    )


def _send(controller, message, *, to=(MAILBOX,), sender=CUSTOMER):
    raw = message if isinstance(message, bytes) else message.as_bytes()
    with smtplib.SMTP(controller.hostname, controller.port, timeout=30) as client:
        return client.sendmail(sender, list(to), raw)


def _id(message_id: str) -> str:
    return message_id.strip("<>")


# --- Reading a mail --------------------------------------------------------------------------
def test_mail_parse_reads_sender_subject_text_and_thread():
    """The sender is the lower-cased From address with its display name, the ids lose their
    brackets and the refs list References then In-Reply-To."""
    # given
    message = _mail(
        message_id="<Reply-2@Example.cn>",
        in_reply_to="<ours-1@shop.example>",
        references="<first@example.cn> <ours-1@shop.example>",
    )
    # when
    inbound = mail_parse(message.as_bytes())
    # then
    assert inbound.sender.key == CUSTOMER
    assert inbound.sender.email == CUSTOMER
    assert inbound.sender.name == "张三"
    assert inbound.subject == "订单 20261130 还没发货"
    assert inbound.body == "你好，我上周下的订单还没有发货，麻烦帮我查一下。"
    assert inbound.external_id == "Reply-2@Example.cn"
    assert inbound.thread_refs == ("first@example.cn", "ours-1@shop.example")
    assert inbound.kind == Message.Kind.TEXT


def test_mail_parse_decodes_gbk_labelled_gb2312():
    """GBK text labelled gb2312, with characters GB2312 lacks (镕, 铖), reads correctly."""
    # when
    inbound = mail_parse(_gbk_mail("gbk-1@example.cn"))
    # then
    assert inbound.sender.key == "lisi@example.cn"
    assert inbound.sender.name == "李四"
    assert inbound.subject == "咨询：镕铖家具的保修"
    assert inbound.body == "您好，镕铖牌沙发保修几年？谢谢。"


def test_mail_parse_reads_raw_8bit_headers_and_cuts_quoted_history():
    """Headers sent as raw UTF-8 bytes are read; a reply keeps only its new text."""
    # given
    raw = (
        "From: 王五 <wang@example.com>\r\nSubject: 回复：退货\r\n"
        "In-Reply-To: <ours@shop.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "好的，明天寄回。\r\n\r\n------------------ 原始邮件 ------------------\r\n"
        "发件人: 商城客服\r\n请寄回商品。\r\n"
    ).encode()
    # when
    inbound = mail_parse(raw)
    # then
    assert inbound.sender.name == "王五"
    assert inbound.subject == "回复：退货"
    assert inbound.body == "好的，明天寄回。"


def test_mail_parse_turns_html_into_text_and_keeps_attachments():
    """Without a plain part the HTML becomes text; attachments keep their (Chinese) names."""
    # given
    message = _mail()
    message.set_content(
        "<html><head><style>p {color: red}</style></head><body><p>您好&nbsp;客服</p>"
        "<div>第二行<br>第三行</div><script>alert(1)</script></body></html>",
        subtype="html",
    )
    message.add_attachment(
        b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="发票.pdf"
    )
    message.add_attachment(
        b"\x89PNG fake", maintype="image", subtype="png", filename="../../etc/照片.png"
    )
    # when
    inbound = mail_parse(message.as_bytes())
    # then
    assert inbound.body == "您好 客服\n\n第二行\n第三行"
    assert inbound.attachments == (
        ("发票.pdf", b"%PDF-1.4 invoice"),
        ("照片.png", b"\x89PNG fake"),
    )


def test_mail_parse_without_message_id_dedupes_by_content_and_needs_a_sender():
    """No Message-ID: the id is a hash of the bytes, the same for a retry. No sender: refused
    with an error naming the field."""
    # given
    raw = b"From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n"
    # when
    first, again = mail_parse(raw), mail_parse(raw)
    # then
    assert first.external_id.startswith("sha256:")
    assert first.external_id == again.external_id
    with pytest.raises(ValidationFailed) as refused:
        mail_parse(b"Subject: hi\r\n\r\nhello\r\n")
    assert "from" in refused.value.errors


def test_mail_parse_only_attachments_is_a_file_message():
    # given
    message = EmailMessage()
    message["From"] = CUSTOMER
    message["Message-ID"] = "<files@example.cn>"
    message.add_attachment(
        b"data", maintype="application", subtype="octet-stream", filename="订单.xlsx"
    )
    # when
    inbound = mail_parse(message.as_bytes())
    # then
    assert inbound.kind == Message.Kind.FILE
    assert inbound.attachments == (("订单.xlsx", b"data"),)


def test_mail_parse_leaves_out_files_over_the_limit_and_says_so():
    # given
    message = _mail("见附件")
    message.add_attachment(b"x" * 100, maintype="application", subtype="pdf", filename="大.pdf")
    message.add_attachment(b"small", maintype="text", subtype="plain", filename="小.txt")
    # when
    with override_settings(ATTACHMENT_MAX_BYTES=50):
        inbound = mail_parse(message.as_bytes())
    # then
    assert inbound.attachments == (("小.txt", b"small"),)
    assert inbound.data["skipped_attachments"] == ["大.pdf"]
    assert inbound.body.startswith("见附件\n\n[")
    assert "大.pdf" in inbound.body


def test_mail_parse_keeps_only_accepted_file_types_and_notes_the_others():
    """A web page, an SVG and a program are not kept (one list for tickets, chat and mail); the
    message says which files were left out, and the accepted ones are kept."""
    # given
    message = _mail("发票和截图见附件")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="发票.pdf")
    message.add_attachment("<script>alert(1)</script>", subtype="html", filename="invoice.html")
    message.add_attachment(
        b"<svg onload='alert(1)'/>", maintype="image", subtype="svg+xml", filename="logo.svg"
    )
    message.add_attachment(
        b"MZ\x90\x00", maintype="application", subtype="octet-stream", filename="tool.exe"
    )
    # when
    inbound = mail_parse(message.as_bytes())
    # then
    assert inbound.attachments == (("发票.pdf", b"%PDF-1.4"),)
    assert inbound.data["refused_attachments"] == ["invoice.html", "logo.svg", "tool.exe"]
    assert inbound.body.startswith("发票和截图见附件\n\n[")
    assert "invoice.html, logo.svg, tool.exe" in inbound.body


def test_imap_folder_names_are_modified_utf7():
    """Folder names follow RFC 3501 5.1.3 (its own example), quoted when they have spaces."""
    assert _imap_folder("INBOX") == "INBOX"
    assert _imap_folder("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    assert _imap_folder("Sent Items") == '"Sent Items"'
    assert _imap_folder("A&B") == "A&-B"


def test_reply_subject_gets_one_re():
    assert reply_subject("订单还没发货", "客服") == "Re: 订单还没发货"
    assert reply_subject("RE: 订单还没发货", "客服") == "RE: 订单还没发货"
    assert reply_subject("回复：退货", "客服") == "回复：退货"
    assert reply_subject("", "商城客服") == "Re: 商城客服"


# --- The SMTP listener -----------------------------------------------------------------------
# The listener stores mail from its own thread, so these tests use a transactional database;
# each covers a whole exchange (flushing that database is slow on PostgreSQL).
def test_the_listener_stores_mail_for_the_channel(listener, mail_channel, online_agent, monday):
    """A mail to the channel's mailbox (address case does not count) opens a conversation,
    routed to the online agent, for a new prospect with the sender's address; a retry with the
    same Message-ID is stored once; GBK mail reads right; attachments are kept."""
    # when a customer writes
    refused = _send(listener, _mail(message_id="<first@example.cn>"), to=["SERVICE@shop.EXAMPLE"])
    # then
    assert refused == {}
    conversation = Conversation.objects.get()
    assert conversation.channel == mail_channel
    assert conversation.subject == "订单 20261130 还没发货"
    assert conversation.thread_key == "first@example.cn"
    assert conversation.assignee == online_agent
    assert conversation.identity.key == CUSTOMER
    customer = conversation.customer
    assert customer.name == "张三"
    assert customer.status == Customer.Status.PROSPECT
    assert customer.source == Customer.Source.EMAIL
    assert list(customer.contacts.values_list("kind", "value")) == [("email", CUSTOMER)]
    message_in = conversation.messages.get()
    assert message_in.direction == Message.Direction.IN
    assert message_in.body == "你好，我上周下的订单还没有发货，麻烦帮我查一下。"
    assert message_in.external_id == "first@example.cn"

    # when the sending server delivers the same mail again
    refused = _send(listener, _mail(message_id="<first@example.cn>"))
    # then it is accepted and not stored twice
    assert refused == {}
    assert conversation.messages.count() == 1

    # when another customer writes in GBK
    _send(listener, _gbk_mail("gbk-smtp@example.cn"), sender="lisi@example.cn")
    # then
    gbk = Conversation.objects.get(identity__key="lisi@example.cn")
    assert gbk.subject == "咨询：镕铖家具的保修"
    assert gbk.customer.name == "李四"
    assert gbk.messages.get().body == "您好，镕铖牌沙发保修几年？谢谢。"

    # when a third customer sends two files: the first goes with the text, the next is a file
    # message of its own
    files = _mail("发票和照片见附件。", sender="王五 <wang@example.com>")
    files.add_attachment(
        b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="发票.pdf"
    )
    files.add_attachment(b"\x89PNG photo", maintype="image", subtype="png", filename="破损照片.png")
    _send(listener, files, sender="wang@example.com")
    # then
    text, photo = Conversation.objects.get(identity__key="wang@example.com").messages.all()
    assert text.body == "发票和照片见附件。"
    assert text.attachment_name == "发票.pdf"
    assert text.attachment.read() == b"%PDF-1.4 invoice"
    assert photo.kind == Message.Kind.FILE
    assert photo.attachment_name == "破损照片.png"
    assert photo.attachment.read() == b"\x89PNG photo"


def test_the_listener_refuses_what_it_cannot_take(
    listener, mail_channel, online_agent, monday, monkeypatch
):
    """550 for an unknown or inactive mailbox, 554 for a mail without sender (for good), 552
    when too large, 451 while the database is unavailable (the sender retries later)."""
    # given
    Channel.objects.create(
        kind=Channel.Kind.EMAIL,
        code="old",
        name="旧邮箱",
        is_active=False,
        config={"address": "old@shop.example"},
    )
    # when / then: unknown and inactive mailboxes
    for address in ("nobody@shop.example", "old@shop.example"):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            _send(listener, _mail(to=address), to=[address])
        assert refused.value.recipients[address][0] == 550

    # when / then: no sender
    with pytest.raises(smtplib.SMTPDataError) as refused:
        _send(listener, b"To: service@shop.example\r\nSubject: hi\r\n\r\nhello\r\n")
    assert refused.value.smtp_code == 554
    assert b"sender" in refused.value.smtp_error

    # when / then: too large for a listener taking at most 4 KB
    with override_settings(INBOUND_MAIL_MAX_BYTES=4096):
        small = smtp_controller("127.0.0.1", _free_port())
    small.start()
    try:
        with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as refused:
            _send(small, _mail("大" * 5000))
    finally:
        small.stop()
    assert refused.value.smtp_code == 552

    # when / then: the database failing (a stand-in: it cannot be switched off here)
    def database_down(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(mail, "message_receive", database_down)
    later = _mail(message_id="<later@example.cn>")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        _send(listener, later)
    assert refused.value.smtp_code == 451
    assert not Message.objects.exists()

    # when the sending server tries again after the database is back
    monkeypatch.undo()
    _send(listener, later)
    # then
    assert Message.objects.get().external_id == "later@example.cn"


def test_without_envelope_the_to_header_picks_the_channel(mail_channel, online_agent, monday):
    """A mail handed over without recipients (an import, a forwarding script) goes to the
    channel named in To or Cc; a mail from the channel's own address is ignored (no loops)."""
    # when
    received = mail_receive(_mail(to=f"客服 <{MAILBOX}>").as_bytes())
    looped = mail_receive(_mail(sender=MAILBOX).as_bytes())
    # then
    assert [r.conversation.channel for r in received] == [mail_channel]
    assert looped == []


def test_a_mail_with_a_web_page_and_an_svg_keeps_neither(
    mail_channel, online_agent, monday, settings, tmp_path
):
    """Stored: the mail's text with a note naming the files left out, and the accepted file."""
    # given
    settings.MEDIA_ROOT = tmp_path
    message = _mail("请看附件")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="小票.pdf")
    message.add_attachment(
        "<h1>hi</h1><script>alert(1)</script>", subtype="html", filename="a.html"
    )
    message.add_attachment(b"<svg/>", maintype="image", subtype="svg+xml", filename="b.svg")
    # when
    mail_receive(message.as_bytes(), [MAILBOX])
    # then
    stored = Message.objects.filter(direction=Message.Direction.IN)
    assert sorted(m.attachment_name for m in stored if m.attachment) == ["小票.pdf"]
    text = stored.get(attachment_name="小票.pdf").body
    assert "a.html, b.svg" in text
    assert not list(tmp_path.rglob("*.html"))
    assert not list(tmp_path.rglob("*.svg"))


# --- Replies and threads ---------------------------------------------------------------------
def test_replies_go_out_threaded_and_answers_reopen_the_conversation(
    listener, smtp_server, mail_channel, online_agent, monday
):
    """The agent's reply goes from the channel's mailbox to the customer, "Re:" the subject, in
    reply to their latest mail with the chain in References, and its Message-ID is kept. The
    customer answering that reply (In-Reply-To names only our reply) lands in the same
    conversation, even after it was closed: it reopens."""
    # given two mails of the customer in one conversation
    _send(listener, _mail(message_id="<first@example.cn>"))
    _send(
        listener,
        _mail(
            "还有，能开发票吗？",
            subject="Re: 订单 20261130 还没发货",
            message_id="<second@example.cn>",
        ),
    )
    conversation = Conversation.objects.get()

    # when the agent answers with a file (huey runs the delivery at once after commit)
    reply = message_send(
        actor=online_agent,
        conversation_id=conversation.pk,
        body="您好，已为您催促发货，发票随后寄出。",
        attachment=("发货单.txt", "单号 SF123456".encode()),
    )
    # then it went out by SMTP as a reply in the thread
    reply.refresh_from_db()
    assert reply.status == Message.Status.SENT
    [sent] = smtp_server.received
    assert sent.recipients == [CUSTOMER]
    out = sent.message
    assert out["From"].addresses[0].display_name == "商城客服"
    assert out["From"].addresses[0].addr_spec == "Service@Shop.example"
    assert out["To"].addresses[0].addr_spec == CUSTOMER
    assert str(out["Subject"]) == "Re: 订单 20261130 还没发货"
    assert str(out["In-Reply-To"]) == "<second@example.cn>"
    assert str(out["References"]).split() == ["<first@example.cn>", "<second@example.cn>"]
    our_id = str(out["Message-ID"])
    assert our_id.endswith("@shop.example>")
    assert reply.data["provider_id"] == _id(our_id)
    assert out.get_body(("plain",)).get_content().strip() == "您好，已为您催促发货，发票随后寄出。"
    [attached] = out.iter_attachments()
    assert attached.get_filename() == "发货单.txt"
    assert attached.get_content() == "单号 SF123456"

    # given the agent closed the conversation
    conversation_close(
        actor=online_agent, conversation_id=conversation.pk, topic="发货", outcome="answered"
    )
    # when the customer answers our reply
    _send(
        listener,
        _mail(
            "收到，谢谢！还想问下能改地址吗？",
            subject="Re: 订单 20261130 还没发货",
            message_id="<answer@example.cn>",
            in_reply_to=our_id,
            references=our_id,
        ),
    )
    # then
    conversation.refresh_from_db()
    assert Conversation.objects.count() == 1
    assert conversation.status == Conversation.Status.OPEN
    assert conversation.assignee == online_agent
    assert conversation.messages.filter(direction=Message.Direction.IN).count() == 3
    assert conversation.events.filter(kind=ConversationEvent.Kind.REOPENED).exists()

    # when the agent answers again: in reply to the customer's latest mail
    message_send(actor=online_agent, conversation_id=conversation.pk, body="可以，请提供新地址。")
    # then
    second = smtp_server.received[1].message
    assert str(second["In-Reply-To"]) == "<answer@example.cn>"
    assert str(second["References"]).split() == [
        "<first@example.cn>",
        "<second@example.cn>",
        our_id,
        "<answer@example.cn>",
    ]


def test_a_new_mail_after_closing_starts_a_new_conversation(mail_channel, online_agent, monday):
    # given a closed conversation
    first = mail_receive(_mail(message_id="<first@example.cn>").as_bytes(), [MAILBOX])[0]
    conversation_close(
        actor=online_agent, conversation_id=first.conversation.pk, topic="发货", outcome="answered"
    )
    # when a mail that answers nothing arrives
    second = mail_receive(_mail("新问题", subject="退货").as_bytes(), [MAILBOX])[0]
    # then
    assert second.conversation.pk != first.conversation.pk
    assert second.conversation.subject == "退货"


def test_a_refused_delivery_marks_the_reply_failed(
    mail_channel, online_agent, monday, django_capture_on_commit_callbacks
):
    # given outgoing mail pointed at a port where nothing listens
    received = mail_receive(_mail().as_bytes(), [MAILBOX])[0]
    closed_port = _free_port()
    outgoing = override_settings(
        SMTP_ENABLED=True,
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=closed_port,
        EMAIL_TIMEOUT=5,
    )
    # when
    with outgoing, django_capture_on_commit_callbacks(execute=True):
        reply = message_send(
            actor=online_agent, conversation_id=received.conversation.pk, body="您好"
        )
    # then
    reply.refresh_from_db()
    assert reply.status == Message.Status.FAILED
    assert reply.error


def test_the_adapter_refuses_when_outgoing_mail_is_not_set_up(mail_channel, online_agent, monday):
    # given
    received = mail_receive(_mail().as_bytes(), [MAILBOX])[0]
    message = Message.objects.create(
        conversation=received.conversation,
        channel=mail_channel,
        direction=Message.Direction.OUT,
        body="您好",
        status=Message.Status.QUEUED,
    )
    # when / then
    with (
        override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"),
        pytest.raises(DeliveryFailed),
    ):
        EmailAdapter().send(mail_channel, message)


# --- IMAP ------------------------------------------------------------------------------------
class ImapStandIn:
    """A small IMAP4rev1 server (one account, one INBOX) standing in for a mail provider:
    CAPABILITY, LOGIN, SELECT, UID SEARCH UNSEEN, UID FETCH (BODY.PEEK[] / BODY[] / RFC822),
    UID STORE +FLAGS, NOOP, LOGOUT. Fetching without PEEK sets \\Seen, as a real server does."""

    def __init__(self, user: str = "service", password: str = "s3cret pass") -> None:
        self.user, self.password = user, password
        self.mails: list[dict] = []
        self.commands: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def add(self, raw: bytes, *, seen: bool = False) -> int:
        uid = len(self.mails) + 101
        self.mails.append({"uid": uid, "raw": raw, "flags": {"\\Seen"} if seen else set()})
        return uid

    def unseen(self) -> list[int]:
        return [m["uid"] for m in self.mails if "\\Seen" not in m["flags"]]

    def __enter__(self):
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc):
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    async def _client(self, reader, writer) -> None:
        writer.write(b"* OK IMAP4rev1 stand-in ready\r\n")
        authenticated = False
        while line := await reader.readline():
            tag, _, rest = line.decode("utf-8").rstrip("\r\n").partition(" ")
            self.commands.append(rest)
            words = _imap_words(rest)
            command = words[0].upper() if words else ""
            if command == "UID" and len(words) > 1:
                command, words = f"UID {words[1].upper()}", words[1:]
            if command == "CAPABILITY":
                writer.write(b"* CAPABILITY IMAP4rev1\r\n")
            elif command == "NOOP":
                pass
            elif command == "LOGIN":
                if words[1:3] != [self.user, self.password]:
                    writer.write(f"{tag} NO [AUTHENTICATIONFAILED] Invalid\r\n".encode())
                    continue
                authenticated = True
            elif command == "LOGOUT":
                writer.write(f"* BYE\r\n{tag} OK LOGOUT completed\r\n".encode())
                await writer.drain()
                break
            elif not authenticated:
                writer.write(f"{tag} NO not logged in\r\n".encode())
                continue
            elif command == "SELECT":
                if words[1].upper() != "INBOX":
                    writer.write(f"{tag} NO no such mailbox\r\n".encode())
                    continue
                writer.write(
                    f"* {len(self.mails)} EXISTS\r\n* FLAGS (\\Seen)\r\n"
                    f"* OK [UIDVALIDITY 1]\r\n{tag} OK [READ-WRITE] SELECT completed\r\n".encode()
                )
                continue
            elif command == "UID SEARCH" and [w.upper() for w in words[1:]] == ["UNSEEN"]:
                writer.write(f"* SEARCH {' '.join(map(str, self.unseen()))}\r\n".encode())
            elif command == "UID FETCH":
                for seq, found in self._by_uid(words[1]):
                    items = " ".join(words[2:]).upper()
                    if "PEEK" not in items:
                        found["flags"].add("\\Seen")
                    head = f"* {seq} FETCH (UID {found['uid']} BODY[] {{{len(found['raw'])}}}"
                    writer.write(head.encode() + b"\r\n" + found["raw"] + b")\r\n")
            elif command == "UID STORE" and words[2].upper() == "+FLAGS":
                for seq, found in self._by_uid(words[1]):
                    found["flags"].update(" ".join(words[3:]).strip("()").split())
                    flags = " ".join(sorted(found["flags"]))
                    writer.write(f"* {seq} FETCH (UID {found['uid']} FLAGS ({flags}))\r\n".encode())
            else:
                writer.write(f"{tag} BAD unknown command\r\n".encode())
                continue
            writer.write(f"{tag} OK {command} completed\r\n".encode())
            await writer.drain()
        writer.close()

    def _by_uid(self, uid: str):
        return [(i, m) for i, m in enumerate(self.mails, start=1) if str(m["uid"]) == uid]


def _imap_words(line: str) -> list[str]:
    """An IMAP command line as words: "quoted strings" unquoted, atoms like (\\Seen) kept."""
    return [
        re.sub(r"\\(.)", r"\1", quoted) if quoted or atom == "" else atom
        for quoted, atom in re.findall(r'"((?:[^"\\]|\\.)*)"|(\S+)', line)
    ]


def _imap_channel(
    port: int, *, password: str = "s3cret pass", code: str = "imap", **extra
) -> Channel:
    return Channel.objects.create(
        kind=Channel.Kind.EMAIL,
        code=code,
        name="售后邮箱",
        config={
            "address": "aftersales@shop.example",
            "imap_host": "127.0.0.1",
            "imap_port": port,
            "imap_user": "service",
            "imap_password": password,
            "imap_ssl": False,
            **extra,
        },
    )


def test_imap_poll_stores_unread_mail_and_marks_it_read(db, online_agent, monday):
    """Unread mail is fetched without marking it (BODY.PEEK), stored, then flagged \\Seen; read
    mail is left alone; the same Message-ID twice in the mailbox is stored once."""
    with ImapStandIn() as server:
        # given
        channel = _imap_channel(server.port)
        server.add(_mail("已经读过的邮件", message_id="<old@example.cn>").as_bytes(), seen=True)
        server.add(_mail(message_id="<new-1@example.cn>", to="aftersales@shop.example").as_bytes())
        server.add(_gbk_mail("new-2@example.cn"))
        server.add(_mail(message_id="<new-1@example.cn>").as_bytes())  # delivered twice
        # when
        stored = imap_poll(channel)
        again = imap_poll(channel)
    # then
    assert stored == 2
    assert again == 0
    assert server.unseen() == []
    bodies = sorted(Message.objects.filter(channel=channel).values_list("body", flat=True))
    assert bodies == sorted(
        ["你好，我上周下的订单还没有发货，麻烦帮我查一下。", "您好，镕铖牌沙发保修几年？谢谢。"]
    )
    assert Conversation.objects.filter(channel=channel).count() == 2
    fetches = [c for c in server.commands if c.upper().startswith("UID FETCH")]
    assert fetches
    assert all("BODY.PEEK[]" in c for c in fetches)


def test_imap_mail_that_cannot_be_stored_stays_unread(db, online_agent, monday, monkeypatch):
    # given the database failing while the mail is polled (stand-in for an outage)
    def database_down(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(mail, "message_receive", database_down)
    with ImapStandIn() as server:
        channel = _imap_channel(server.port)
        uid = server.add(_mail(message_id="<wait@example.cn>").as_bytes())
        # when
        stored = imap_poll(channel)
        # then
        assert stored == 0
        assert server.unseen() == [uid]
        # when the next poll finds the database back
        monkeypatch.undo()
        stored = imap_poll(channel)
    # then
    assert stored == 1
    assert server.unseen() == []


def test_imap_unreadable_mail_is_marked_read_and_skipped(db, online_agent, monday):
    with ImapStandIn() as server:
        # given a mail without sender, then a good one
        channel = _imap_channel(server.port)
        server.add(b"Subject: no sender\r\n\r\nhello\r\n")
        server.add(_mail(message_id="<good@example.cn>").as_bytes())
        # when
        stored = imap_poll(channel)
    # then
    assert stored == 1
    assert server.unseen() == []


def test_imap_wrong_password_or_folder_is_reported(db):
    with ImapStandIn() as server:
        # given
        wrong_password = _imap_channel(server.port, password="wrong")
        # when / then
        with pytest.raises(MailboxUnavailable):
            imap_poll(wrong_password)
        wrong_folder = _imap_channel(server.port, code="archive", imap_folder="Archive")
        with pytest.raises(MailboxUnavailable):
            imap_poll(wrong_folder)


def test_periodic_task_polls_each_mailbox_channel(db, mail_channel, online_agent, monday):
    """Every active e-mail channel with an IMAP host is polled; the others are not."""
    with ImapStandIn() as server:
        # given
        channel = _imap_channel(server.port)
        server.add(_mail(message_id="<periodic@example.cn>").as_bytes())
        # when
        imap_poll_periodic_task()
    # then
    assert Message.objects.get(channel=channel).external_id == "periodic@example.cn"
    assert not Message.objects.filter(channel=mail_channel).exists()


@pytest.mark.skipif(importlib.util.find_spec("pymap") is None, reason="pymap is not installed")
def test_imap_poll_against_a_real_imap_server(db, online_agent, monday, tmp_path):
    """pymap, an IMAP server in Python, holds the mailbox; mail appended to it is polled, with
    a password that IMAP LOGIN cannot carry."""
    # given pymap in a process of its own, with an in-memory mailbox
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    log = (tmp_path / "pymap.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from pymap.main import main; main()",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-tls",
            "dict",
            "--demo-user",
            "service",
            "--demo-password",
            "客服 secret",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        client = _imap_connect_retrying(port)
        client.authenticate("PLAIN", lambda _: "\0service\0客服 secret".encode())
        client.append("INBOX", None, None, _mail(message_id="<pymap-1@example.cn>").as_bytes())
        client.append("INBOX", None, None, _gbk_mail("pymap-2@example.cn"))
        channel = _imap_channel(port, password="客服 secret")  # not ASCII: SASL PLAIN
        # when
        stored = imap_poll(channel)
        again = imap_poll(channel)
        # then
        client.select("INBOX")
        unseen = client.uid("SEARCH", None, "UNSEEN")[1][0]
        client.logout()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
        log.close()
    assert (stored, again) == (2, 0)
    assert unseen == b""
    assert sorted(
        Message.objects.filter(channel=channel).values_list("external_id", flat=True)
    ) == ["pymap-1@example.cn", "pymap-2@example.cn"]


def _imap_connect_retrying(port: int) -> imaplib.IMAP4:
    deadline = time.monotonic() + 20
    while True:
        try:
            return imaplib.IMAP4("127.0.0.1", port, timeout=10)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# --- `kefu smtp` -----------------------------------------------------------------------------
KEFU = Path(sys.executable).with_name("kefu")


@pytest.mark.slow
def test_kefu_smtp_command_takes_mail_for_the_channels(tmp_path):
    """`kefu smtp --port N` listens on loopback, stores mail for a channel, refuses others and
    stops on Ctrl-C."""
    if os.environ.get("KEFU_TEST_DATABASE_URL"):
        pytest.skip("the command runs on an SQLite installation of its own: once is enough")
    # given an installation of its own with one e-mail channel
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEFU_", "DJANGO_", "PYTEST"))}
    env.update(KEFU_VAR_DIR=str(tmp_path / "var"), KEFU_BACKUP_DAILY_HOUR="")
    subprocess.run([KEFU, "migrate", "-v0"], env=env, check=True, timeout=300)
    create = (
        "from kefu.conversations.models import Channel; Channel.objects.create(kind='email', "
        f"code='mail', name='客服邮箱', config={{'address': '{MAILBOX}'}})"
    )
    subprocess.run([KEFU, "shell", "-c", create], env=env, check=True, timeout=120)
    port = _free_port()
    log = tmp_path / "smtp.log"
    server = subprocess.Popen(
        [KEFU, "smtp", "--port", str(port)],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        client = _smtp_connect_retrying(port)
        # when
        refused = client.sendmail(
            CUSTOMER, [MAILBOX], _mail(message_id="<cli@example.cn>").as_bytes()
        )
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail(CUSTOMER, ["nobody@shop.example"], _mail().as_bytes())
        client.quit()
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=30)
    # then
    assert refused == {}
    assert f"127.0.0.1:{port}" in log.read_text()
    stored = subprocess.run(
        [
            KEFU,
            "shell",
            "--no-imports",
            "-c",
            "from kefu.conversations.models import Message; "
            "print(Message.objects.get(direction='in').external_id)",
        ],
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    )
    assert stored.stdout.strip() == "cli@example.cn"


def _smtp_connect_retrying(port: int) -> smtplib.SMTP:
    deadline = time.monotonic() + 30
    while True:
        try:
            return smtplib.SMTP("127.0.0.1", port, timeout=30)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
