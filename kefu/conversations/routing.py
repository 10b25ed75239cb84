"""WebSocket routes. The widget runs on the company's own site, so its socket comes from any
origin and proves itself with the visitor token; the agent's socket uses the session cookie and
is accepted only from Kefu's own hosts (no cross-site socket hijacking)."""

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from kefu.conversations import consumers

websocket_urlpatterns = [
    path("ws/chat/<slug:code>/", consumers.VisitorConsumer.as_asgi()),
    path(
        "ws/agent/",
        AllowedHostsOriginValidator(AuthMiddlewareStack(consumers.AgentConsumer.as_asgi())),
    ),
]
