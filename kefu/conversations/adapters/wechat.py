"""WeChat official account (微信公众号): agents' replies go out as customer-service messages.

A reply is a 客服消息 (POST cgi-bin/message/custom/send) to the customer's openid, made with
wechatpy's `WeChatClient`. WeChat accepts these only within 48 hours of the customer's last
message (errcode 45015 otherwise); the error is kept on the message, which is marked failed.

- Text: one text message.
- Image attachment (jpg, jpeg, png, gif up to 10 MB): uploaded as temporary media
  (cgi-bin/media/upload) and sent as an image message; the body, if any, goes first as text.
- Any other attachment: WeChat carries no files in customer-service messages, so the customer
  gets a text with the file's name and its address on this Kefu (KEFU_BASE_URL + the file's URL).

The access token is kept in Django's cache (the database cache unless configured otherwise), so
the web process and every worker share one token instead of each fetching its own: WeChat allows
2000 fetches a day and a new token retires the old one within minutes.

Channel.config: "appid", "appsecret" and optionally "api_base_url" (default
https://api.weixin.qq.com/), which lets tests point the client at a stand-in on loopback.
"""

import hashlib
import logging
from pathlib import PurePath

import requests
from django.core.cache import cache
from django.utils.translation import gettext as _
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage

from kefu.conversations.adapters.base import DeliveryFailed
from kefu.conversations.files import attachment_url
from kefu.conversations.models import Channel, Message

log = logging.getLogger(__name__)

DEFAULT_API_BASE_URL = "https://api.weixin.qq.com/"
TIMEOUT = 10  # seconds for each call to WeChat
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif"})
IMAGE_MAX_BYTES = 10 * 1024 * 1024  # WeChat's limit for temporary image media

# What the errcodes an agent can meet mean, in words the agent can act on.
_CREDENTIALS = frozenset({40001, 40002, 40013, 40125, 40164, 41002, 41004, 42001})


def _error_text(errcode: int) -> str:
    if errcode == 45015:
        return _(
            "The customer has not written for 48 hours; WeChat only lets the account answer "
            "within 48 hours of the customer's last message."
        )
    if errcode == 43004:
        return _("The customer has unfollowed the account.")
    if errcode == 45047:
        return _(
            "WeChat's limit of messages to this customer has been reached; wait until the "
            "customer writes again."
        )
    if errcode == 40003:
        return _("WeChat does not know this customer on the account.")
    if errcode in _CREDENTIALS:
        return _(
            "WeChat refused the account's credentials: check the AppID, the AppSecret and the "
            "IP whitelist."
        )
    return _("WeChat refused the message.")


def describe_error(exc: WeChatClientException) -> str:
    """A readable reason for a WeChat API error (the code and WeChat's own message kept)."""
    if exc.errcode is None:
        status = getattr(exc.response, "status_code", "?")
        return _("WeChat answered with HTTP status %(status)s.") % {"status": status}
    return f"{_error_text(exc.errcode)} (WeChat {exc.errcode}: {exc.errmsg})"


class _CacheStorage(SessionStorage):
    """wechatpy's token store on Django's cache, shared by every process of this install."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def get(self, key, default=None):
        return cache.get(self.prefix + key, default)

    def set(self, key, value, ttl=None):
        if value is None:
            return
        if ttl is not None:
            # Stop using a token a little before WeChat retires it.
            ttl = max(int(ttl) - min(300, int(ttl) // 2), 1)
        cache.set(self.prefix + key, value, ttl)

    def delete(self, key):
        cache.delete(self.prefix + key)


class _TimeoutSession(requests.Session):
    """wechatpy fetches the access token without a timeout; every call here has one."""

    def request(self, method, url, *args, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = TIMEOUT
        return super().request(method, url, *args, **kwargs)


class KefuWeChatClient(WeChatClient):
    """wechatpy's client against a configurable API address (wechatpy hard-codes the token
    address), with timeouts and the shared token store."""

    def __init__(self, *, appid: str, secret: str, api_base_url: str = DEFAULT_API_BASE_URL):
        base = api_base_url.rstrip("/") + "/"
        digest = hashlib.sha1(base.encode()).hexdigest()[:10]
        super().__init__(
            appid, secret, session=_CacheStorage(f"kefu:wechat:{digest}:"), timeout=TIMEOUT
        )
        self.api_base_url = base
        self.API_BASE_URL = base + "cgi-bin/"
        self._http = _TimeoutSession()

    def fetch_access_token(self):
        return self._fetch_access_token(
            url=self.API_BASE_URL + "token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


def wechat_client(channel: Channel) -> KefuWeChatClient:
    appid, secret = channel.setting("appid"), channel.setting("appsecret")
    if not appid or not secret:
        raise DeliveryFailed(_("The WeChat channel has no AppID or AppSecret."))
    return KefuWeChatClient(
        appid=appid,
        secret=secret,
        api_base_url=channel.setting("api_base_url", DEFAULT_API_BASE_URL),
    )


def _is_image(message: Message) -> bool:
    name = message.attachment_name or message.attachment.name
    return PurePath(name).suffix.lower() in IMAGE_SUFFIXES and (
        message.attachment.size <= IMAGE_MAX_BYTES
    )


def _file_text(message: Message) -> str:
    link = attachment_url(message, absolute=True)
    name = message.attachment_name or PurePath(message.attachment.name).name
    line = _("File %(name)s: %(url)s") % {"name": name, "url": link}
    return f"{message.body}\n{line}" if message.body else line


class WeChatAdapter:
    kind = "wechat"

    def send(self, channel: Channel, message: Message) -> str:
        """Send an agent's message to the customer's openid; return WeChat's msgid or ''."""
        identity = message.conversation.identity
        if identity is None or not identity.key:
            raise DeliveryFailed(_("The conversation has no WeChat user to answer."))
        openid = identity.key
        client = wechat_client(channel)
        try:
            if message.attachment and _is_image(message):
                if message.body:
                    client.message.send_text(openid, message.body)
                name = message.attachment_name or PurePath(message.attachment.name).name
                with message.attachment.open("rb") as image:
                    uploaded = client.media.upload("image", (name, image))
                result = client.message.send_image(openid, uploaded["media_id"])
            elif message.attachment:
                result = client.message.send_text(openid, _file_text(message))
            else:
                result = client.message.send_text(openid, message.body)
        except WeChatClientException as exc:
            raise DeliveryFailed(describe_error(exc)) from exc
        except requests.RequestException as exc:
            # Not str(exc): it holds the token request's URL, AppSecret included.
            raise DeliveryFailed(
                _("Could not reach WeChat (%(reason)s).") % {"reason": type(exc).__name__}
            ) from exc
        except (KeyError, TypeError) as exc:
            raise DeliveryFailed(_("WeChat gave an answer Kefu does not understand.")) from exc
        except OSError as exc:
            raise DeliveryFailed(
                _("The attachment could not be read: %(error)s") % {"error": exc}
            ) from exc
        if isinstance(result, dict) and result.get("msgid"):
            return str(result["msgid"])
        return ""
