"""POST /channels/hook/<code>/: customer messages from a platform bridge (docs/webhooks.md).

parse → check the signature and the clock → validate the body → `message_receive`. Errors are
JSON in the API's shape {"code", "message", "errors"}; a repeated message id is stored once and
answered 200 "duplicate", so a bridge may retry anything it is unsure about.
"""

import logging
import time
from typing import Any

from django.core.exceptions import RequestDataTooBig, ValidationError
from django.core.validators import URLValidator
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from kefu.conversations.adapters import Inbound, Sender
from kefu.conversations.adapters import webhook as hook
from kefu.conversations.models import Channel, Message
from kefu.conversations.services import message_receive
from kefu.core.exceptions import DomainError, ValidationFailed
from kefu.core.json_body import JsonBodyInvalid, json_body_load

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
KINDS = {
    "text": Message.Kind.TEXT,
    "image": Message.Kind.IMAGE,
    "file": Message.Kind.FILE,
    "voice": Message.Kind.VOICE,
}
LIMITS = {
    "message_id": 200,
    "sender.id": 150,
    "sender.name": 100,
    "sender.phone": 40,
    "sender.email": 254,
    "text": 10000,
    "media_url": 500,
    "topic": 50,
}


def _error(
    request: HttpRequest, status: int, code: str, message: str, errors: dict | None = None
) -> HttpResponse:
    from kefu.core.api import error_response

    return error_response(request, status, code, message, errors)


def _channel(code: str) -> Channel | None:
    return Channel.objects.filter(code=code, kind=Channel.Kind.WEBHOOK, is_active=True).first()


def _read_body(request: HttpRequest) -> bytes | None:
    """The raw body, or None when it is larger than MAX_BODY_BYTES."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        return None
    try:
        body = request.body
    except RequestDataTooBig:
        return None
    return body if len(body) <= MAX_BODY_BYTES else None


def _authenticate(request: HttpRequest, channel: Channel, body: bytes) -> HttpResponse | None:
    """None when the request is signed with the channel's secret within the time window."""
    secrets = hook.channel_secrets(channel)
    if not secrets:
        log.warning("webhook channel %s has no secret: request refused", channel.code)
        return _error(
            request,
            401,
            "channel_not_configured",
            _("This channel has no secret yet; set one in the channel's settings."),
        )
    timestamp = request.headers.get(hook.TIMESTAMP_HEADER, "").strip()
    provided = request.headers.get(hook.SIGNATURE_HEADER, "").strip()
    if not timestamp or not provided:
        return _error(
            request,
            401,
            "signature_missing",
            _("The X-Kefu-Timestamp and X-Kefu-Signature headers are required."),
        )
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return _error(
            request,
            401,
            "signature_invalid",
            _("X-Kefu-Timestamp must be the time in whole seconds since 1970 (Unix time)."),
        )
    if not hook.signature_matches(secrets, timestamp, body, provided):
        return _error(
            request,
            401,
            "signature_invalid",
            _("The signature does not match the body; check the channel's secret."),
        )
    window = hook.window_seconds(channel)
    if abs(time.time() - int(timestamp)) > window:
        return _error(
            request,
            401,
            "stale_request",
            _(
                "X-Kefu-Timestamp is more than %(seconds)s seconds away from the server's "
                "clock: a replay, or a clock to set right."
            )
            % {"seconds": window},
        )
    return None


def _text(
    data: dict, name: str, errors: dict[str, list[str]], *, required: bool = False, label: str = ""
) -> str:
    """A string field (numbers are taken as their text: platforms' ids often are numbers)."""
    label = label or name
    value = data.get(name.rpartition(".")[2])
    if value is None or value == "":
        if required:
            errors.setdefault(label, []).append(_("This field is required."))
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        errors.setdefault(label, []).append(_("Must be a string."))
        return ""
    value = str(value).strip()
    if required and not value:
        errors.setdefault(label, []).append(_("This field is required."))
    elif len(value) > LIMITS[label]:
        errors.setdefault(label, []).append(
            _("At most %(count)s characters.") % {"count": LIMITS[label]}
        )
    return value


