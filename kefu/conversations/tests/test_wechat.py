"""The WeChat official account channel: WeChat's requests, signed and (in safe mode) encrypted
as WeChat's developer documentation describes them, and agents' replies sent as customer-service
messages to a small HTTP server on loopback standing in for api.weixin.qq.com."""

import base64
import hashlib
import itertools
import json
import os
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import xmltodict
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.test import Client
from django.urls import reverse
from django.utils import translation

from kefu.conversations.files import attachment_url
from kefu.conversations.models import Channel, Conversation, Message
from kefu.conversations.services import conversation_close, message_send
from kefu.core.models import SeenNonce
from kefu.tickets.tests.fixtures import at

pytestmark = pytest.mark.django_db

MONDAY_10 = at(2026, 11, 30, 10)
TOKEN = "kefu2026token"
APPID = "wx5f3e8d2c1b0a9876"
SECRET = "0123456789abcdef0123456789abcdef"
ACCOUNT = "gh_3a1b2c3d4e5f"  # the official account's own id (ToUserName)
OPENID = "oVx1A5dGh8kLmN0pQrStUvWxYz12"
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")  # 43 characters


# --- WeChat's side: signing, XML, the AES scheme ---------------------------------------------
def _sha1_sorted(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the parts sorted and joined."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


_nonces = itertools.count(1320562132)
NOW = "1796004000"  # MONDAY_10 as Unix time: WeChat signs with its (correct) clock


def _signed_query(
    token: str = TOKEN, *, timestamp: str = NOW, nonce: str = "", **extra: str
) -> dict[str, str]:
    """A request's signature: WeChat draws a new nonce for every request it sends."""
    nonce = nonce or str(next(_nonces))
    return {
        "signature": _sha1_sorted(token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        **extra,
    }


def _xml(msg_type: str, *, sender: str = OPENID, create_time: int = 1796004000, **fields) -> str:
    """A push as WeChat sends it: text in CDATA, numbers bare."""
    nodes = {
        "ToUserName": ACCOUNT,
        "FromUserName": sender,
        "CreateTime": create_time,
        "MsgType": msg_type,
        **fields,
    }
    body = "".join(
        f"<{name}>{value}</{name}>"
        if isinstance(value, int)
        else f"<{name}><![CDATA[{value}]]></{name}>"
        for name, value in nodes.items()
    )
    return f"<xml>{body}</xml>"


def _text_xml(content: str, msg_id: int, **kwargs) -> str:
    return _xml("text", Content=content, MsgId=msg_id, **kwargs)


def _aes_key() -> bytes:
    return base64.b64decode(AES_KEY + "=")


def _encrypt(plain: str) -> str:
    """random(16) + length(4, network order) + message + appid, PKCS#7 to 32, AES-256-CBC with
    IV = key[:16], Base64."""
    raw = plain.encode()
    full = os.urandom(16) + struct.pack(">I", len(raw)) + raw + APPID.encode()
    pad = 32 - len(full) % 32
    full += bytes([pad]) * pad
    key = _aes_key()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(full) + encryptor.finalize()).decode()


def _decrypt(encrypted: str) -> str:
    key = _aes_key()
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    full = decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()
    full = full[: -full[-1]]
    (length,) = struct.unpack(">I", full[16:20])
    assert full[20 + length :].decode() == APPID
    return full[20 : 20 + length].decode()


# --- Kefu's side -------------------------------------------------------------------------------
class _StandIn(BaseHTTPRequestHandler):
    """api.weixin.qq.com for one test: the token, customer-service messages, media uploads."""

    def log_message(self, format, *args):
        pass

    def _answer(self, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        api = self.server.api
        if url.path == "/cgi-bin/token":
            api.token_requests.append(query)
            self._answer({"access_token": "ACCESS_TOKEN_1", "expires_in": 7200})
        else:
            self._answer({"errcode": 404, "errmsg": "not found"})

    def do_POST(self):
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        api = self.server.api
        if query.get("access_token") != "ACCESS_TOKEN_1":
            self._answer({"errcode": 40014, "errmsg": "invalid access_token"})
        elif url.path == "/cgi-bin/message/custom/send":
            api.sent.append(json.loads(body))
            self._answer(api.send_answer)
        elif url.path == "/cgi-bin/message/template/send":
            api.templates.append(json.loads(body))
            self._answer({"errcode": 0, "errmsg": "ok", "msgid": 200228332})
        elif url.path == "/cgi-bin/media/upload":
            api.uploads.append({"type": query.get("type"), "body": body})
            self._answer({"type": "image", "media_id": "MEDIA_ID_1", "created_at": 1796004000})
        else:
            self._answer({"errcode": 404, "errmsg": "not found"})


class WeChatApi:
    def __init__(self, server: ThreadingHTTPServer):
        host, port = server.server_address[:2]
        self.url = f"http://{host}:{port}/"
        self.token_requests: list[dict] = []
        self.sent: list[dict] = []
        self.uploads: list[dict] = []
        self.templates: list[dict] = []
        self.send_answer: dict = {"errcode": 0, "errmsg": "ok"}


@pytest.fixture
def wechat_api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandIn)
    server.api = WeChatApi(server)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.api
    server.shutdown()
    server.server_close()


@pytest.fixture
def monday(time_machine):
    """Monday 30 November 2026, 10:00: office hours, the agent is in."""
    time_machine.move_to(MONDAY_10, tick=False)
    return time_machine


@pytest.fixture
def official_account(db, chat_queue, wechat_api):
    return Channel.objects.create(
        kind=Channel.Kind.WECHAT,
        code="mp",
        name="微信公众号",
        queue=chat_queue,
        greeting="您好，欢迎关注，请问有什么可以帮您？",
        away_message="客服暂时不在线，请留言。",
        config={
            "token": TOKEN,
            "appid": APPID,
            "appsecret": SECRET,
            "api_base_url": wechat_api.url,
        },
    )


@pytest.fixture
def safe_account(official_account):
    official_account.config = {**official_account.config, "aes_key": AES_KEY}
    official_account.save()
    return official_account


@pytest.fixture
def wechat() -> Client:
    """WeChat's servers: no cookies, no CSRF token, no Accept-Language."""
    return Client()


def _url(channel: Channel, query: dict[str, str]) -> str:
    return reverse("wechat:callback", args=[channel.code]) + "?" + urlencode(query)


def _push(client: Client, channel: Channel, xml: str, query: dict[str, str] | None = None):
    query = query if query is not None else _signed_query(openid=OPENID)
    return client.post(_url(channel, query), data=xml, content_type="text/xml")


def _passive(response) -> dict:
    assert response["Content-Type"].startswith("application/xml")
    return xmltodict.parse(response.content)["xml"]


def _zh(text: str) -> str:
    with translation.override("zh-hans"):
        return translation.gettext(text)


# --- URL verification --------------------------------------------------------------------------
def test_url_verification_echoes_echostr_when_the_signature_is_right(
    monday, wechat, official_account
):
    # when
    response = wechat.get(_url(official_account, _signed_query(echostr="5837397520316529")))
    # then
    assert response.status_code == 200
    assert response.content == b"5837397520316529"
    assert response["Content-Type"].startswith("text/plain")


def test_url_verification_refuses_a_wrong_signature(monday, wechat, official_account):
    # when: signed with another token
    response = wechat.get(_url(official_account, _signed_query("other", echostr="58373975")))
    # then
    assert response.status_code == 403
    assert b"58373975" not in response.content


def test_unknown_or_inactive_channel_is_not_found(monday, wechat, official_account):
    # given
    official_account.is_active = False
    official_account.save()
    # when
    inactive = wechat.get(_url(official_account, _signed_query(echostr="1")))
    unknown = wechat.get(
        reverse("wechat:callback", args=["nope"]) + "?" + urlencode(_signed_query(echostr="1"))
    )
    # then
    assert inactive.status_code == 404
    assert unknown.status_code == 404


def test_a_channel_without_a_token_refuses_everything(monday, wechat, official_account):
    """With no token anyone could compute the signature."""
    # given
    official_account.config = {**official_account.config, "token": ""}
    official_account.save()
    # when
    response = wechat.get(_url(official_account, _signed_query("", echostr="1")))
    # then
    assert response.status_code == 403


# --- Messages in -------------------------------------------------------------------------------
def test_text_message_is_stored_and_answered_with_the_greeting(
    monday, wechat, official_account, online_agent
):
    # when
    response = _push(wechat, official_account, _text_xml("请问几点营业？", 6242412700123456001))
    # then: one passive text reply from the account to the customer
    assert response.status_code == 200
    reply = _passive(response)
    assert reply["MsgType"] == "text"
    assert reply["ToUserName"] == OPENID
    assert reply["FromUserName"] == ACCOUNT
    assert reply["Content"] == official_account.greeting
    message = Message.objects.get(direction=Message.Direction.IN)
    assert message.body == "请问几点营业？"
    assert message.external_id == "6242412700123456001"
    conversation = message.conversation
    assert conversation.assignee == online_agent
    assert conversation.identity.key == OPENID
    greeting = conversation.messages.get(direction=Message.Direction.OUT)
    assert greeting.is_automatic
    assert greeting.status == Message.Status.SENT


def test_away_reply_goes_with_the_greeting_when_nobody_is_online(monday, wechat, official_account):
    # when: no agent online
    response = _push(wechat, official_account, _text_xml("有人吗", 6242412700123456002))
    # then: both automatic answers in the one passive reply
    assert _passive(response)["Content"] == (
        f"{official_account.greeting}\n{official_account.away_message}"
    )
    assert Conversation.objects.get().is_offline


def test_a_message_pushed_three_times_is_stored_once(
    monday, wechat, official_account, online_agent
):
    """WeChat retries three times when it thinks the answer was late; a retry answers
    "success" so the customer does not see the greeting twice."""
    xml = _text_xml("在吗", 6242412700123456003)
    # when
    responses = [_push(wechat, official_account, xml) for _ in range(3)]
    # then
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert _passive(responses[0])["Content"] == official_account.greeting
    assert [r.content for r in responses[1:]] == [b"success", b"success"]
    assert Message.objects.filter(direction=Message.Direction.IN).count() == 1
    assert Message.objects.filter(direction=Message.Direction.OUT).count() == 1


def test_the_next_message_joins_the_conversation_and_gets_no_greeting(
    monday, wechat, official_account, online_agent
):
    # given
    _push(wechat, official_account, _text_xml("你好", 6242412700123456004))
    # when
    response = _push(wechat, official_account, _text_xml("想问下退货", 6242412700123456005))
    # then
    assert response.content == b"success"
    assert Conversation.objects.count() == 1
    assert Message.objects.filter(direction=Message.Direction.IN).count() == 2


def test_image_message_keeps_the_picture_address_and_media_id(
    monday, wechat, official_account, online_agent
):
    # when
    xml = _xml(
        "image",
        PicUrl="http://mmbiz.qpic.cn/mmbiz_jpg/abc123/0",
        MediaId="media_id_image_1",
        MsgId=6242412700123456006,
    )
    response = _push(wechat, official_account, xml)
    # then
    assert response.status_code == 200
    message = Message.objects.get(direction=Message.Direction.IN)
    assert message.kind == Message.Kind.IMAGE
    assert message.media_url == "http://mmbiz.qpic.cn/mmbiz_jpg/abc123/0"
    assert message.data == {"media_id": "media_id_image_1"}


@pytest.mark.parametrize(
    "address",
    [
        "javascript:alert(document.cookie)",
        "JavaScript:alert(1)",
        "data:text/html,<b>x</b>",
        " java\tscript:alert(1)",
    ],
)
def test_an_image_whose_address_is_not_http_is_refused(
    monday, wechat, official_account, online_agent, address
):
    # when
    xml = _xml("image", PicUrl=address, MediaId="media_id_image_2", MsgId=6242412700123456099)
    response = _push(wechat, official_account, xml)
    # then
    assert response.status_code == 400
    assert not Message.objects.exists()


def test_voice_message_keeps_the_recognised_text(monday, wechat, official_account, online_agent):
    # when
    xml = _xml(
        "voice",
        MediaId="media_id_voice_1",
        Format="amr",
        Recognition="我的订单还没到",
        MsgId=6242412700123456007,
    )
    _push(wechat, official_account, xml)
    # then
    message = Message.objects.get(direction=Message.Direction.IN)
    assert message.kind == Message.Kind.VOICE
    assert message.body == "我的订单还没到"
    assert message.data == {"media_id": "media_id_voice_1", "format": "amr"}


def test_voice_message_without_recognition_is_still_stored(
    monday, wechat, official_account, online_agent
):
    # when
    xml = _xml("voice", MediaId="media_id_voice_2", Format="amr", MsgId=6242412700123456008)
    _push(wechat, official_account, xml)
    # then: a placeholder body, the media id to fetch it by
    message = Message.objects.get(direction=Message.Direction.IN)
    assert message.kind == Message.Kind.VOICE
    assert message.body == _zh("[Voice message]")
    assert message.data["media_id"] == "media_id_voice_2"


def test_follow_is_an_event_greeted_once_even_when_pushed_again(
    monday, wechat, official_account, online_agent
):
    xml = _xml("event", Event="subscribe", EventKey="")
    # when
    first = _push(wechat, official_account, xml)
    again = _push(wechat, official_account, xml)
    # then
    assert _passive(first)["Content"] == official_account.greeting
    assert again.content == b"success"
    event = Message.objects.get(direction=Message.Direction.IN)
    assert event.kind == Message.Kind.EVENT
    assert event.body == _zh("Followed the account")
    assert event.external_id == f"{OPENID}:1796004000:subscribe"
    assert event.data == {"event": "subscribe"}


def test_follow_by_scanning_a_code_keeps_the_scene(monday, wechat, official_account, online_agent):
    # when
    xml = _xml("event", Event="subscribe", EventKey="qrscene_store_12", Ticket="TICKET")
    _push(wechat, official_account, xml)
    # then
    event = Message.objects.get(direction=Message.Direction.IN)
    assert event.kind == Message.Kind.EVENT
    assert event.data == {"event": "subscribe", "scene": "store_12"}


def test_unfollow_is_stored_as_an_event_and_not_answered(
    monday, wechat, official_account, online_agent
):
    # given
    _push(wechat, official_account, _text_xml("你好", 6242412700123456009))
    # when
    response = _push(
        wechat, official_account, _xml("event", Event="unsubscribe", create_time=1796004100)
    )
    # then
    assert response.content == b"success"
    event = Message.objects.get(kind=Message.Kind.EVENT)
    assert event.body == _zh("Unfollowed the account")
    assert event.data == {"event": "unsubscribe"}
    assert event.conversation.messages.filter(direction=Message.Direction.IN).count() == 2


@pytest.mark.parametrize(
    "xml",
    [
        _xml("event", Event="CLICK", EventKey="V1001_MENU"),
        _xml("location", Location_X="23.1", Location_Y="113.3", Label="广州", MsgId=77),
        _xml("shortvideo", MediaId="m", ThumbMediaId="t", MsgId=78),
    ],
    ids=["menu-click", "location", "short-video"],
)
def test_other_messages_and_events_are_acknowledged_and_not_stored(
    monday, wechat, official_account, online_agent, xml
):
    # when
    response = _push(wechat, official_account, xml)
    # then
    assert response.status_code == 200
    assert response.content == b"success"
    assert not Message.objects.exists()


# --- Refusals ----------------------------------------------------------------------------------
def test_a_push_with_a_wrong_signature_is_refused(monday, wechat, official_account):
    # when
    response = _push(
        wechat,
        official_account,
        _text_xml("伪造", 1),
        query=_signed_query("not-the-token", openid=OPENID),
    )
    # then
    assert response.status_code == 403
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        "",
        "this is not xml",
        "<xml><MsgType>text</MsgType>",
        "<note><MsgType>text</MsgType></note>",
        "<xml>hello</xml>",
        "<xml><FromUserName>x</FromUserName></xml>",
        _xml("text", Content="hi", MsgId="not-a-number"),
        "<xml><ToUserName>a</ToUserName><FromUserName><b>x</b></FromUserName>"
        "<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content>"
        "<MsgId>9</MsgId></xml>",
        _xml("text", Content="", MsgId=6242412700123456010),
    ],
    ids=[
        "empty",
        "not-xml",
        "unclosed",
        "wrong-root",
        "text-root",
        "no-type",
        "bad-msgid",
        "element-as-sender",
        "empty-text",
    ],
)
def test_a_malformed_push_is_a_bad_request(monday, wechat, official_account, online_agent, body):
    # when
    response = _push(wechat, official_account, body)
    # then
    assert response.status_code == 400
    assert response.content
    assert not Message.objects.exists()


