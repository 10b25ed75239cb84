"""WebSocket consumers: the customer's chat widget and the agent's inbox. Thin: they check who
is there, call selectors and services, and relay what services publish.

Protocol (JSON frames):
- visitor → server: {"type": "message", "body", "client_id"}, {"type": "typing"},
  {"type": "rate", "rating", "comment"}; server → visitor: {"type": "message", "message"},
  {"type": "ack", "client_id", "id"}, {"type": "typing"}, {"type": "closed"|"rated", ...},
  {"type": "assignment", "status": "queued"|"open"|"closed", "agent": name or ""} (who answers:
  sent after "hello" and on joining a new conversation, then whenever an agent takes the chat or
  it goes back into a queue), {"type": "error", "code", "message", "errors"}. Connect with
  ?visitor=<token>&last_id=<n>: messages after n are sent first (a reconnect loses and repeats
  nothing).
- agent → server: {"type": "watch", "conversation", "last_id"}, {"type": "unwatch",
  "conversation"}, {"type": "message", "conversation", "body", "client_id"},
  {"type": "typing", "conversation"}; server → agent: every event of its groups.
"""

import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils.translation import gettext as _

from kefu.conversations import realtime, selectors, services
from kefu.conversations.adapters import Inbound, Sender
from kefu.conversations.models import Channel, ChannelIdentity, Conversation
from kefu.conversations.visitors import visitor_key, visitor_token_read
from kefu.core.exceptions import DomainError

log = logging.getLogger(__name__)


def _error(exc: DomainError) -> dict[str, Any]:
    return {
        "type": "error",
        "code": exc.code,
        "message": str(exc.message),
        "errors": exc.errors,
    }


class _Relay(AsyncJsonWebsocketConsumer):
    groups_joined: set[str]

    async def join(self, group: str) -> None:
        if group not in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.add(group)

    async def leave(self, group: str) -> None:
        if group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
            self.groups_joined.discard(group)

    async def disconnect(self, code: int) -> None:
        for group in list(getattr(self, "groups_joined", ())):
            await self.leave(group)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # A relayed event needs no database: skip Channels' trip to the database thread (which
        # a busy thread turns into a backlog that overflows the layer and silences the socket).
        if message["type"] == "kefu.event":
            await self.kefu_event(message)
            return
        await super().dispatch(message)

    async def kefu_event(self, event: dict[str, Any]) -> None:
        payload = event["payload"]
        if payload.get("from") == self.channel_name:
            return  # one's own typing
        await self.send_json(payload)


class VisitorConsumer(_Relay):
    """A customer's chat widget: ws/chat/<channel code>/?visitor=<token>&last_id=<n>."""

    async def connect(self) -> None:
        self.groups_joined = set()
        code = self.scope["url_route"]["kwargs"]["code"]
        query = parse_qs(self.scope.get("query_string", b"").decode())
        token = (query.get("visitor") or [""])[0]
        self.visitor = visitor_token_read(token, channel_code=code)
        self.channel = await self._channel(code)
        await self.accept()  # then close with a code the browser can read (not a bare 403)
        if self.visitor is None or self.channel is None:
            await self.close(code=4403)
            return
        try:
            last_id = int((query.get("last_id") or ["0"])[0])
        except ValueError:
            last_id = 0
        conversation_id, backlog = await self._resume(last_id)
        self.conversation_id = conversation_id
        if conversation_id:
            await self.join(realtime.conversation_group(conversation_id))
        await self.send_json({"type": "hello", "conversation": conversation_id})
        for payload in backlog:
            await self.send_json({"type": "message", "message": payload})
        if conversation_id:
            await self.send_json(await self._assignment(conversation_id))

    @database_sync_to_async
    def _channel(self, code: str) -> Channel | None:
        return Channel.objects.filter(code=code, kind=Channel.Kind.WEB_CHAT, is_active=True).first()

    @database_sync_to_async
    def _resume(self, last_id: int) -> tuple[int | None, list[dict[str, Any]]]:
        identity = ChannelIdentity.objects.filter(
            channel=self.channel, key=visitor_key(self.visitor)
        ).first()
        if identity is None:
            return None, []
        conversation = (
            Conversation.objects.filter(identity=identity).order_by("-id").only("id").first()
        )
        if conversation is None:
            return None, []
        messages = selectors.message_list(
            conversation=conversation, after_id=last_id, customer_view=True, limit=500
        )
        return conversation.pk, [services.message_payload(m) for m in messages]

    async def receive_json(self, content: dict[str, Any], **kwargs) -> None:
        kind = content.get("type")
        try:
            if kind == "message":
                try:
                    await self._message(content)
                except DomainError as exc:
                    await self.send_json({**_error(exc), "client_id": content.get("client_id")})
            elif kind == "typing" and self.conversation_id:
                await self.channel_layer.group_send(
                    realtime.staff_group(self.conversation_id),
                    {
                        "type": "kefu.event",
                        "payload": {
                            "type": "typing",
                            "conversation": self.conversation_id,
                            "who": "customer",
                        },
                    },
                )
            elif kind == "rate":
                await self._rate(content)
        except DomainError as exc:
            await self.send_json(_error(exc))

    async def _message(self, content: dict[str, Any]) -> None:
        body = str(content.get("body") or "")
        client_id = str(content.get("client_id") or "")[:64]
        received = await self._receive(body, client_id)
        conversation_id = received.conversation.pk if received.conversation else None
        if conversation_id and conversation_id != self.conversation_id:
            if self.conversation_id:
                await self.leave(realtime.conversation_group(self.conversation_id))
            self.conversation_id = conversation_id
            await self.join(realtime.conversation_group(conversation_id))
            # Messages of the new conversation published before we joined (the greeting), and
            # who answers it (routed before we joined), both read after joining.
            for payload in await self._since(conversation_id):
                await self.send_json({"type": "message", "message": payload})
            await self.send_json(await self._assignment(conversation_id))
        await self.send_json(
            {
                "type": "ack",
                "client_id": client_id,
                "id": received.message.pk if received.message else None,
                "conversation": conversation_id,
            }
        )

    @database_sync_to_async
    def _receive(self, body: str, client_id: str) -> services.Received:
        data = self.visitor
        inbound = Inbound(
            sender=Sender(key=visitor_key(data), name=data.get("n", ""), phone=data.get("p", "")),
            body=body,
            external_id=f"web:{data['v']}:{client_id}" if client_id else "",
            data={"topic": data.get("t", "")} if data.get("t") else {},
        )
        return services.message_receive(channel=self.channel, inbound=inbound)

    @database_sync_to_async
    def _assignment(self, conversation_id: int) -> dict[str, Any]:
        conversation = Conversation.objects.select_related("assignee").get(pk=conversation_id)
        return {"type": "assignment", **services.assignment_payload(conversation)}

    @database_sync_to_async
    def _since(self, conversation_id: int) -> list[dict[str, Any]]:
        conversation = Conversation.objects.get(pk=conversation_id)
        return [
            services.message_payload(m)
            for m in selectors.message_list(conversation=conversation, customer_view=True)
        ]

    async def _rate(self, content: dict[str, Any]) -> None:
        if not self.conversation_id:
            return
        await database_sync_to_async(services.conversation_rate)(
            conversation_id=self.conversation_id,
            rating=content.get("rating"),
            comment=str(content.get("comment") or ""),
        )


