"""Where bulk messages leave: one gateway per kind (SMS, e-mail, WeChat), chosen in settings.

The interface every gateway implements (a provider adapter is one class):

    class MyGateway:
        name = "my-sms"                       # shown on recipients and in logs
        def send(self, *, to, subject, body, reference, customer) -> str:
            '''Send one message; return the provider's id. Raise GatewayError on refusal.'''

`to` is the address (a phone number in E.164, an e-mail address, a WeChat openid),
`reference` a stable id of the message ("campaign-12-recipient-345") that a provider able to
de-duplicate should receive as its idempotency key. The local outbox (the default for SMS and
WeChat, and for e-mail without KEFU_SMTP_HOST) records every message as an OutboxMessage shown
in the app; e-mail goes over real SMTP when KEFU_SMTP_HOST is set. A custom provider is named by
its dotted path in KEFU_SMS_GATEWAY / KEFU_WECHAT_GATEWAY.
"""

from typing import Protocol

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.module_loading import import_string


class GatewayError(Exception):
    """The provider refused the message or could not be reached."""


class Gateway(Protocol):
    name: str

    def send(self, *, to: str, subject: str, body: str, reference: str, customer) -> str: ...


class OutboxGateway:
    """Records the message in Kefu's own outbox instead of sending it."""

    name = "outbox"

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def send(self, *, to: str, subject: str, body: str, reference: str, customer) -> str:
        from kefu.campaigns.models import OutboxMessage

        message = OutboxMessage.objects.create(
            gateway=self.kind,
            to=to,
            subject=subject,
            body=body,
            customer=customer,
            reference=reference,
        )
        return f"outbox-{message.pk}"


class SmtpGateway:
    """E-mail over the SMTP server of KEFU_SMTP_HOST."""

    name = "smtp"

    def send(self, *, to: str, subject: str, body: str, reference: str, customer) -> str:
        message = EmailMessage(subject=subject, body=body, to=[to])
        message.extra_headers["X-Kefu-Reference"] = reference
        try:
            message.send()
        except Exception as exc:  # smtplib and socket errors alike
            raise GatewayError(f"SMTP: {exc}") from exc
        return reference


def gateway_for(kind: str) -> Gateway:
    """The gateway configured for SMS, e-mail or WeChat messages."""
    choice = settings.CAMPAIGN_GATEWAYS.get(kind, "outbox")
    if choice == "outbox":
        return OutboxGateway(kind)
    if choice == "smtp":
        return SmtpGateway()
    return import_string(choice)()


def gateway_rate(kind: str) -> int:
    """Messages per second the gateway may take (0: no limit)."""
    return int(settings.CAMPAIGN_RATES.get(kind, 0))