# --- Safe mode ---------------------------------------------------------------------------------
def _safe_push(
    client: Client, channel: Channel, plain: str, *, token: str = TOKEN, timestamp: str = NOW
):
    """The body carries only ToUserName and Encrypt; msg_signature signs the ciphertext."""
    encrypted = _encrypt(plain)
    query = _signed_query(token, timestamp=timestamp, openid=OPENID, encrypt_type="aes")
    query["msg_signature"] = _sha1_sorted(token, query["timestamp"], query["nonce"], encrypted)
    body = (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    )
    return _push(client, channel, body, query=query)


def test_safe_mode_decrypts_the_message_and_encrypts_the_reply(
    monday, wechat, safe_account, online_agent
):
    # when
    response = _safe_push(wechat, safe_account, _text_xml("加密的消息", 6242412700123456011))
    # then: the reply is encrypted and signed as WeChat expects
    assert response.status_code == 200
    envelope = _passive(response)
    assert envelope["MsgSignature"] == _sha1_sorted(
        TOKEN, envelope["TimeStamp"], envelope["Nonce"], envelope["Encrypt"]
    )
    reply = xmltodict.parse(_decrypt(envelope["Encrypt"]))["xml"]
    assert reply["ToUserName"] == OPENID
    assert reply["Content"] == safe_account.greeting
    assert Message.objects.get(direction=Message.Direction.IN).body == "加密的消息"


