"""Where bulk messages leave: one gateway per kind (SMS, e-mail, WeChat), chosen in settings.

The interface every gateway implements (a provider adapter is one class):

    class MyGateway:
        name = "my-sms"                       # shown on recipients and in logs
        idempotent = False                    # True: the provider drops a repeated reference
        def send(self, *, to, subject, body, reference, customer, template_id="") -> str:
            '''Send one message; return the provider's id. Raise GatewayError on refusal.'''

`to` is the address (a phone number in E.164, an e-mail address, a WeChat openid), `body` the
text as the customer reads it (an SMS with its 【签名】 first and, when marketing, the opt-out
footer last; an adapter whose provider adds the registered signature itself strips the leading
【…】), `template_id` the provider's template (WeChat template messages, SMS templates), and
`reference` a stable id of the message ("campaign-12-recipient-345") that a provider able to
de-duplicate should receive as its idempotency key. Such an adapter sets `idempotent = True`: a
message a killed worker had handed over unconfirmed is then sent again under its reference
instead of being left for a person to check. The local outbox (the default for SMS and
WeChat, and for e-mail without KEFU_SMTP_HOST) records every message as an OutboxMessage shown
in the app; e-mail goes over real SMTP when KEFU_SMTP_HOST is set. A custom provider is named by
its dotted path in KEFU_SMS_GATEWAY / KEFU_WECHAT_GATEWAY; KEFU_WECHAT_GATEWAY=wechat sends
WeChat template messages through the official account channel.
"""

from typing import Protocol

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.module_loading import import_string


class GatewayError(Exception):
    """The provider refused the message or could not be reached."""


class Gateway(Protocol):
    name: str

    def send(
        self, *, to: str, subject: str, body: str, reference: str, customer, template_id: str = ""
    ) -> str: ...


class OutboxGateway:
    """Records the message in Kefu's own outbox instead of sending it."""

    name = "outbox"

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def send(
        self, *, to: str, subject: str, body: str, reference: str, customer, template_id: str = ""
    ) -> str:
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

    def send(
        self, *, to: str, subject: str, body: str, reference: str, customer, template_id: str = ""
    ) -> str:
        message = EmailMessage(subject=subject, body=body, to=[to])
        message.extra_headers["X-Kefu-Reference"] = reference
        try:
            message.send()
        except Exception as exc:  # smtplib and socket errors alike
            raise GatewayError(f"SMTP: {exc}") from exc
        return reference


def template_fields(body: str) -> dict[str, dict[str, str]]:
    """A WeChat template message's fields from the filled text: "key: value" lines; a line
    without a key is the "first" line (the first one) or the "remark" (the last)."""
    fields: dict[str, dict[str, str]] = {}
    loose: list[str] = []
    for line in body.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            key, sep, value = line.partition("：")
        if sep and key.strip().replace("_", "").isalnum() and key.strip().isascii():
            fields[key.strip()] = {"value": value.strip()}
        elif line.strip():
            loose.append(line.strip())
    if loose:
        fields.setdefault("first", {"value": loose[0]})
        if len(loose) > 1:
            fields.setdefault("remark", {"value": "\n".join(loose[1:])})
    return fields


class WeChatTemplateGateway:
    """WeChat template messages (模板消息) through the first active WeChat official account
    channel (KEFU_WECHAT_GATEWAY=kefu.campaigns.gateways.WeChatTemplateGateway). `to` is the
    customer's openid; the template's WeChat template id says which template."""

    name = "wechat"

    def send(
        self, *, to: str, subject: str, body: str, reference: str, customer, template_id: str = ""
    ) -> str:
        import requests
        from wechatpy.exceptions import WeChatClientException

        from kefu.conversations.adapters import DeliveryFailed
        from kefu.conversations.adapters.wechat import describe_error, wechat_client
        from kefu.conversations.models import Channel

        if not template_id:
            raise GatewayError("The message template has no WeChat template id.")
        channel = (
            Channel.objects.filter(kind=Channel.Kind.WECHAT, is_active=True).order_by("id").first()
        )
        if channel is None:
            raise GatewayError("No WeChat official account is set up.")
        try:
            result = wechat_client(channel).message.send_template(
                to, template_id, template_fields(body)
            )
        except DeliveryFailed as exc:
            raise GatewayError(str(exc)) from exc
        except WeChatClientException as exc:
            raise GatewayError(describe_error(exc)) from exc
        except requests.RequestException as exc:
            raise GatewayError(f"Could not reach WeChat ({type(exc).__name__}).") from exc
        return str(result.get("msgid", "")) if isinstance(result, dict) else ""


def gateway_for(kind: str) -> Gateway:
    """The gateway configured for SMS, e-mail or WeChat messages."""
    choice = settings.CAMPAIGN_GATEWAYS.get(kind, "outbox")
    if choice == "outbox":
        return OutboxGateway(kind)
    if choice == "smtp":
        return SmtpGateway()
    if choice == "wechat":
        return WeChatTemplateGateway()
    return import_string(choice)()


def gateway_rate(kind: str) -> int:
    """Messages per second the gateway may take (0: no limit)."""
    return int(settings.CAMPAIGN_RATES.get(kind, 0))
