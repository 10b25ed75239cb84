"""The WeChat official account's server address (服务器地址): /channels/wechat/<code>/.

GET is WeChat's URL verification: the signature proves the request came from WeChat, and the
echostr goes back as it came. POST carries a customer's message or an event as XML, signed with
the channel's token; in safe mode (安全模式, the request says encrypt_type=aes) it is AES-encrypted
with the channel's EncodingAESKey and signed as msg_signature, and the reply is encrypted too.
The mode follows each request (compatible mode, 兼容模式, sends encrypted requests too), except
that a channel with an EncodingAESKey takes only encrypted requests.

Stale and replayed requests. The plain-mode signature covers the token, the timestamp and the
nonce, not the body: plain mode cannot tell a genuine body from a forged one sent with a captured
signature. So a request whose timestamp is more than `window_seconds` (default 300) from the
server's clock is refused, and each timestamp and nonce is remembered (core.SeenNonce, shared by
every process) with a hash of the body until it leaves the window: the same signature with
another body is refused; the very same request again is a retry. In safe mode msg_signature also
covers the encrypted body, which only the holder of the EncodingAESKey can make; a channel with a
key refuses plain requests, else a signature captured from a safe-mode push could carry a forged
plain body. Safe mode is the one to use (docs/conversations.md).

WeChat waits 5 seconds for the answer and retries three times; the answer is "success" or one
passive reply (被动回复) carrying the greeting, the away reply or the thanks for a rating. A retry
(same MsgId, or for events the same sender, time and event) stores nothing and gets "success".

Stored: text, image (the picture's URL), voice (WeChat's speech recognition when switched on)
and the follow and unfollow events. Other message types and events are acknowledged and dropped.
"""

import datetime as dt
import hashlib
import logging
from xml.parsers.expat import ExpatError

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from wechatpy import create_reply, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.events import BaseEvent, SubscribeEvent, SubscribeScanEvent, UnsubscribeEvent
from wechatpy.exceptions import InvalidSignatureException, WeChatException
from wechatpy.messages import BaseMessage, ImageMessage, TextMessage, VoiceMessage
from wechatpy.utils import check_signature

from kefu.conversations import services
from kefu.conversations.adapters import Inbound, Sender
from kefu.conversations.models import Channel, Message
from kefu.core.exceptions import DomainError, ValidationFailed
from kefu.core.models import nonce_claim

log = logging.getLogger(__name__)

SUCCESS = "success"
DEFAULT_WINDOW_SECONDS = 300
# What a broken body or ciphertext can raise while it is parsed, decrypted or read.
_MALFORMED = (ExpatError, KeyError, TypeError, ValueError, AttributeError, IndexError)


class _Refused(Exception):
    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status
        self.text = text


def _text(content: str, status: int = 200) -> HttpResponse:
    return HttpResponse(content, content_type="text/plain; charset=utf-8", status=status)


def _check_signature(token: str, request: HttpRequest) -> None:
    params = request.GET
    try:
        check_signature(
            token, params.get("signature", ""), params.get("timestamp", ""), params.get("nonce", "")
        )
    except InvalidSignatureException:
        raise _Refused(403, _("Bad signature.")) from None


def _window_seconds(channel: Channel) -> int:
    """How far a request's timestamp may be from the server's clock, either way."""
    try:
        window = int(channel.config.get("window_seconds") or DEFAULT_WINDOW_SECONDS)
    except (TypeError, ValueError):
        return DEFAULT_WINDOW_SECONDS
    return window if window > 0 else DEFAULT_WINDOW_SECONDS


def _check_fresh(channel: Channel, request: HttpRequest, now: dt.datetime) -> int:
    """The request's (signed) timestamp, refused when it is outside the window."""
    timestamp = request.GET.get("timestamp", "")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise _Refused(403, _("The timestamp must be the time in seconds since 1970 (Unix time)."))
    window = _window_seconds(channel)
    if abs(now.timestamp() - int(timestamp)) > window:
        log.warning("WeChat channel %s: stale timestamp %s refused", channel.code, timestamp)
        raise _Refused(
            403,
            _(
                "The timestamp is more than %(seconds)s seconds away from the server's clock: "
                "a replay, or a clock to set right."
            )
            % {"seconds": window},
        )
    return int(timestamp)


def _check_not_replayed(
    channel: Channel, request: HttpRequest, timestamp: int, now: dt.datetime
) -> None:
    """Remember the timestamp and nonce with the body; the same ones with another body are a
    captured signature replayed."""
    nonce = request.GET.get("nonce", "")
    first_use = nonce_claim(
        scope=f"wechat:{channel.pk}",
        value=f"{timestamp}:{nonce}",
        fingerprint=hashlib.sha256(request.body).hexdigest(),
        expires_at=dt.datetime.fromtimestamp(timestamp + _window_seconds(channel), tz=dt.UTC),
        now=now,
    )
    if not first_use:
        log.warning("WeChat channel %s: replayed signature refused", channel.code)
        raise _Refused(403, _("This signature was used already, with another message."))


def _crypto(channel: Channel, token: str) -> WeChatCrypto:
    aes_key = channel.setting("aes_key")
    if not aes_key:
        raise _Refused(403, _("Safe mode is not set up: the channel has no EncodingAESKey."))
    try:
        return WeChatCrypto(token, aes_key, channel.setting("appid"))
    except (ValueError, AssertionError, TypeError):
        log.warning("WeChat channel %s: the EncodingAESKey is not valid", channel.code)
        raise _Refused(403, _("The channel's EncodingAESKey is not valid.")) from None


