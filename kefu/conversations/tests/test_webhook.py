"""The platform webhook: signed messages in through the full HTTP stack, signed answers out to a
real HTTP server on loopback standing in for the integrator's bridge."""

import hashlib
import hmac
import http.server
import json
import socket
import threading
import time

import pytest
from django.db import OperationalError
from django.urls import reverse

from kefu.conversations import webhook_views
from kefu.conversations.files import attachment_url
from kefu.conversations.models import (
    Channel,
    ChannelIdentity,
    Conversation,
    InboxQueue,
    Message,
)
from kefu.conversations.services import message_send
from kefu.customers.models import Customer
from kefu.tickets.tests.fixtures import at

MONDAY_10 = at(2026, 11, 30, 10)
SECRET = "s3cret-of-the-qq-bridge"
pytestmark = pytest.mark.django_db


@pytest.fixture
def frozen(time_machine):
    """Monday 10:00, business hours: the online agent takes new chats."""
    time_machine.move_to(MONDAY_10, tick=False)
    return time_machine


@pytest.fixture
def qq(chat_queue):
    return Channel.objects.create(
        kind=Channel.Kind.WEBHOOK,
        code="qq-shop",
        name="QQ 客服",
        queue=chat_queue,
        greeting="您好，这里是QQ客服，请问有什么可以帮您？",
        config={"secret": SECRET, "platform": "qq", "outbound_url": "http://127.0.0.1:9/"},
    )


def _sign(secret: str, timestamp: str, body: bytes) -> str:
    # Written out here rather than imported, so the test checks the documented recipe.
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _body(message_id="m-1", sender_id="10001", text="你好，在吗？", **extra) -> dict:
    return {
        "message_id": message_id,
        "sender": {"id": sender_id, "name": "张女士", "phone": "13812345678"},
        "type": "text",
        "text": text,
        **extra,
    }


def _post(client, payload, *, code="qq-shop", secret=SECRET, timestamp=None, headers=None):
    raw = (
        payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
    )
    timestamp = str(int(time.time())) if timestamp is None else str(timestamp)
    if headers is None:
        headers = {
            "X-Kefu-Timestamp": timestamp,
            "X-Kefu-Signature": _sign(secret, timestamp, raw),
        }
    return client.post(
        reverse("webhooks:webhook_receive", kwargs={"code": code}),
        data=raw,
        content_type="application/json",
        headers=headers,
    )


def _incoming() -> int:
    return Message.objects.filter(direction=Message.Direction.IN).count()


# --- Inbound ---------------------------------------------------------------------------------
def test_signed_message_is_stored_for_a_new_prospect_routed_and_greeted(
    client, frozen, qq, online_agent
):
    # when
    response = _post(client, _body())
    # then
    assert response.status_code == 201
    answer = response.json()
    assert answer["status"] == "stored"
    message = Message.objects.get(pk=answer["message"])
    assert message.external_id == "m-1"
    assert message.body == "你好，在吗？"
    conversation = message.conversation
    assert conversation.pk == answer["conversation"]
    assert conversation.channel == qq
    assert conversation.assignee == online_agent
    assert conversation.customer.name == "张女士"
    assert conversation.customer.status == Customer.Status.PROSPECT
    assert conversation.customer.source == Customer.Source.PLATFORM
    assert ChannelIdentity.objects.get(channel=qq).key == "qq:10001"
    greeting = conversation.messages.get(direction=Message.Direction.OUT)
    assert greeting.is_automatic
    assert greeting.body == qq.greeting


def test_next_message_of_the_same_sender_joins_the_conversation(client, frozen, qq, online_agent):
    first = _post(client, _body(message_id="m-1")).json()
    # when
    second = _post(client, _body(message_id="m-2", text="想问下营业时间")).json()
    # then
    assert second["status"] == "stored"
    assert second["conversation"] == first["conversation"]
    assert Conversation.objects.count() == 1


def test_without_platform_the_identity_is_prefixed_with_the_channel_code(
    client, frozen, qq, online_agent
):
    qq.config.pop("platform")
    qq.platform = "QQ"  # the display field is not the prefix: renaming it keeps customers
    qq.save()
    # when
    _post(client, _body(sender_id=42))
    # then: a numeric id is taken as its text
    assert ChannelIdentity.objects.get(channel=qq).key == "qq-shop:42"