def test_safe_mode_refuses_a_wrong_msg_signature(monday, wechat, safe_account, online_agent):
    # when
    response = _safe_push(wechat, safe_account, _text_xml("伪造", 12), token="not-the-token")
    # then
    assert response.status_code == 403
    assert not Message.objects.exists()


def test_safe_mode_with_garbage_ciphertext_is_a_bad_request(monday, wechat, safe_account):
    # given: a correctly signed ciphertext that is not WeChat's AES scheme
    encrypted = base64.b64encode(b"x" * 40).decode()
    query = _signed_query(openid=OPENID, encrypt_type="aes")
    query["msg_signature"] = _sha1_sorted(TOKEN, query["timestamp"], query["nonce"], encrypted)
    body = f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    # when
    response = _push(wechat, safe_account, body, query=query)
    # then
    assert response.status_code == 400


def test_safe_mode_push_to_a_channel_without_aes_key_is_refused(monday, wechat, official_account):
    # when
    response = _safe_push(wechat, official_account, _text_xml("你好", 13))
    # then
    assert response.status_code == 403
    assert not Message.objects.exists()


def test_safe_mode_with_a_broken_aes_key_in_the_settings_is_refused(monday, wechat, safe_account):
    # given: a key that is not 43 characters of Base64
    safe_account.config = {**safe_account.config, "aes_key": "too-short"}
    safe_account.save()
    # when
    response = _safe_push(wechat, safe_account, _text_xml("你好", 14))
    # then
    assert response.status_code == 403
    assert not Message.objects.exists()


