"""Web addresses that came from outside (a WeChat PicUrl, a bridge's media_url, a call
recording): Kefu stores and renders only absolute http and https addresses, so a `javascript:`
or `data:` address can never become a link an agent clicks."""

from urllib.parse import urlsplit

HTTP_SCHEMES = frozenset({"http", "https"})


def is_http_url(value: object) -> bool:
    """An absolute http(s) address with a host, with no spaces or control characters in it
    (browsers drop those, so `java\\tscript:` would read as `javascript:`)."""
    if not isinstance(value, str):
        return False
    value = value.strip()
    if not value or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in HTTP_SCHEMES and bool(parts.hostname)


def http_url_or_empty(value: object) -> str:
    """The address when it is an http(s) one, else ""."""
    return value.strip() if is_http_url(value) else ""  # type: ignore[union-attr]