def test_topic_routes_to_the_queue_with_that_skill(client, frozen, qq):
    after_sales = InboxQueue.objects.create(name="售后", skill="after_sales")
    # when
    answer = _post(client, _body(topic="after_sales")).json()
    # then
    assert Conversation.objects.get(pk=answer["conversation"]).queue == after_sales


def test_image_message_keeps_its_media_url(client, frozen, qq):
    payload = _body(type="image", text="", media_url="https://cdn.example.com/a.jpg")
    # when
    answer = _post(client, payload).json()
    # then
    message = Message.objects.get(pk=answer["message"])
    assert message.kind == Message.Kind.IMAGE
    assert message.media_url == "https://cdn.example.com/a.jpg"


def test_same_message_id_posted_three_times_is_stored_once(client, frozen, qq, online_agent):
    # when: the bridge retries twice (signed again each time)
    answers = [_post(client, _body(message_id="retry-me")) for _ in range(3)]
    # then
    assert [a.status_code for a in answers] == [201, 200, 200]
    first = answers[0].json()
    for again in answers[1:]:
        assert again.json() == {
            "status": "duplicate",
            "message": first["message"],
            "conversation": first["conversation"],
        }
    assert _incoming() == 1
    assert Message.objects.filter(is_automatic=True).count() == 1


def test_previous_secret_is_still_accepted_while_rolling_out_a_new_one(client, frozen, qq):
    qq.config.update(secret="new-secret", previous_secret=SECRET)
    qq.save()
    # when
    old = _post(client, _body(message_id="a"), secret=SECRET)
    new = _post(client, _body(message_id="b"), secret="new-secret")
    # then
    assert (old.status_code, new.status_code) == (201, 201)


# --- Refusals --------------------------------------------------------------------------------
def test_bad_signature_is_refused_and_nothing_stored(client, frozen, qq):
    timestamp = str(int(time.time()))
    raw = json.dumps(_body(), ensure_ascii=False).encode()
    signature = _sign(SECRET, timestamp, raw)
    tampered = raw.replace("你好".encode(), "您好".encode())
    assert tampered != raw
    # when: the body was changed after signing
    response = _post(
        client,
        tampered,
        headers={"X-Kefu-Timestamp": timestamp, "X-Kefu-Signature": signature},
    )
    # then
    assert response.status_code == 401
    assert response.json()["code"] == "signature_invalid"
    assert response.json()["message"]
    assert _incoming() == 0
    assert not Customer.objects.exists()


def test_signature_with_the_wrong_secret_is_refused(client, frozen, qq):
    # when
    response = _post(client, _body(), secret="guessed")
    # then
    assert response.status_code == 401
    assert response.json()["code"] == "signature_invalid"
    assert _incoming() == 0


def test_signature_over_another_timestamp_is_refused(client, frozen, qq):
    """The timestamp is signed: moving it forward to pass the window breaks the signature."""
    raw = json.dumps(_body()).encode()
    old = str(int(time.time()) - 3600)
    # when
    response = _post(
        client,
        raw,
        headers={
            "X-Kefu-Timestamp": str(int(time.time())),
            "X-Kefu-Signature": _sign(SECRET, old, raw),
        },
    )
    # then
    assert response.status_code == 401
    assert response.json()["code"] == "signature_invalid"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Kefu-Signature": "sha256=00"},
        {"X-Kefu-Timestamp": "1796000000"},
    ],
    ids=["none", "no-timestamp", "no-signature"],
)
def test_missing_headers_are_refused(client, frozen, qq, headers):
    # when
    response = _post(client, _body(), headers=headers)
    # then
    assert response.status_code == 401
    assert response.json()["code"] == "signature_missing"
    assert _incoming() == 0


def test_timestamp_that_is_not_unix_seconds_is_refused(client, frozen, qq):
    raw = json.dumps(_body()).encode()
    stamp = "2026-11-30T10:00:00"
    # when
    response = _post(
        client,
        raw,
        headers={"X-Kefu-Timestamp": stamp, "X-Kefu-Signature": _sign(SECRET, stamp, raw)},
    )
    # then
    assert response.status_code == 401
    assert response.json()["code"] == "signature_invalid"


@pytest.mark.parametrize("offset", [-301, 301, -86400], ids=["too-old", "future", "yesterday"])
def test_timestamp_outside_the_window_is_refused_as_a_replay(client, frozen, qq, offset):
    # when: correctly signed, but too far from the server's clock
    response = _post(client, _body(), timestamp=int(time.time()) + offset)
    # then
    assert response.status_code == 401
    assert response.json()["code"] == "stale_request"
    assert _incoming() == 0