# --- Stale and replayed requests ---------------------------------------------------------------
# WeChat's plain-mode signature covers the token, the timestamp and the nonce, not the body: a
# captured signature is good for any body. Kefu refuses timestamps outside a window and remembers
# each (timestamp, nonce) with the body it came with until the timestamp leaves the window.
A_YEAR_AGO = str(int(NOW) - 365 * 24 * 3600)


def test_a_push_with_a_year_old_timestamp_is_refused(monday, wechat, official_account):
    # when: correctly signed, but with a timestamp of a year ago
    query = _signed_query(timestamp=A_YEAR_AGO, openid=OPENID)
    response = _push(wechat, official_account, _text_xml("去年的消息", 31), query=query)
    # then
    assert response.status_code == 403
    assert not Message.objects.exists()


def test_a_timestamp_just_inside_the_window_is_taken(
    monday, wechat, official_account, online_agent
):
    # when: WeChat's clock four minutes behind Kefu's
    query = _signed_query(timestamp=str(int(NOW) - 240), openid=OPENID)
    response = _push(wechat, official_account, _text_xml("你好", 32), query=query)
    # then
    assert response.status_code == 200
    assert Message.objects.filter(direction=Message.Direction.IN).count() == 1


def test_a_captured_signature_reused_with_a_forged_body_is_refused(
    monday, wechat, official_account, online_agent
):
    """The attack of the report: a genuine push's signature, timestamp and nonce, replayed with a
    body that makes up a new customer."""
    # given: a genuine push
    captured = _signed_query(openid=OPENID)
    assert _push(wechat, official_account, _text_xml("你好", 33), query=captured).status_code == 200
    # when: the same query string with a forged body
    forged = _text_xml("我要退款到这个账户", 34, sender="oFORGED_customer_openid")
    response = _push(wechat, official_account, forged, query=captured)
    # then
    assert response.status_code == 403
    assert not Message.objects.filter(body="我要退款到这个账户").exists()
    assert not Conversation.objects.filter(identity__key="oFORGED_customer_openid").exists()


