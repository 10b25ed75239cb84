"""The generic platform webhook: QQ, Baidu Shangqiao, Taobao/Qianniu, Douyin... through a bridge.

A bridge (the integrator's small service next to the platform's API) POSTs each customer message
to /channels/hook/<code>/ and receives the agents' answers on the channel's `outbound_url`. Both
directions are signed the same way with the channel's secret (see docs/webhooks.md):

    X-Kefu-Timestamp: <unix seconds>
    X-Kefu-Signature: sha256=<hex HMAC-SHA256(secret, b"<timestamp>." + raw body)>

Channel.config keys: `secret` (required), `previous_secret` (still accepted inbound while a new
secret is rolled out), `outbound_url` (required to answer), `platform` (the prefix of the
customers' identity keys; the channel's code when empty), `window_seconds` (how far the
timestamp may be from now, default 300).
"""

import hashlib
import hmac
import json
import time
import urllib.parse

import requests

from kefu.conversations.adapters.base import DeliveryFailed
from kefu.conversations.files import attachment_url
from kefu.conversations.models import Channel, Message

TIMESTAMP_HEADER = "X-Kefu-Timestamp"
SIGNATURE_HEADER = "X-Kefu-Signature"
SIGNATURE_PREFIX = "sha256="
DEFAULT_WINDOW_SECONDS = 300
SEND_TIMEOUT_SECONDS = 10


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Kefu-Signature value for a body sent at `timestamp` (unix seconds, as sent)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return SIGNATURE_PREFIX + digest.hexdigest()


def signature_matches(secrets: list[str], timestamp: str, body: bytes, provided: str) -> bool:
    """True when `provided` is the signature of the body under one of the secrets; compared in
    constant time."""
    provided = provided.strip().lower()
    matched = False
    for secret in secrets:
        # No short cut: every secret is tried, so timing does not tell which one matched.
        matched |= hmac.compare_digest(signature(secret, timestamp, body), provided)
    return matched


def channel_secrets(channel: Channel) -> list[str]:
    return [s for s in (channel.setting("secret"), channel.setting("previous_secret")) if s]


def window_seconds(channel: Channel) -> int:
    try:
        window = int(channel.config.get("window_seconds") or DEFAULT_WINDOW_SECONDS)
    except (TypeError, ValueError):
        return DEFAULT_WINDOW_SECONDS
    return window if window > 0 else DEFAULT_WINDOW_SECONDS


def identity_prefix(channel: Channel) -> str:
    """What customers' identity keys start with on this channel: `<platform>:<user id>`."""
    # Not the channel's display `platform` field: renaming that must not orphan customers.
    return channel.setting("platform") or channel.code


def identity_key(channel: Channel, user_id: str) -> str:
    return f"{identity_prefix(channel)}:{user_id}"


def platform_user_id(channel: Channel, key: str) -> str:
    """The platform's user id back from an identity key (the key without its prefix)."""
    prefix = identity_prefix(channel) + ":"
    if key.startswith(prefix):
        return key[len(prefix) :]
    # The prefix was changed after the customer first wrote: drop whatever prefix the key has.
    return key.partition(":")[2] or key


def _where(url: str) -> str:
    """The URL without its query string, which may carry the bridge's token, for error text."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.netloc}{parts.path}" or url


class WebhookAdapter:
    """Sends agents' messages to the bridge's outbound URL, signed with the channel's secret."""

    kind = "webhook"

    def payload(self, channel: Channel, message: Message) -> dict:
        conversation = message.conversation
        identity = conversation.identity
        recipient = platform_user_id(channel, identity.key) if identity is not None else ""
        # A signed link the bridge (and the customer) can open; MEDIA_ROOT is never served.
        attachment_link = attachment_url(message, absolute=True)
        return {
            "event": "message",
            # Stable across retries of the same message, so the bridge can drop a repeat.
            "message_id": f"kefu-{message.pk}",
            "conversation": conversation.pk,
            "recipient": {"id": recipient},
            "type": message.kind,
            "text": message.body,
            "attachment_url": attachment_link,
            "attachment_name": message.attachment_name,
            "agent": str(message.author) if message.author_id else "",
            "is_automatic": message.is_automatic,
            "created_at": message.created_at.isoformat() if message.created_at else None,
        }

    def send(self, channel: Channel, message: Message) -> str:
        url = channel.setting("outbound_url")
        secret = channel.setting("secret")
        if not url:
            raise DeliveryFailed("The channel has no outbound URL (config outbound_url).")
        if not secret:
            raise DeliveryFailed("The channel has no secret (config secret).")
        body = json.dumps(self.payload(channel, message), ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Kefu-Webhook/1",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(secret, timestamp, body),
        }
        try:
            response = requests.post(url, data=body, headers=headers, timeout=SEND_TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            raise DeliveryFailed(
                f"Could not reach {_where(url)}: {exc.__class__.__name__}"
            ) from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"HTTP {response.status_code} from {_where(url)}")
        try:
            answer = response.json()
        except ValueError:
            return ""
        if isinstance(answer, dict) and answer.get("id") not in (None, ""):
            return str(answer["id"])[:200]
        return ""