def test_timestamp_inside_the_window_is_accepted(client, frozen, qq):
    # when: a bridge whose clock is four minutes behind
    response = _post(client, _body(), timestamp=int(time.time()) - 240)
    # then
    assert response.status_code == 201


def test_channel_may_narrow_the_window(client, frozen, qq):
    qq.config["window_seconds"] = 30
    qq.save()
    # when
    response = _post(client, _body(), timestamp=int(time.time()) - 60)
    # then
    assert response.status_code == 401
    assert response.json()["code"] == "stale_request"


def test_channel_without_secret_refuses_everything(client, frozen, qq):
    qq.config.pop("secret")
    qq.save()
    # when
    response = _post(client, _body(), secret="")
    # then
    assert response.status_code == 401
    assert response.json()["code"] == "channel_not_configured"
    assert _incoming() == 0


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"message_id": ""}, {"message_id"}),
        ({"message_id": None}, {"message_id"}),
        ({"message_id": {"id": 1}}, {"message_id"}),
        ({"sender": None}, {"sender.id"}),
        ({"sender": {"name": "无名"}}, {"sender.id"}),
        ({"sender": "10001"}, {"sender"}),
        ({"type": "sticker"}, {"type"}),
        ({"text": ""}, {"text"}),
        ({"type": "image", "text": ""}, {"media_url"}),
        ({"media_url": "javascript:alert(1)"}, {"media_url"}),
        ({"topic": "x" * 51}, {"topic"}),
        ({"message_id": "", "sender": {}, "type": 3}, {"message_id", "sender.id", "type"}),
    ],
)
def test_invalid_fields_are_named_in_a_422(client, frozen, qq, change, fields):
    payload = {**_body(), **change}
    # when
    response = _post(client, payload)
    # then
    assert response.status_code == 422
    answer = response.json()
    assert answer["code"] == "invalid"
    assert set(answer["errors"]) == fields
    assert all(answer["errors"][f] for f in fields)
    assert _incoming() == 0


def test_json_that_is_not_an_object_is_a_422(client, frozen, qq):
    # when
    response = _post(client, b"[1, 2]")
    # then
    assert response.status_code == 422
    assert response.json()["errors"] == {"__all__": [response.json()["errors"]["__all__"][0]]}


@pytest.mark.parametrize("raw", [b"not json", b'{"message_id": ', b"\xff\xfe"])
def test_body_that_is_not_json_is_a_400(client, frozen, qq, raw):
    # when
    response = _post(client, raw)
    # then
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


def test_body_over_256_kb_is_a_413(client, frozen, qq):
    # when
    response = _post(client, _body(text="好" * 100_000))
    # then
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert _incoming() == 0