def test_the_same_request_again_is_a_retry_and_is_answered_success(
    monday, wechat, official_account, online_agent
):
    """If WeChat retries with the very same query string and body, that is no attack: the
    message is stored once and the retry gets "success"."""
    query, xml = _signed_query(openid=OPENID), _text_xml("在吗", 35)
    # when
    first = _push(wechat, official_account, xml, query=query)
    again = _push(wechat, official_account, xml, query=query)
    # then
    assert _passive(first)["Content"] == official_account.greeting
    assert (again.status_code, again.content) == (200, b"success")
    assert Message.objects.filter(direction=Message.Direction.IN).count() == 1


def test_a_remembered_nonce_is_forgotten_when_its_timestamp_leaves_the_window(
    monday, wechat, official_account, online_agent
):
    # given
    _push(wechat, official_account, _text_xml("你好", 36))
    assert SeenNonce.objects.count() == 1
    # when: ten minutes later, the next push
    monday.shift(600)
    query = _signed_query(timestamp=str(int(NOW) + 600), openid=OPENID)
    _push(wechat, official_account, _text_xml("还在吗", 37), query=query)
    # then: only the new one is remembered
    assert SeenNonce.objects.count() == 1
    assert SeenNonce.objects.get().value.startswith(str(int(NOW) + 600))


