"""The web chat a company puts on its own site with one script tag.

- /chat/<code>/widget.js: the loader. It adds a floating button that opens the chat page in an
  iframe (a panel; full screen on a phone). Static code (conversations/widget.js) wrapped in a
  function of a small config (the chat page's address, the button's words); cacheable.
- /chat/<code>/: the chat page inside that iframe, embeddable on any site (or only the ones
  listed in the channel's `allowed_origins`), with the pre-chat form when the channel has one.
- /chat/<code>/session (POST, JSON or form): the visitor's signed token (kefu.conversations.
  visitors), carrying the pre-chat answers; with an existing token, says whether it still holds.

The session endpoint is exempt from CSRF: it runs inside a third-party site's iframe, where the
browser does not send Kefu's SameSite=Lax CSRF cookie with a fetch, and it changes nothing (a
token is only signed data; nothing is stored until the visitor writes over the WebSocket, which
the token authorizes).
"""

import json
import re
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from kefu.conversations.models import Channel, InboxQueue
from kefu.conversations.visitors import visitor_token_make, visitor_token_read
from kefu.core.csp import csp_frame_ancestors
from kefu.core.exceptions import ValidationFailed
from kefu.core.json_body import JsonBodyInvalid, json_body_load
from kefu.customers.contacts import ContactInvalid, phone_normalize

WIDGET_SOURCE = "conversations/widget.js"
JAVASCRIPT = "text/javascript; charset=utf-8"
# Browsers and proxies may keep the loader this long; a changed channel shows up after it.
WIDGET_MAX_AGE = 300
NAME_MAX_LENGTH = 100
MESSAGE_MAX_LENGTH = 5000
_COLOR = re.compile(r"^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$")
# An origin or host pattern a CSP frame-ancestors list accepts: https://shop.example, *.example.
_ANCESTOR = re.compile(r"^(https?://)?(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:\d{1,5})?$")
DEFAULT_COLOR = "#1f5fbf"


def _active_channel(code: str) -> Channel | None:
    return (
        Channel.objects.filter(code=code, kind=Channel.Kind.WEB_CHAT, is_active=True)
        .select_related("queue")
        .first()
    )


def _topics() -> list[str]:
    """The pre-chat form's topics: the skills of the queues (each sends a chat to its queue)."""
    skills = InboxQueue.objects.exclude(skill="").values_list("skill", flat=True)
    return sorted(set(skills))


def _color(channel: Channel) -> str:
    color = channel.setting("color")
    return color if _COLOR.match(color) else DEFAULT_COLOR


# --- The loader ------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _widget_source_cached() -> str:
    return _widget_source_read()


def _widget_source_read() -> str:
    path = finders.find(WIDGET_SOURCE)
    if path:
        with open(path, encoding="utf-8") as source:
            return source.read()
    from django.contrib.staticfiles.storage import staticfiles_storage

    with staticfiles_storage.open(WIDGET_SOURCE) as source:
        return source.read().decode("utf-8")


def _widget_source() -> str:
    return _widget_source_read() if settings.DEBUG else _widget_source_cached()


@require_safe
def widget_script(request: HttpRequest, code: str) -> HttpResponse:
    """The one script a company adds to its pages: the button and the chat panel."""
    channel = _active_channel(code)
    if channel is None:
        body = f"/* Kefu: there is no active web chat {json.dumps(code)}. */\n"
        return HttpResponse(body, status=404, content_type=JAVASCRIPT)
    config = {
        "url": request.build_absolute_uri(reverse("webchat:chat_page", args=[channel.code])),
        "code": channel.code,
        "title": channel.name,
        "label": channel.setting("button_label") or _("Chat with us"),
        "close": _("Close the chat"),
        "color": _color(channel),
    }
    body = (
        f"/* Kefu web chat: {channel.code} */\n(function (config) {{\n"
        f"{_widget_source()}\n}})({json.dumps(config)});\n"
    )
    response = HttpResponse(body, content_type=JAVASCRIPT)
    patch_cache_control(response, public=True, max_age=WIDGET_MAX_AGE)
    patch_vary_headers(response, ["Accept-Language"])
    return response


# --- The chat page ---------------------------------------------------------------------------
def _frame_ancestors(channel: Channel) -> list[str] | None:
    """The CSP frame-ancestors of the channel's `allowed_origins` (a list, or a string split on
    commas and spaces); None when the channel lists none (any site may embed the chat)."""
    allowed = channel.config.get("allowed_origins") or []
    if isinstance(allowed, str):
        allowed = re.split(r"[\s,]+", allowed)
    sources = [str(origin).strip().rstrip("/") for origin in allowed]
    sources = [source for source in sources if _ANCESTOR.match(source)]
    return list(dict.fromkeys(sources)) or None


