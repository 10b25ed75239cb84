"""Live updates: services publish events after commit; consumers relay them to browsers.

Groups: `conv.<id>` (the customer's widget), `staff.<id>` (agents who have the conversation
open), `agent.<user id>` (one agent's screens) and `inbox` (every agent: new and waiting chats).
A client may get an event on two groups: clients drop message ids they already have.
In-memory layer in one process by default; Redis (KEFU_REDIS_URL) across processes.
"""

import logging
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

INBOX_GROUP = "inbox"


def conversation_group(conversation_id: int) -> str:
    return f"conv.{conversation_id}"


def staff_group(conversation_id: int) -> str:
    """Agents who have the conversation open: they also get notes and delivery states."""
    return f"staff.{conversation_id}"


def agent_group(user_id: int) -> str:
    return f"agent.{user_id}"


async def _send_all(layer, groups: list[str], payload: dict[str, Any]) -> None:
    for group in groups:
        await layer.group_send(group, {"type": "kefu.event", "payload": payload})


def _send(groups: list[str], payload: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        # One hop into the event loop for all the groups (each hop costs more than the sends).
        async_to_sync(_send_all)(layer, groups, payload)
    except Exception:  # a dead layer must not break the business action that already committed
        log.exception("publishing %s to %s failed", payload.get("type"), groups)


def publish(groups: Iterable[str], payload: dict[str, Any]) -> None:
    """Send `payload` to the groups once the current transaction commits (at once outside one)."""
    wanted = list(dict.fromkeys(groups))
    transaction.on_commit(lambda: _send(wanted, payload))