def test_url_verification_with_a_stale_timestamp_is_refused(monday, wechat, official_account):
    # when
    query = _signed_query(timestamp=A_YEAR_AGO, echostr="5837397520316529")
    response = wechat.get(_url(official_account, query))
    # then
    assert response.status_code == 403
    assert b"5837397520316529" not in response.content


def test_safe_mode_refuses_a_year_old_timestamp(monday, wechat, safe_account, online_agent):
    # when: the ciphertext and msg_signature are right, the time is not
    response = _safe_push(wechat, safe_account, _text_xml("旧消息", 38), timestamp=A_YEAR_AGO)
    # then
    assert response.status_code == 403
    assert not Message.objects.exists()


def test_an_account_in_safe_mode_refuses_plain_pushes(monday, wechat, safe_account, online_agent):
    """Once the channel has its EncodingAESKey, a push without encryption is refused: else a
    signature captured from a safe-mode push (WeChat sends `signature` there too) would carry
    a forged plain body."""
    # when
    response = _push(wechat, safe_account, _text_xml("明文伪造", 39))
    # then
    assert response.status_code == 403
    assert not Message.objects.exists()


def test_safe_mode_refuses_a_replayed_nonce_with_another_ciphertext(
    monday, wechat, safe_account, online_agent
):
    # given: a genuine encrypted push
    encrypted = _encrypt(_text_xml("你好", 40))
    query = _signed_query(openid=OPENID, encrypt_type="aes")
    query["msg_signature"] = _sha1_sorted(TOKEN, query["timestamp"], query["nonce"], encrypted)
    body = f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    assert _push(wechat, safe_account, body, query=query).status_code == 200
    # when: its timestamp and nonce again, with another body (which msg_signature would not
    # cover either: it is refused for both reasons)
    other = _encrypt(_text_xml("伪造", 41))
    response = _push(
        wechat, safe_account, f"<xml><Encrypt><![CDATA[{other}]]></Encrypt></xml>", query=query
    )
    # then
    assert response.status_code == 403
    assert Message.objects.filter(direction=Message.Direction.IN).count() == 1