class AgentConsumer(_Relay):
    """An agent's inbox: ws/agent/, logged in by the session cookie."""

    async def connect(self) -> None:
        self.groups_joined = set()
        self.user = self.scope.get("user")
        await self.accept()  # then close with a code the browser can read (not a bare 403)
        if self.user is None or not self.user.is_authenticated:
            await self.close(code=4401)
            return
        allowed = await database_sync_to_async(self.user.has_perm)(
            "conversations.view_conversation"
        )
        if not allowed:
            await self.close(code=4403)
            return
        await self.join(realtime.agent_group(self.user.pk))
        await self.join(realtime.INBOX_GROUP)
        await self.send_json({"type": "hello", "user": self.user.pk})

    async def receive_json(self, content: dict[str, Any], **kwargs) -> None:
        kind = content.get("type")
        try:
            conversation_id = int(content.get("conversation") or 0)
        except (TypeError, ValueError):
            conversation_id = 0
        try:
            if kind == "watch" and conversation_id:
                backlog = await self._watch(conversation_id, int(content.get("last_id") or 0))
                await self.join(realtime.staff_group(conversation_id))
                for payload in backlog:
                    await self.send_json({"type": "message", "message": payload})
                await self.send_json({"type": "watching", "conversation": conversation_id})
            elif kind == "unwatch" and conversation_id:
                await self.leave(realtime.staff_group(conversation_id))
            elif kind == "message" and conversation_id:
                message = await database_sync_to_async(services.message_send)(
                    actor=self.user, conversation_id=conversation_id, body=content.get("body", "")
                )
                await self.send_json(
                    {"type": "ack", "client_id": content.get("client_id"), "id": message.pk}
                )
            elif kind == "typing" and conversation_id in self._watched():
                payload = {"type": "typing", "conversation": conversation_id, "who": "agent"}
                await self.channel_layer.group_send(
                    realtime.conversation_group(conversation_id),
                    {"type": "kefu.event", "payload": payload},
                )
                await self.channel_layer.group_send(
                    realtime.staff_group(conversation_id),
                    {"type": "kefu.event", "payload": {**payload, "from": self.channel_name}},
                )
        except DomainError as exc:
            await self.send_json(_error(exc))
        except ValueError:
            await self.send_json(
                {"type": "error", "code": "invalid", "message": _("Bad request."), "errors": {}}
            )

    def _watched(self) -> set[int]:
        return {
            int(group.split(".", 1)[1])
            for group in self.groups_joined
            if group.startswith("staff.")
        }

    @database_sync_to_async
    def _watch(self, conversation_id: int, last_id: int) -> list[dict[str, Any]]:
        conversation = selectors.conversation_get_for_user(
            user=self.user, conversation_id=conversation_id
        )
        if not last_id:
            return []
        messages = selectors.message_list(conversation=conversation, after_id=last_id, limit=500)
        return [services.message_payload(m) for m in messages]
