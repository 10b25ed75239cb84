"""Content-Security-Policy for every page Kefu renders.

Scripts and styles come from Kefu's own static files; the few inline blocks a page needs carry
the request's nonce (`{{ csp_nonce }}`, a new one per response). No page has inline event
handlers or `javascript:` links, and htmx is configured not to eval (base.html). So injected
markup cannot run script even where escaping failed.

Per page:

* staff pages, the login and the administration site: framed by nobody; pictures from anywhere
  over http(s) (customers' WeChat pictures are shown in the chat), connections to Kefu itself
  (htmx, the inbox's WebSocket);
* the chat page inside the widget's iframe: framed by the sites in the channel's
  `allowed_origins`, or by any site when it lists none (`csp_frame_ancestors`);
* the customer's status page: framed by nobody, pictures from Kefu only.

Files users sent carry their own, stricter policy (core.attachments). JSON, JavaScript and
other non-HTML answers get none: a policy only acts on documents.
"""

import secrets
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

HEADER = "Content-Security-Policy"
# Response attribute a view sets to let its page be framed (see csp_frame_ancestors).
_FRAME_ANCESTORS = "_kefu_csp_frame_ancestors"
_IMAGES = "_kefu_csp_img_src"


def csp_nonce(request: HttpRequest) -> str:
    """The request's nonce: the same for every inline block of one response."""
    return str(request.csp_nonce)  # type: ignore[attr-defined]


def csp_frame_ancestors(response: HttpResponse, sources: Iterable[str] | None) -> None:
    """Let the page be framed by `sources` (and Kefu itself), or by any site when None."""
    setattr(response, _FRAME_ANCESTORS, None if sources is None else ["'self'", *sources])


def csp_images_from_self(response: HttpResponse) -> None:
    """The page shows pictures from Kefu only."""
    setattr(response, _IMAGES, ["'self'", "data:"])


def csp_policy(request: HttpRequest, response: HttpResponse) -> str:
    nonce = f"'nonce-{csp_nonce(request)}'"
    try:
        host = request.get_host()
    except DisallowedHost:
        host = ""
    ancestors = getattr(response, _FRAME_ANCESTORS, ["'none'"])
    images = getattr(response, _IMAGES, ["'self'", "data:", "https:", "http:"])
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", nonce],
        "style-src": ["'self'", nonce],
        "img-src": images,
        # 'self' does not cover WebSockets in every browser: name the host for ws and wss.
        "connect-src": ["'self'", f"ws://{host}", f"wss://{host}"] if host else ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
    }
    if ancestors is not None:
        directives["frame-ancestors"] = ancestors
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


class ContentSecurityPolicyMiddleware:
    """Gives each request a nonce and each HTML answer without a policy of its own the policy."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.csp_nonce = SimpleLazyObject(lambda: secrets.token_urlsafe(18))  # type: ignore[attr-defined]
        response = self.get_response(request)
        content_type = response.get("Content-Type", "")
        if HEADER in response or not content_type.startswith("text/html"):
            return response
        if settings.DEBUG and response.status_code >= 400:
            return response  # Django's debug pages are made of inline scripts and styles
        response[HEADER] = csp_policy(request, response)
        return response
