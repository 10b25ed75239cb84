"""A real SMTP server on loopback (aiosmtpd) collecting what Kefu sends."""

import email
import email.policy
import socket
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from django.test import override_settings


@dataclass
class Received:
    sender: str
    recipients: list[str]
    peer: tuple
    message: email.message.EmailMessage


@dataclass
class CollectingHandler:
    """Keeps every message the server accepts."""

    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        self.received.append(
            Received(
                sender=envelope.mail_from,
                recipients=list(envelope.rcpt_tos),
                peer=tuple(session.peer),
                message=email.message_from_bytes(envelope.content, policy=email.policy.default),
            )
        )
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    handler = CollectingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        with override_settings(
            SMTP_ENABLED=True,
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=controller.port,
            EMAIL_HOST_USER="",
            EMAIL_HOST_PASSWORD="",
            EMAIL_USE_TLS=False,
            EMAIL_USE_SSL=False,
            DEFAULT_FROM_EMAIL="kefu@example.com",
            BASE_URL="https://kefu.example.com",
        ):
            yield handler
    finally:
        controller.stop()
