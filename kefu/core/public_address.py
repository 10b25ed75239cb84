"""Whether links built from settings.BASE_URL reach this Kefu from where people open it.

KEFU_BASE_URL names the address customers and staff reach Kefu at. Unset, Kefu takes the address
`kefu run` serves (settings.SERVED_URL, from KEFU_HOST and KEFU_PORT), which is right as long as
people open Kefu at that very address. A request that came through a reverse proxy (it sent
Forwarded, X-Forwarded-* or X-Real-IP headers) or at another host name shows it is wrong: a link
made from it would be dead for a customer. Then administrators are told on every page, and the
status link is not offered.

An explicit KEFU_BASE_URL other than the served address is trusted: behind a proxy it is the
only way to know the public address.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest

PROXY_HEADERS = (
    "HTTP_FORWARDED",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_REAL_IP",
)
LOOPBACK = {"localhost", "127.0.0.1", "::1"}
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class PublicAddressProblem:
    """Links point at `base_url`, but this request reached Kefu at `reached_at`."""

    base_url: str
    reached_at: str
    via_proxy: bool


def served_url(host: str, port: int) -> str:
    """The address of a server listening on host:port (settings.SERVED_URL, and what `kefu run`
    prints). One listening on every interface has no single address: the machine's name stands
    for it."""
    if host in {"0.0.0.0", "::", "*"}:
        import socket

        host = socket.gethostname()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = None
    if host in LOOPBACK or host.startswith("127."):
        host = "loopback"  # localhost and 127.0.0.1 are the same machine
    return scheme, host, port


def _first(value: str) -> str:
    return value.split(",")[0].strip()


def _reached_at(request: HttpRequest) -> str:
    """The address the person typed, as far as the request tells (a proxy may say so)."""
    meta = request.META
    scheme = _first(meta.get("HTTP_X_FORWARDED_PROTO", "")) or request.scheme
    host = _first(meta.get("HTTP_X_FORWARDED_HOST", "")) or request.get_host()
    return f"{scheme}://{host}"


def public_address_problem(request: HttpRequest) -> PublicAddressProblem | None:
    """Why links made from settings.BASE_URL would not work for this request's audience, or
    None when they do."""
    base_url = settings.BASE_URL
    if base_url != settings.SERVED_URL:
        return None  # KEFU_BASE_URL names the public address
    via_proxy = any(request.META.get(header) for header in PROXY_HEADERS)
    reached_at = _reached_at(request)
    if not via_proxy and _origin(reached_at) == _origin(base_url):
        return None
    return PublicAddressProblem(base_url=base_url, reached_at=reached_at, via_proxy=via_proxy)


def public_url(request: HttpRequest, path: str) -> str | None:
    """The absolute address of `path` for a customer, or None when this request shows that
    settings.BASE_URL does not reach Kefu (a dead link is worse than none)."""
    if public_address_problem(request) is not None:
        return None
    return settings.BASE_URL + path
