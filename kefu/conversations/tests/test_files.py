"""Chat files are served only through signed links."""

import pytest

from kefu.conversations.adapters import Inbound, Sender
from kefu.conversations.files import attachment_url
from kefu.conversations.services import message_receive, message_send, note_add
from kefu.tickets.tests.fixtures import at

pytestmark = pytest.mark.django_db


def test_signed_link_serves_the_file_and_a_forged_one_does_not(
    client, web_chat, online_agent, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    received = message_receive(
        channel=web_chat,
        inbound=Inbound(
            sender=Sender(key="visitor:f"), body="发票", attachments=(("发票.pdf", b"%PDF-1.4"),)
        ),
        now=at(2026, 11, 30, 10),
    )
    url = attachment_url(received.message)
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.4"
    assert "attachment" in response["Content-Disposition"]
    assert client.get(url[:-3] + "xx/").status_code == 404
    # a note's file is never served by link
    note = note_add(actor=online_agent, conversation_id=received.conversation.pk, body="内部")
    assert attachment_url(note) == ""
    reply = message_send(
        actor=online_agent,
        conversation_id=received.conversation.pk,
        body="",
        attachment=("说明.txt", "使用说明".encode()),
    )
    assert client.get(attachment_url(reply)).status_code == 200