def _inbound(channel: Channel, payload: Any) -> Inbound:
    """The body as an Inbound; ValidationFailed names each field that is wrong."""
    if not isinstance(payload, dict):
        raise ValidationFailed({"__all__": [_("The body must be a JSON object.")]})
    errors: dict[str, list[str]] = {}
    message_id = _text(payload, "message_id", errors, required=True)
    sender = payload.get("sender")
    if sender is None:
        errors["sender.id"] = [_("This field is required.")]
        sender = {}
    elif not isinstance(sender, dict):
        errors["sender"] = [_("Must be an object with id, name and phone.")]
        sender = {}
    sender_id = ""
    if "sender.id" not in errors and "sender" not in errors:
        sender_id = _text(sender, "id", errors, required=True, label="sender.id")
    name = _text(sender, "name", errors, label="sender.name")
    phone = _text(sender, "phone", errors, label="sender.phone")
    email = _text(sender, "email", errors, label="sender.email")
    kind = payload.get("type", "text")
    if kind is None or kind == "":
        kind = "text"
    if not isinstance(kind, str) or kind not in KINDS:
        errors["type"] = [_("Must be one of: text, image, file, voice.")]
        kind = "text"
    text = _text(payload, "text", errors)
    media_url = _text(payload, "media_url", errors)
    if media_url and "media_url" not in errors:
        try:
            URLValidator(schemes=["http", "https"])(media_url)
        except ValidationError:
            errors["media_url"] = [_("Must be an http or https URL.")]
    topic = _text(payload, "topic", errors)
    if "type" not in errors:
        if kind == "text" and not text and "text" not in errors:
            errors["text"] = [_("A text message needs its text.")]
        if kind != "text" and not media_url and "media_url" not in errors:
            errors["media_url"] = [_("An image, file or voice message needs its media_url.")]
    if errors:
        raise ValidationFailed(errors)
    return Inbound(
        sender=Sender(
            key=hook.identity_key(channel, sender_id), name=name, phone=phone, email=email
        ),
        body=text,
        kind=KINDS[kind],
        external_id=message_id,
        media_url=media_url,
        data={"topic": topic} if topic else {},
    )


@csrf_exempt
def webhook_receive(request: HttpRequest, code: str) -> HttpResponse:
    """Store one customer message from the channel's bridge."""
    if request.method != "POST":
        response = _error(request, 405, "method_not_allowed", _("Only POST is accepted here."))
        response["Allow"] = "POST"
        return response
    try:
        return _receive(request, code)
    except OperationalError:
        # The database is busy, away or out of connections: nothing was stored; the bridge
        # retries with the same message_id.
        log.exception("webhook %s: database unavailable", code)
        response = _error(
            request, 503, "unavailable", _("Kefu cannot store messages right now; retry later.")
        )
        response["Retry-After"] = "5"
        return response


def _receive(request: HttpRequest, code: str) -> HttpResponse:
    channel = _channel(code)
    if channel is None:
        return _error(request, 404, "not_found", _("No active webhook channel has this code."))
    body = _read_body(request)
    if body is None:
        return _error(
            request,
            413,
            "too_large",
            _("The body is larger than %(size)s KB.") % {"size": MAX_BODY_BYTES // 1024},
        )
    refused = _authenticate(request, channel, body)
    if refused is not None:
        return refused
    try:
        payload = json_body_load(body)
    except JsonBodyInvalid as exc:
        return _error(request, exc.status, exc.code, exc.message)
    try:
        received = message_receive(channel=channel, inbound=_inbound(channel, payload))
    except DomainError as exc:
        return _error(request, exc.status, exc.code, exc.message, exc.errors)
    conversation_id = received.conversation.pk if received.conversation else None
    if received.message is None:
        return JsonResponse({"status": "rated", "conversation": conversation_id})
    answer = {
        "status": "stored" if received.created else "duplicate",
        "message": received.message.pk,
        "conversation": conversation_id,
    }
    return JsonResponse(answer, status=201 if received.created else 200)