# --- The survey --------------------------------------------------------------------------------
def _close(conversation: Conversation, agent) -> None:
    conversation_close(
        actor=agent, conversation_id=conversation.pk, topic="营业时间", outcome="answered"
    )


def test_a_number_after_the_chat_closed_is_its_rating(
    monday, wechat, official_account, online_agent, django_capture_on_commit_callbacks, wechat_api
):
    # given: a chat closed by the agent; the survey invitation goes out as a service message
    _push(wechat, official_account, _text_xml("几点关门？", 6242412700123456012))
    conversation = Conversation.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        _close(conversation, online_agent)
    invitation = conversation.messages.get(data__survey=True)
    assert wechat_api.sent == [
        {"touser": OPENID, "msgtype": "text", "text": {"content": invitation.body}}
    ]
    # when: the customer answers "5"
    response = _push(wechat, official_account, _text_xml("5", 6242412700123456013))
    # then: thanked, and the rating is the conversation's
    assert _passive(response)["Content"] == _zh("Thank you for rating our service!")
    conversation.refresh_from_db()
    assert conversation.rating == 5
    assert conversation.rated_agent == online_agent
    assert Conversation.objects.count() == 1


def test_a_retried_rating_opens_no_new_conversation(monday, wechat, official_account, online_agent):
    # given
    _push(wechat, official_account, _text_xml("几点关门？", 6242412700123456014))
    _close(Conversation.objects.get(), online_agent)
    rating = _text_xml("4", 6242412700123456015)
    _push(wechat, official_account, rating)
    # when: WeChat pushes the answer again
    response = _push(wechat, official_account, rating)
    # then
    assert response.content == b"success"
    assert Conversation.objects.count() == 1


# --- Agents' replies out -----------------------------------------------------------------------
@pytest.fixture
def conversation(monday, wechat, official_account, online_agent):
    _push(wechat, official_account, _text_xml("请问几点营业？", 6242412700123456020))
    return Conversation.objects.get()


