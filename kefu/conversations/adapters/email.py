"""E-mail channel: an agent's answer goes out over SMTP (Django's mail backend, KEFU_SMTP_*) as a
reply in the customer's thread: "Re: <subject>", In-Reply-To the customer's latest mail and
References the chain, so their mail program shows one conversation.

The Message-ID of each reply is returned to `message_deliver`, which keeps it with the message:
a customer answering that reply is threaded back by it (see kefu.conversations.mail).
"""

import mimetypes
import re
import smtplib
from email.utils import formataddr, make_msgid
from pathlib import PurePosixPath

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.utils.translation import gettext as _

from kefu.conversations.adapters.base import DeliveryFailed
from kefu.conversations.models import Channel, Message

MAX_REFERENCES = 20
_REPLY_PREFIX = re.compile(r"^\s*(re|回复|答复|回覆)\s*[:：]", re.IGNORECASE)
_DUMMY_BACKEND = "django.core.mail.backends.dummy.EmailBackend"


def reply_subject(subject: str, fallback: str) -> str:
    """Put "Re: " before the conversation's subject, once."""
    subject = " ".join((subject or "").split()) or fallback
    return subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}"


def _bracketed(message_id: str) -> str:
    return f"<{message_id}>"


def _thread_ids(message: Message) -> tuple[str, list[str]]:
    """(the Message-ID of the customer's latest mail, the thread's ids oldest first)."""
    conversation = message.conversation
    rows = (
        conversation.messages.filter(id__lt=message.pk)
        .exclude(direction=Message.Direction.NOTE)
        .order_by("id")
        .values_list("direction", "external_id", "data")
    )
    chain: list[str] = []
    latest_inbound = ""
    for direction, external_id, data in rows:
        if direction == Message.Direction.IN:
            message_id = external_id
            if message_id and not message_id.startswith("sha256:"):
                latest_inbound = message_id
        else:
            message_id = external_id or (data or {}).get("provider_id", "")
        if message_id and not message_id.startswith("sha256:"):
            chain.append(message_id)
    if conversation.thread_key and not conversation.thread_key.startswith("sha256:"):
        chain.insert(0, conversation.thread_key)
    chain = list(dict.fromkeys(chain))
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return latest_inbound, chain


class EmailAdapter:
    kind = "email"

    def send(self, channel: Channel, message: Message) -> str:
        """Send the message to the customer's mailbox; return its Message-ID (without <>)."""
        if settings.EMAIL_BACKEND == _DUMMY_BACKEND:
            raise DeliveryFailed(_("Outgoing mail is not set up (KEFU_SMTP_HOST)."))
        address = channel.setting("address").strip()
        if "@" not in address:
            raise DeliveryFailed(_("The e-mail channel has no mailbox address."))
        conversation = message.conversation
        to = conversation.identity.key if conversation.identity_id else ""
        if "@" not in to:
            to = (
                conversation.customer.contacts.filter(kind="email")
                .values_list("value", flat=True)
                .first()
                or ""
            )
        if "@" not in to:
            raise DeliveryFailed(_("The customer has no e-mail address."))
        message_id = make_msgid(domain=address.rsplit("@", 1)[1].lower())
        headers = {"Message-ID": message_id}
        latest_inbound, chain = _thread_ids(message)
        if latest_inbound:
            headers["In-Reply-To"] = _bracketed(latest_inbound)
        if chain:
            headers["References"] = " ".join(_bracketed(item) for item in chain)
        if message.is_automatic:
            headers["Auto-Submitted"] = "auto-replied"  # RFC 3834: no auto-answer to this
        mail = EmailMessage(
            subject=reply_subject(conversation.subject, channel.name),
            body=message.body,
            from_email=formataddr((channel.name, address)),
            to=[to],
            headers=headers,
            connection=get_connection(fail_silently=False),
        )
        if message.attachment:
            name = message.attachment_name or PurePosixPath(message.attachment.name).name
            with message.attachment.open("rb") as file:
                content = file.read()
            mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
            mail.attach(name, content, mimetype)
        try:
            mail.send()
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(str(exc) or exc.__class__.__name__) from exc
        return message_id.strip("<>")