def _decrypt(crypto: WeChatCrypto, request: HttpRequest) -> str:
    params = request.GET
    try:
        return crypto.decrypt_message(
            request.body,
            params.get("msg_signature", ""),
            params.get("timestamp", ""),
            params.get("nonce", ""),
        )
    except InvalidSignatureException:
        raise _Refused(403, _("Bad signature.")) from None
    except (WeChatException, UnicodeError, *_MALFORMED):
        raise _Refused(400, _("The encrypted message could not be read.")) from None


def _s(value: object) -> str:
    """A field's text; an element where text belongs makes the message malformed."""
    if value is None:
        return ""
    if isinstance(value, str | int):
        return str(value)
    raise ValueError("not a text field")


def _message_id(msg: BaseMessage) -> str:
    """MsgId; events have none, and WeChat's advice is FromUserName + CreateTime + Event."""
    if not isinstance(msg, BaseEvent) and msg.id:
        return str(msg.id)
    what = msg.event if isinstance(msg, BaseEvent) else msg.type
    return f"{_s(msg.source)}:{_s(msg.time)}:{what}"


def _inbound(msg: BaseMessage) -> Inbound | None:
    """The message as Kefu stores it; None for what Kefu does not keep."""
    sender = Sender(key=_s(msg.source))
    if isinstance(msg, TextMessage):
        return Inbound(sender=sender, body=_s(msg.content), external_id=_message_id(msg))
    if isinstance(msg, ImageMessage):
        return Inbound(
            sender=sender,
            kind=Message.Kind.IMAGE,
            media_url=_s(msg.image),
            external_id=_message_id(msg),
            data={"media_id": _s(msg.media_id)},
        )
    if isinstance(msg, VoiceMessage):
        return Inbound(
            sender=sender,
            kind=Message.Kind.VOICE,
            # Without speech recognition the voice itself stays at WeChat (media_id, 3 days).
            body=_s(msg.recognition) or _("[Voice message]"),
            external_id=_message_id(msg),
            data={"media_id": _s(msg.media_id), "format": _s(msg.format)},
        )
    if isinstance(msg, SubscribeEvent | SubscribeScanEvent):
        data = {"event": "subscribe"}
        if isinstance(msg, SubscribeScanEvent):
            data["scene"] = _s(msg.scene_id)
        return Inbound(
            sender=sender,
            kind=Message.Kind.EVENT,
            body=_("Followed the account"),
            external_id=_message_id(msg),
            data=data,
        )
    if isinstance(msg, UnsubscribeEvent):
        return Inbound(
            sender=sender,
            kind=Message.Kind.EVENT,
            body=_("Unfollowed the account"),
            external_id=_message_id(msg),
            data={"event": "unsubscribe"},
        )
    return None


def _reply_text(msg: BaseMessage, received: services.Received) -> str:
    if not received.created:
        return ""  # a retry: WeChat would show the reply twice
    if received.rated:
        return _("Thank you for rating our service!")
    if isinstance(msg, UnsubscribeEvent):
        return ""  # nobody reads it any more
    return "\n".join(m.body for m in received.automatic if m.body)


def _receive(request: HttpRequest, channel: Channel) -> HttpResponse:
    token = channel.setting("token")
    safe = request.GET.get("encrypt_type", "") == "aes"
    now = timezone.now()
    crypto = None
    if safe:
        crypto = _crypto(channel, token)
        xml = _decrypt(crypto, request)
    elif channel.setting("aes_key"):
        raise _Refused(
            403,
            _(
                "This channel has an EncodingAESKey, so it takes only encrypted messages: choose "
                "safe mode in the WeChat console, or remove the key from the channel's settings."
            ),
        )
    else:
        _check_signature(token, request)
        xml = request.body
    timestamp = _check_fresh(channel, request, now)
    _check_not_replayed(channel, request, timestamp, now)
    try:
        msg = parse_message(xml)
        inbound = _inbound(msg) if msg is not None else None
    except _MALFORMED:
        raise _Refused(400, _("The message is not valid WeChat XML.")) from None
    if msg is None:
        raise _Refused(400, _("The message is empty."))
    if inbound is None:
        return _text(SUCCESS)
    try:
        received = services.message_receive(channel=channel, inbound=inbound, passive=True)
    except ValidationFailed as exc:
        detail = "; ".join(f"{field}: {' '.join(m)}" for field, m in exc.errors.items())
        raise _Refused(400, detail or str(exc.message)) from None
    except DomainError as exc:
        raise _Refused(400, str(exc.message)) from None
    text = _reply_text(msg, received)
    if not text:
        return _text(SUCCESS)
    reply = create_reply(text, message=msg).render()
    if crypto is not None:
        reply = crypto.encrypt_message(
            reply, request.GET.get("nonce", ""), str(int(timezone.now().timestamp()))
        )
    return HttpResponse(reply, content_type="application/xml; charset=utf-8")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def wechat_callback(request: HttpRequest, code: str) -> HttpResponse:
    """WeChat's URL verification (GET) and its message pushes (POST) for one account."""
    channel = get_object_or_404(Channel, kind=Channel.Kind.WECHAT, code=code, is_active=True)
    try:
        if not channel.setting("token"):
            # Without a token anyone could sign; refuse until the channel is set up.
            raise _Refused(403, _("The channel has no token set."))
        if request.method == "GET":
            _check_signature(channel.setting("token"), request)
            _check_fresh(channel, request, timezone.now())
            return _text(request.GET.get("echostr", ""))
        return _receive(request, channel)
    except _Refused as refused:
        return _text(refused.text, refused.status)