def test_an_agent_reply_goes_out_as_a_customer_service_message(
    conversation, online_agent, wechat_api, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        message = message_send(
            actor=online_agent, conversation_id=conversation.pk, body="每天9点到18点营业。"
        )
    # then
    assert wechat_api.sent == [
        {"touser": OPENID, "msgtype": "text", "text": {"content": "每天9点到18点营业。"}}
    ]
    assert wechat_api.token_requests == [
        {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    ]
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert message.error == ""


def test_the_access_token_is_fetched_once_for_many_replies(
    conversation, online_agent, wechat_api, django_capture_on_commit_callbacks
):
    # when
    for body in ("第一条", "第二条", "第三条"):
        with django_capture_on_commit_callbacks(execute=True):
            message_send(actor=online_agent, conversation_id=conversation.pk, body=body)
    # then
    assert [m["text"]["content"] for m in wechat_api.sent] == ["第一条", "第二条", "第三条"]
    assert len(wechat_api.token_requests) == 1


def test_a_wechat_refusal_marks_the_message_failed_with_the_reason(
    conversation, online_agent, wechat_api, django_capture_on_commit_callbacks
):
    # given: the customer wrote more than 48 hours ago
    wechat_api.send_answer = {
        "errcode": 45015,
        "errmsg": "response out of time limit or subscription is canceled",
    }
    # when
    with django_capture_on_commit_callbacks(execute=True):
        message = message_send(actor=online_agent, conversation_id=conversation.pk, body="您好")
    # then
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert "45015" in message.error
    assert "response out of time limit" in message.error
    assert "48" in message.error


def test_an_unreachable_wechat_marks_the_message_failed(
    conversation, official_account, online_agent, django_capture_on_commit_callbacks
):
    # given: nothing listens at the API address
    with ThreadingHTTPServer(("127.0.0.1", 0), _StandIn) as closed:
        port = closed.server_address[1]
    official_account.config = {
        **official_account.config,
        "api_base_url": f"http://127.0.0.1:{port}/",
    }
    official_account.save()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        message = message_send(actor=online_agent, conversation_id=conversation.pk, body="您好")
    # then
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert "ConnectionError" in message.error
    assert SECRET not in message.error


def test_an_image_attachment_is_uploaded_and_sent_as_an_image(
    conversation,
    online_agent,
    wechat_api,
    django_capture_on_commit_callbacks,
    settings,
    tmp_path,
):
    # given
    settings.MEDIA_ROOT = tmp_path
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    # when
    with django_capture_on_commit_callbacks(execute=True):
        message = message_send(
            actor=online_agent,
            conversation_id=conversation.pk,
            body="这是门店地图",
            attachment=("map.png", png),
        )
    # then: the text first, then the picture by its media id
    assert [upload["type"] for upload in wechat_api.uploads] == ["image"]
    assert b'filename="map.png"' in wechat_api.uploads[0]["body"]
    assert png in wechat_api.uploads[0]["body"]
    assert wechat_api.sent == [
        {"touser": OPENID, "msgtype": "text", "text": {"content": "这是门店地图"}},
        {"touser": OPENID, "msgtype": "image", "image": {"media_id": "MEDIA_ID_1"}},
    ]
    message.refresh_from_db()
    assert message.status == Message.Status.SENT


def test_another_file_is_sent_as_a_link(
    conversation,
    online_agent,
    wechat_api,
    django_capture_on_commit_callbacks,
    settings,
    tmp_path,
):
    # given
    settings.MEDIA_ROOT = tmp_path
    settings.BASE_URL = "https://kefu.example.com"
    # when
    with django_capture_on_commit_callbacks(execute=True):
        message = message_send(
            actor=online_agent,
            conversation_id=conversation.pk,
            body="",
            attachment=("价目表.pdf", b"%PDF-1.4 test"),
        )
    # then
    message.refresh_from_db()
    (sent,) = wechat_api.sent
    assert sent["msgtype"] == "text"
    assert "价目表.pdf" in sent["text"]["content"]
    assert attachment_url(message, absolute=True) in sent["text"]["content"]
    assert not wechat_api.uploads
    assert message.status == Message.Status.SENT
