"""Web chat visitors: a signed token the widget keeps, naming the channel and the visitor.

The token carries what the pre-chat form asked (name, phone, topic); nothing is stored until the
visitor writes. Only the server can make one, so a visitor cannot read another's chat.
"""

import secrets
from typing import Any

from django.core import signing

SALT = "kefu.conversations.visitor"


def visitor_token_make(
    *, channel_code: str, name: str = "", phone: str = "", topic: str = ""
) -> str:
    data = {"c": channel_code, "v": secrets.token_urlsafe(12), "n": name, "p": phone, "t": topic}
    return signing.dumps(data, salt=SALT, compress=True)


def visitor_token_read(token: str, *, channel_code: str) -> dict[str, Any] | None:
    """The visitor's data, or None for a forged or foreign token."""
    try:
        data = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("c") != channel_code or not data.get("v"):
        return None
    return data


def visitor_key(data: dict[str, Any]) -> str:
    return f"visitor:{data['v']}"
