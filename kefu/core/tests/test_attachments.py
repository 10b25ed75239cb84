"""One list of file types for tickets, chat and inbound mail (settings.ATTACHMENT_EXTENSIONS)."""

from email.message import EmailMessage

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation

from kefu.conversations.adapters import Inbound, Sender
from kefu.conversations.mail import mail_parse
from kefu.conversations.services import message_receive, message_send
from kefu.core.attachments import attachment_check, attachment_is_accepted
from kefu.core.exceptions import ValidationFailed
from kefu.tickets.services import ticket_attach, ticket_create

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "name",
    ["tool.exe", "page.html", "page.HTM", "logo.svg", "run.bat", "a.js", "archive.zip", "noext"],
)
def test_programs_pages_svg_and_archives_are_not_accepted(name):
    assert not attachment_is_accepted(name)


@pytest.mark.parametrize("name", ["小票.JPG", "发票.pdf", "订单.xlsx", "录音.amr", "视频.mp4"])
def test_photos_documents_and_recordings_are_accepted(name):
    assert attachment_is_accepted(name)


def test_a_refusal_names_the_field_the_file_and_what_is_accepted():
    with translation.override("en"), pytest.raises(ValidationFailed) as refused:
        attachment_check("C:/temp/tool.exe", 10, field="attachment")
    [text] = refused.value.errors["attachment"]
    assert text.startswith("tool.exe: files of type .exe are not accepted.")
    assert ".jpg" in text
    assert ".pdf" in text


def test_tickets_chat_and_mail_all_read_the_one_list(
    agent, customer, web_chat, online_agent, settings, tmp_path
):
    """With the list narrowed to PDF, a photo is refused on a ticket and in a chat reply, and
    left out of an inbound mail; a PDF goes everywhere."""
    settings.MEDIA_ROOT = tmp_path
    settings.ATTACHMENT_EXTENSIONS = frozenset({".pdf"})
    ticket = ticket_create(
        actor=agent,
        data={
            "type": "complaint",
            "channel": "phone",
            "subject": "发票",
            "description": "要发票",
            "customer": customer.pk,
        },
    )
    mine = message_receive(
        channel=web_chat,
        inbound=Inbound(sender=Sender(key="visitor:a", name="张女士"), body="在吗"),
    ).conversation
    with pytest.raises(ValidationFailed):
        ticket_attach(
            actor=agent, ticket_id=ticket.pk, upload=SimpleUploadedFile("照片.jpg", b"\xff\xd8")
        )
    ticket_attach(actor=agent, ticket_id=ticket.pk, upload=SimpleUploadedFile("a.pdf", b"%PDF"))
    with pytest.raises(ValidationFailed) as refused:
        message_send(
            actor=online_agent, conversation_id=mine.pk, body="", attachment=("照片.jpg", b"x")
        )
    assert "attachment" in refused.value.errors
    message_send(actor=online_agent, conversation_id=mine.pk, body="", attachment=("a.pdf", b"%"))
    mail = EmailMessage()
    mail["From"] = "zhangsan@example.cn"
    mail.set_content("见附件")
    mail.add_attachment(b"\xff\xd8", maintype="image", subtype="jpeg", filename="照片.jpg")
    mail.add_attachment(b"%PDF", maintype="application", subtype="pdf", filename="a.pdf")
    assert [name for name, _ in mail_parse(mail.as_bytes()).attachments] == ["a.pdf"]