def _labels() -> dict[str, str]:
    """The words chat.js shows, translated here (the script holds no text of its own)."""
    return {
        "connecting": _("Connecting…"),
        "reconnecting": _("Connection lost. Reconnecting…"),
        "online": _("Online"),
        "offline": _("You are offline. Messages will be sent when the connection is back."),
        "sending": _("Sending…"),
        "failed": _("Not sent"),
        "error": _("Something went wrong. Please try again."),
        "start_failed": _("The chat could not start. Please try again in a moment."),
        "ended": _("The chat has ended. Write again any time."),
        "waiting": _("Waiting for an agent…"),
        "serving": _("%(agent)s is here to help you"),
        "rate_first": _("Choose 1 to 5 stars."),
        "you": _("You"),
        "agent": _("Customer service"),
        "automatic": _("Automatic reply"),
        "attachment": _("Attachment"),
    }


@xframe_options_exempt
@require_safe
def chat_page(request: HttpRequest, code: str) -> HttpResponse:
    """The chat itself, shown in the widget's iframe on the company's site (or opened alone)."""
    channel = _active_channel(code)
    if channel is None:
        response = render(request, "conversations/chat_unavailable.html", status=404)
        csp_frame_ancestors(response, None)  # shown in the widget's frame on any site
        return response
    topics = _topics() if channel.has_prechat_form else []
    config = {
        "code": channel.code,
        "session_url": reverse("webchat:chat_session", args=[channel.code]),
        "ws_path": f"/ws/chat/{channel.code}/",
        "prechat": channel.has_prechat_form,
        "survey": channel.has_survey,
        "max_length": MESSAGE_MAX_LENGTH,
        # Times are shown in the department's time zone, as the agents see them.
        "time_zone": timezone.get_current_timezone_name(),
        "labels": _labels(),
    }
    context = {
        "channel": channel,
        "topics": topics,
        "config": config,
        "color": _color(channel),
        "name_max_length": NAME_MAX_LENGTH,
        "max_length": MESSAGE_MAX_LENGTH,
        "stars": range(1, 6),
    }
    response = render(request, "conversations/chat_page.html", context)
    # The page's policy (kefu.core.csp) with the sites that may frame it.
    csp_frame_ancestors(response, _frame_ancestors(channel))
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    patch_cache_control(response, private=True, no_cache=True)
    return response


# --- The visitor's token ---------------------------------------------------------------------
def _error(status: int, code: str, message: Any, errors: dict | None = None) -> JsonResponse:
    """The API's error shape: {"code", "message", "errors"}."""
    body = {"code": code, "message": str(message), "errors": errors or {}}
    return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})


def _submitted(request: HttpRequest) -> dict[str, Any]:
    """The posted fields, from a JSON object or a form; JsonBodyInvalid for anything else."""
    if request.content_type == "application/json":
        data = json_body_load(request.body or b"{}")
        if not isinstance(data, dict):
            raise JsonBodyInvalid(_("Send a JSON object."))
        return data
    return request.POST.dict()


def visitor_fields_clean(channel: Channel, data: dict[str, Any]) -> dict[str, str]:
    """The pre-chat answers a token may carry: a name (required when the channel has the
    form), a phone number that must be valid when given, and a topic among the queues' skills."""
    errors: dict[str, list[str]] = {}
    name = " ".join(str(data.get("name") or "").split())
    if len(name) > NAME_MAX_LENGTH:
        errors["name"] = [_("At most %(n)s characters.") % {"n": NAME_MAX_LENGTH}]
    elif not name and channel.has_prechat_form:
        errors["name"] = [_("Tell us how to address you.")]
    phone = str(data.get("phone") or "").strip()
    if phone:
        try:
            phone = phone_normalize(phone)
        except ContactInvalid as exc:
            errors["phone"] = [str(exc)]
    topic = str(data.get("topic") or "").strip()
    if topic and topic not in _topics():
        errors["topic"] = [_("Choose one of the topics in the list.")]
    if errors:
        raise ValidationFailed(errors)
    return {"name": name, "phone": phone, "topic": topic}


@csrf_exempt
@require_POST
def chat_session(request: HttpRequest, code: str) -> JsonResponse:
    """{"visitor": token, "resumed": bool}. With {"visitor": <token>} it answers the same token
    while it is valid for this chat (resumed); otherwise a new token from the pre-chat fields
    (name, phone, topic), or 422 naming the field that is wrong."""
    channel = _active_channel(code)
    if channel is None:
        return _error(404, "not_found", _("This chat does not exist or is switched off."))
    try:
        data = _submitted(request)
    except JsonBodyInvalid as exc:
        return _error(exc.status, exc.code, exc.message)
    existing = str(data.get("visitor") or "")
    if existing and visitor_token_read(existing, channel_code=channel.code) is not None:
        return JsonResponse({"visitor": existing, "resumed": True})
    answered = any(data.get(field) for field in ("name", "phone", "topic"))
    if existing and not answered and channel.has_prechat_form:
        # A token that no longer holds, and no answers to start anew with: the page asks again.
        return JsonResponse({"visitor": "", "resumed": False})
    try:
        fields = visitor_fields_clean(channel, data)
    except ValidationFailed as exc:
        return _error(exc.status, exc.code, exc.message, exc.errors)
    token = visitor_token_make(channel_code=channel.code, **fields)
    return JsonResponse({"visitor": token, "resumed": False})