@pytest.mark.parametrize("code", ["nope", "site", "qq-off"])
def test_unknown_inactive_or_other_kind_of_channel_is_a_404(client, frozen, qq, web_chat, code):
    Channel.objects.create(
        kind=Channel.Kind.WEBHOOK, code="qq-off", name="停用", is_active=False, config=qq.config
    )
    # when
    response = _post(client, _body(), code=code)
    # then
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_database_unavailable_is_a_503_to_retry(client, frozen, qq, monkeypatch):
    """A locked or unreachable database stores nothing and tells the bridge to retry (a 5xx
    it understands, not an HTML error page). The outage itself cannot be staged in the test
    database, so the service raises what the driver would."""

    def locked(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(webhook_views, "message_receive", locked)
    # when
    response = _post(client, _body())
    # then
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"
    assert response["Retry-After"]


def test_only_post_is_accepted(client, qq):
    # when
    response = client.get(reverse("webhooks:webhook_receive", kwargs={"code": "qq-shop"}))
    # then
    assert response.status_code == 405
    assert response["Allow"] == "POST"


# --- Outbound: a real HTTP server on loopback stands in for the bridge ------------------------
class _Bridge:
    """Records what Kefu POSTs, checking each signature, and answers with `status`."""

    def __init__(self, status: int = 200, answer: dict | None = None):
        self.status = status
        self.answer = answer if answer is not None else {"id": "qq-out-1"}
        self.received: list[dict] = []
        self.bad_signatures = 0
        bridge = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                timestamp = self.headers.get("X-Kefu-Timestamp", "")
                expected = _sign(SECRET, timestamp, raw)
                if not hmac.compare_digest(expected, self.headers.get("X-Kefu-Signature", "")):
                    bridge.bad_signatures += 1
                bridge.received.append({"path": self.path, "body": json.loads(raw)})
                out = json.dumps(bridge.answer).encode()
                self.send_response(bridge.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/kefu/out?token=abc"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "_Bridge":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _conversation_with(client, qq, bridge_url: str) -> Conversation:
    qq.config["outbound_url"] = bridge_url
    qq.config["platform"] = "qq"
    qq.save()
    answer = _post(client, _body(sender_id="10001")).json()
    return Conversation.objects.get(pk=answer["conversation"])


def test_agent_reply_is_posted_signed_to_the_bridge(
    client, frozen, qq, online_agent, django_capture_on_commit_callbacks
):
    with _Bridge() as bridge:
        conversation = _conversation_with(client, qq, bridge.url)
        # when
        with django_capture_on_commit_callbacks(execute=True):
            sent = message_send(
                actor=online_agent,
                conversation_id=conversation.pk,
                body="您好，营业时间是9点到18点。",
            )
    # then
    sent.refresh_from_db()
    assert sent.status == Message.Status.SENT
    assert sent.data["provider_id"] == "qq-out-1"
    assert bridge.bad_signatures == 0
    [request] = bridge.received
    assert request["path"] == "/kefu/out?token=abc"
    body = request["body"]
    assert body["event"] == "message"
    assert body["message_id"] == f"kefu-{sent.pk}"
    assert body["conversation"] == conversation.pk
    assert body["recipient"] == {"id": "10001"}
    assert body["type"] == "text"
    assert body["text"] == "您好，营业时间是9点到18点。"
    assert body["agent"] == "小王"
    assert body["attachment_url"] == ""
    assert body["created_at"]


def test_attachment_is_sent_as_an_absolute_url(
    client, frozen, qq, online_agent, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    settings.BASE_URL = "https://kefu.example.com"
    with _Bridge(answer={}) as bridge:
        conversation = _conversation_with(client, qq, bridge.url)
        # when
        with django_capture_on_commit_callbacks(execute=True):
            sent = message_send(
                actor=online_agent,
                conversation_id=conversation.pk,
                body="",
                attachment=("价目表.pdf", b"%PDF-1.4 prices"),
            )
    # then
    sent.refresh_from_db()
    assert sent.status == Message.Status.SENT
    assert "provider_id" not in sent.data
    body = bridge.received[0]["body"]
    assert body["type"] == "file"
    assert body["attachment_url"] == attachment_url(sent, absolute=True)
    assert body["attachment_url"].startswith("https://kefu.example.com/files/")
    assert body["attachment_name"] == "价目表.pdf"


def test_reply_is_marked_failed_when_the_bridge_answers_500(
    client, frozen, qq, online_agent, django_capture_on_commit_callbacks
):
    with _Bridge(status=500) as bridge:
        conversation = _conversation_with(client, qq, bridge.url)
        # when
        with django_capture_on_commit_callbacks(execute=True):
            sent = message_send(actor=online_agent, conversation_id=conversation.pk, body="在的")
    # then
    sent.refresh_from_db()
    assert len(bridge.received) == 1
    assert sent.status == Message.Status.FAILED
    assert sent.error.startswith("HTTP 500 from 127.0.0.1:")
    assert "token=abc" not in sent.error


def test_reply_is_marked_failed_when_the_bridge_is_unreachable(
    client, frozen, qq, online_agent, django_capture_on_commit_callbacks
):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conversation = _conversation_with(client, qq, f"http://127.0.0.1:{port}/out")
    # when
    with django_capture_on_commit_callbacks(execute=True):
        sent = message_send(actor=online_agent, conversation_id=conversation.pk, body="在的")
    # then
    sent.refresh_from_db()
    assert sent.status == Message.Status.FAILED
    assert sent.error.startswith("Could not reach 127.0.0.1:")


def test_greeting_goes_out_through_the_bridge_too(
    client, frozen, qq, online_agent, django_capture_on_commit_callbacks
):
    with _Bridge() as bridge:
        qq.config["outbound_url"] = bridge.url
        qq.save()
        # when
        with django_capture_on_commit_callbacks(execute=True):
            _post(client, _body())
    # then
    [request] = bridge.received
    assert request["body"]["text"] == qq.greeting
    assert request["body"]["agent"] == ""
    assert request["body"]["is_automatic"] is True
    assert Message.objects.get(is_automatic=True).status == Message.Status.SENT
