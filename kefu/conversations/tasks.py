"""Background work of consultations: deliveries to providers, the 60-second wait alerts and the
sweep that hands out waiting chats.

Deliveries retry; a message already sent is never sent again (message_deliver checks the row
under a lock). The wait check runs a minute after a chat starts and on a per-minute pass. Waiting
chats are handed out whenever capacity appears (the services do it); the per-minute sweep catches
the rest: a queue's overflow time passing, a status written past the services. E-mail channels
with an IMAP mailbox are polled every KEFU_IMAP_POLL_MINUTES, one poll of a mailbox at a time:
the poll holds a lease (kefu/core/leases.py) that lapses when its worker is killed, so the next
poll after a crash is not refused for good.
"""

import logging

from django.conf import settings
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from kefu.conversations.mail import MailboxUnavailable, imap_channels, imap_poll
from kefu.conversations.services import (
    conversation_timers_run,
    conversation_wait_check,
    conversations_hand_out,
    message_deliver,
)
from kefu.core.leases import LeaseHeld, lease

log = logging.getLogger(__name__)


@db_task(retries=settings.MESSAGE_DELIVERY_RETRIES, retry_delay=30, context=True)
def message_deliver_task(message_id: int, task=None) -> str | None:
    """Deliver an outgoing message; a provider failure is tried again (KEFU_DELIVERY_RETRIES
    times, 30 s apart) before the message is marked failed."""
    final = task is None or not task.retries
    message = message_deliver(message_id=message_id, final=final)
    return message.status if message is not None else None


@db_task()
def conversation_wait_check_task(conversation_id: int) -> int:
    return conversation_wait_check(conversation_id=conversation_id, now=timezone.now())


@db_periodic_task(crontab(minute="*"))
def conversation_timers_periodic_task() -> int:
    return conversation_timers_run(now=timezone.now())


@db_periodic_task(crontab(minute="*"))
def conversation_hand_out_periodic_task() -> int:
    """Every minute: waiting chats to online agents with room (offline messages first)."""
    return conversations_hand_out(now=timezone.now())


@db_task()
def imap_poll_task(channel_id: int) -> int:
    """Fetch one e-mail channel's unread mail over IMAP; one poll of a mailbox at a time."""
    channel = next((c for c in imap_channels() if c.pk == channel_id), None)
    if channel is None:
        return 0
    try:
        # Renewed by a heartbeat while the poll runs; lapses KEFU_LEASE_SECONDS after a crash.
        with lease(f"imap-poll-{channel_id}", heartbeat=True):
            return imap_poll(channel)
    except LeaseHeld:
        return 0  # the previous poll of this mailbox is still running
    except MailboxUnavailable as exc:
        log.warning("Mailbox of channel %s unavailable: %s", channel, exc)
        return 0


@db_periodic_task(crontab(minute=f"*/{settings.IMAP_POLL_MINUTES}"))
def imap_poll_periodic_task() -> int:
    """Every few minutes (KEFU_IMAP_POLL_MINUTES), poll each e-mail channel with a mailbox."""
    channels = imap_channels()
    for channel in channels:
        imap_poll_task(channel.pk)
    return len(channels)
