"""The interface every channel adapter implements (the allauth adapter idea).

An adapter turns a provider's inbound request into `Inbound` values and sends an agent's message
out. Views parse and verify with the adapter, then call `message_receive`; the delivery task
calls `send`. Adding a platform means one module here and one entry in `ADAPTERS`.
"""

from dataclasses import dataclass, field
from typing import Any, Protocol

from kefu.conversations.models import Channel, Message


@dataclass(frozen=True)
class Sender:
    """Who wrote: `key` is their identity on the channel (openid, mailbox, platform user id,
    chat visitor id); phone and e-mail, when known, match an existing customer."""

    key: str
    name: str = ""
    phone: str = ""
    email: str = ""


@dataclass(frozen=True)
class Inbound:
    """One message as the channel delivered it."""

    sender: Sender
    body: str = ""
    kind: str = Message.Kind.TEXT
    external_id: str = ""
    subject: str = ""
    media_url: str = ""
    # E-mail: the Message-IDs this mail answers (In-Reply-To and References), oldest first.
    thread_refs: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    attachments: tuple[tuple[str, bytes], ...] = ()


class DeliveryFailed(Exception):
    """The provider refused or could not be reached; the message is marked failed."""


class ChannelAdapter(Protocol):
    kind: str

    def send(self, channel: Channel, message: Message) -> str:
        """Deliver an outgoing message; return the provider's id for it ('' if none)."""
        ...
