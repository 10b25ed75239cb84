"""The chat protocol between real peers: a visitor's and an agent's websockets clients talking to
the ASGI app served by uvicorn on loopback (kefu/conversations/consumers.py documents it).

Every receive waits at most RECEIVE_TIMEOUT seconds, so a missing frame fails the test quickly.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from kefu.conversations import services
from kefu.conversations.models import Conversation, Message
from kefu.conversations.visitors import visitor_token_make

RECEIVE_TIMEOUT = 5.0
SCENARIO_TIMEOUT = 60.0

pytestmark = pytest.mark.slow

Frame = dict[str, Any]


def run(scenario) -> Any:
    """Run a coroutine to its end in a loop of the test's own (the server has another)."""
    return asyncio.run(asyncio.wait_for(scenario, SCENARIO_TIMEOUT))


class Peer:
    """One side of a socket: send frames, read the next ones, each read bounded in time."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame))

    async def next(self) -> Frame:
        return json.loads(await asyncio.wait_for(self.ws.recv(), RECEIVE_TIMEOUT))

    async def until(self, wanted: Callable[[Frame], bool]) -> tuple[Frame, list[Frame]]:
        """Read up to the first frame `wanted` accepts; returns it and the frames read before."""
        before = []
        while True:
            frame = await self.next()
            if wanted(frame):
                return frame, before
            before.append(frame)


def kind(name: str) -> Callable[[Frame], bool]:
    return lambda frame: frame.get("type") == name


def message(*, body: str | None = None, direction: str | None = None) -> Callable[[Frame], bool]:
    def wanted(frame: Frame) -> bool:
        if frame.get("type") != "message":
            return False
        payload = frame["message"]
        return (body is None or payload["body"] == body) and (
            direction is None or payload["direction"] == direction
        )

    return wanted


def visitor_uri(server, token: str, *, code: str = "site", last_id: int = 0) -> str:
    return f"{server.ws_url}/ws/chat/{code}/?visitor={quote(token)}&last_id={last_id}"


@asynccontextmanager
async def visitor(server, token: str, *, last_id: int = 0) -> AsyncIterator[Peer]:
    async with connect(visitor_uri(server, token, last_id=last_id), open_timeout=5) as ws:
        yield Peer(ws)


@asynccontextmanager
async def agent(server, headers: dict[str, str]) -> AsyncIterator[Peer]:
    async with connect(
        f"{server.ws_url}/ws/agent/", additional_headers=headers, open_timeout=5
    ) as ws:
        peer = Peer(ws)
        assert (await peer.next())["type"] == "hello"
        yield peer


async def start_chat(peer: Peer, body: str = "在吗？", client_id: str = "c-1") -> Frame:
    """The visitor's first message: returns the ack naming the new conversation."""
    ack, _before = await first_message(peer, body, client_id)
    return ack


async def first_message(
    peer: Peer, body: str = "在吗？", client_id: str = "c-1"
) -> tuple[Frame, list[Frame]]:
    """The visitor's first message: the ack and the frames that came before it."""
    assert (await peer.next())["type"] == "hello"
    await peer.send(type="message", body=body, client_id=client_id)
    return await peer.until(kind("ack"))


def first_of(kind_name: str, frames: list[Frame]) -> Frame:
    return next(frame for frame in frames if frame.get("type") == kind_name)


async def watch(peer: Peer, conversation_id: int) -> None:
    """Open the conversation on an agent's socket and wait until the server has done it: the
    consumer answers frames in order, so the error frame of an empty message sent after the
    watch proves the watch is done (a watch has no answer of its own)."""
    await peer.send(type="watch", conversation=conversation_id)
    await peer.send(type="message", conversation=conversation_id, body="")
    error, _before = await peer.until(kind("error"))
    assert "body" in error["errors"], error


async def refusal(uri: str, **options: Any) -> tuple[str, int | None]:
    """How the server refused a socket: ("http", status) at the handshake, ("close", code) just
    after it, or ("open", None) when it was not refused."""
    try:
        async with connect(uri, open_timeout=5, **options) as ws:
            await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT)
    except InvalidStatus as exc:
        return "http", exc.response.status_code
    except ConnectionClosed as exc:
        return "close", exc.rcvd.code if exc.rcvd else None
    return "open", None


def test_first_message_reaches_the_agent_and_the_greeting_reaches_the_visitor(
    asgi_server, web_chat, online_agent
):
    """The visitor's first message opens a conversation routed to the online agent, whose socket
    gets the message and the new conversation; the visitor gets the greeting."""
    # given
    token = visitor_token_make(channel_code="site", name="张女士")
    headers = asgi_server.agent_headers(online_agent)

    async def scenario():
        async with agent(asgi_server, headers) as staff, visitor(asgi_server, token) as customer:
            # when
            hello = await customer.next()
            await customer.send(type="message", body="在吗？", client_id="c-1")
            ack, shown = await customer.until(kind("ack"))
            seen = {}
            while len(seen) < 2:
                frame = await staff.next()
                if message(body="在吗？", direction="in")(frame):
                    seen["message"] = frame
                elif frame["type"] == "new_conversation":
                    seen["new"] = frame
            return hello, ack, shown, seen

    hello, ack, shown, seen = run(scenario())

    # then
    conversation = Conversation.objects.get()
    assert hello == {"type": "hello", "conversation": None}
    assert ack["conversation"] == conversation.pk
    assert ack["id"] == Message.objects.get(direction="in").pk
    assert conversation.assignee == online_agent
    assert seen["new"]["conversation"]["id"] == conversation.pk
    assert seen["message"]["message"]["id"] == ack["id"]
    automatic = [f["message"] for f in shown if f["type"] == "message"][1:]
    assert automatic
    assert automatic[0]["is_automatic"]
    assert automatic[0]["body"].startswith(web_chat.greeting)


def test_agent_answers_reach_the_visitor(asgi_server, web_chat, online_agent):
    """An answer sent over the agent's socket and one sent through message_send both reach the
    visitor's widget; the agent's socket acknowledges its own."""
    token = visitor_token_make(channel_code="site")
    headers = asgi_server.agent_headers(online_agent)

    async def scenario():
        async with agent(asgi_server, headers) as staff, visitor(asgi_server, token) as customer:
            conversation_id = (await start_chat(customer))["conversation"]
            await watch(staff, conversation_id)
            # when
            await staff.send(
                type="message", conversation=conversation_id, body="您好，我是小王", client_id="a-1"
            )
            staff_ack, _ = await staff.until(kind("ack"))
            first, _ = await customer.until(message(direction="out", body="您好，我是小王"))
            await asgi_server.acall(
                services.message_send,
                actor=online_agent,
                conversation_id=conversation_id,
                body="还有其他问题吗？",
            )
            second, _ = await customer.until(message(direction="out", body="还有其他问题吗？"))
            return staff_ack, first, second

    staff_ack, first, second = run(scenario())

    # then
    assert staff_ack["client_id"] == "a-1"
    assert first["message"]["id"] == staff_ack["id"]
    assert first["message"]["author"] == str(online_agent)
    assert second["message"]["id"] > first["message"]["id"]
    assert Message.objects.filter(direction="out", author=online_agent).count() == 2


def test_typing_indicators_cross_both_ways(asgi_server, web_chat, online_agent):
    """The visitor's typing reaches the agent watching the chat, the agent's reaches the visitor
    (and not back to the agent's own socket)."""
    token = visitor_token_make(channel_code="site")
    headers = asgi_server.agent_headers(online_agent)

    async def scenario():
        async with agent(asgi_server, headers) as staff, visitor(asgi_server, token) as customer:
            conversation_id = (await start_chat(customer))["conversation"]
            await watch(staff, conversation_id)
            # when the visitor types
            await customer.send(type="typing")
            to_agent, _ = await staff.until(kind("typing"))
            # when the agent types, then writes
            await staff.send(type="typing", conversation=conversation_id)
            to_visitor, _ = await customer.until(kind("typing"))
            await staff.send(
                type="message", conversation=conversation_id, body="好的", client_id="a"
            )
            _ack, staff_frames = await staff.until(kind("ack"))
            return conversation_id, to_agent, to_visitor, staff_frames

    conversation_id, to_agent, to_visitor, staff_frames = run(scenario())

    # then
    assert to_agent == {"type": "typing", "conversation": conversation_id, "who": "customer"}
    assert to_visitor["who"] == "agent"
    assert to_visitor["conversation"] == conversation_id
    assert not [f for f in staff_frames if f["type"] == "typing"]


def test_internal_note_reaches_the_agent_but_never_the_visitor(asgi_server, web_chat, online_agent):
    """A note added while both are connected shows on the agent's socket; the visitor's next
    frame is the agent's answer that follows it."""
    token = visitor_token_make(channel_code="site")
    headers = asgi_server.agent_headers(online_agent)

    async def scenario():
        async with agent(asgi_server, headers) as staff, visitor(asgi_server, token) as customer:
            conversation_id = (await start_chat(customer))["conversation"]
            await watch(staff, conversation_id)
            # when
            await asgi_server.acall(
                services.note_add,
                actor=online_agent,
                conversation_id=conversation_id,
                body="老会员，注意语气",
            )
            note, _ = await staff.until(message(direction="note"))
            await staff.send(
                type="message", conversation=conversation_id, body="好的", client_id="a"
            )
            answer, before = await customer.until(message(body="好的"))
            return note, answer, before

    note, answer, before = run(scenario())

    # then
    assert note["message"]["body"] == "老会员，注意语气"
    assert answer["message"]["direction"] == "out"
    assert before == []


def test_reconnecting_visitor_gets_exactly_the_missed_messages(asgi_server, web_chat, online_agent):
    """Two answers sent while the visitor was away arrive once each after the reconnect with
    last_id, and nothing seen before comes again."""
    token = visitor_token_make(channel_code="site")
    headers = asgi_server.agent_headers(online_agent)

    async def scenario():
        async with visitor(asgi_server, token) as customer:
            assert (await customer.next())["type"] == "hello"
            await customer.send(type="message", body="在吗？", client_id="c-1")
            ack, shown = await customer.until(kind("ack"))
        conversation_id = ack["conversation"]
        last_id = max(f["message"]["id"] for f in shown if f["type"] == "message")
        # when: two answers while the visitor is away
        for body in ("第一条", "第二条"):
            await asgi_server.acall(
                services.message_send,
                actor=online_agent,
                conversation_id=conversation_id,
                body=body,
            )
        async with agent(asgi_server, headers) as staff:
            await watch(staff, conversation_id)
            async with visitor(asgi_server, token, last_id=last_id) as customer:
                hello = await customer.next()
                missed = [await customer.next(), await customer.next()]
                state = await customer.next()
                await staff.send(
                    type="message", conversation=conversation_id, body="第三条", client_id="a"
                )
                following = await customer.next()
        return conversation_id, hello, missed, state, following

    conversation_id, hello, missed, state, following = run(scenario())

    # then
    assert hello == {"type": "hello", "conversation": conversation_id}
    assert [f["message"]["body"] for f in missed] == ["第一条", "第二条"]
    assert state == {"type": "assignment", "status": "open", "agent": str(online_agent)}
    assert following["type"] == "message"
    assert following["message"]["body"] == "第三条"


def test_message_sent_again_with_the_same_client_id_is_stored_once(
    asgi_server, web_chat, online_agent
):
    """A widget re-sending an unacknowledged message after a reconnect gets the same id back."""
    token = visitor_token_make(channel_code="site")

    async def scenario():
        async with visitor(asgi_server, token) as customer:
            first = await start_chat(customer, body="订单什么时候发货？", client_id="pending-1")
        async with visitor(asgi_server, token) as customer:
            assert (await customer.next())["type"] == "hello"
            # when
            await customer.send(type="message", body="订单什么时候发货？", client_id="pending-1")
            again, _ = await customer.until(kind("ack"))
        return first, again

    first, again = run(scenario())

    # then
    assert again["id"] == first["id"]
    assert again["client_id"] == "pending-1"
    assert Message.objects.filter(body="订单什么时候发货？").count() == 1


def test_forged_or_foreign_visitor_token_is_refused(asgi_server, web_chat):
    """A token whose signature does not match, or made for another channel, opens no socket."""
    # given
    genuine = visitor_token_make(channel_code="site")
    forged = genuine[:-4] + ("AAAA" if not genuine.endswith("AAAA") else "BBBB")
    foreign = visitor_token_make(channel_code="other-site")

    async def scenario():
        return [
            await refusal(visitor_uri(asgi_server, token)) for token in (forged, foreign, "")
        ] + [await refusal(visitor_uri(asgi_server, genuine, code="no-such-channel"))]

    # when
    outcomes = run(scenario())

    # then: refused at the handshake (HTTP 403) or closed with 4403 right after it
    assert all(outcome in {("http", 403), ("close", 4403)} for outcome in outcomes), outcomes


def test_agent_socket_refuses_anonymous_and_foreign_origin(asgi_server, online_agent):
    """No session, or a page of another site carrying the agent's cookie: no socket."""
    headers = asgi_server.agent_headers(online_agent, origin="http://evil.example")
    uri = f"{asgi_server.ws_url}/ws/agent/"

    async def scenario():
        anonymous = await refusal(uri, additional_headers={"Origin": asgi_server.url})
        cross_site = await refusal(uri, additional_headers=headers)
        return anonymous, cross_site

    anonymous, cross_site = run(scenario())

    assert anonymous in {("http", 403), ("close", 4401)}
    assert cross_site == ("http", 403)


def test_agent_cannot_watch_another_agents_conversation_unless_supervisor(
    asgi_server, web_chat, online_agent, second_agent, chat_supervisor
):
    """Another agent watching gets an error frame and none of the chat; a supervisor watches
    and gets the visitor's next message."""
    token = visitor_token_make(channel_code="site")
    other_headers = asgi_server.agent_headers(second_agent)
    supervisor_headers = asgi_server.agent_headers(chat_supervisor)

    async def scenario():
        async with visitor(asgi_server, token) as customer:
            conversation_id = (await start_chat(customer))["conversation"]
            async with (
                agent(asgi_server, other_headers) as other,
                agent(asgi_server, supervisor_headers) as supervisor,
            ):
                # when
                await other.send(type="watch", conversation=conversation_id, last_id=1)
                refused = await other.next()
                await watch(supervisor, conversation_id)
                await other.send(type="watch", conversation=conversation_id)
                await other.next()
                await customer.send(type="message", body="还在吗？", client_id="c-2")
                watched, _ = await supervisor.until(message(body="还在吗？"))
                await other.send(type="typing", conversation=conversation_id)
                await customer.send(type="typing")
                after, _ = await supervisor.until(kind("typing"))
                return refused, watched, after

    refused, watched, after = run(scenario())

    # then
    assert refused["type"] == "error"
    assert refused["code"] == "not_found"
    assert watched["message"]["direction"] == "in"
    assert after["who"] == "customer"


def test_closing_asks_the_visitor_to_rate_and_the_rating_is_recorded(
    asgi_server, web_chat, online_agent
):
    """Closing sends the survey and "closed" to the visitor; an out-of-range rating gets an error
    frame naming the field; a valid one is recorded, with the agent, and "rated" comes back."""
    token = visitor_token_make(channel_code="site")

    async def scenario():
        async with visitor(asgi_server, token) as customer:
            conversation_id = (await start_chat(customer))["conversation"]
            # when
            await asgi_server.acall(
                services.conversation_close,
                actor=online_agent,
                conversation_id=conversation_id,
                topic="营业时间",
                outcome=Conversation.Outcome.ANSWERED,
            )
            closed, before = await customer.until(kind("closed"))
            await customer.send(type="rate", rating=9)
            error = await customer.next()
            await customer.send(type="rate", rating=5, comment="回复很快")
            rated, _ = await customer.until(kind("rated"))
            return conversation_id, closed, before, error, rated

    conversation_id, closed, before, error, rated = run(scenario())

    # then
    assert closed["conversation"]["id"] == conversation_id
    assert any(f["type"] == "message" and f["message"]["kind"] == "event" for f in before)
    assert error["type"] == "error"
    assert "rating" in error["errors"]
    assert rated["conversation"]["id"] == conversation_id
    conversation = Conversation.objects.get(pk=conversation_id)
    assert conversation.rating == 5
    assert conversation.rating_comment == "回复很快"
    assert conversation.rated_agent == online_agent


def test_the_visitor_sees_who_answers_as_soon_as_an_agent_takes_the_chat(
    asgi_server, web_chat, second_agent
):
    """Nobody is online: the visitor's chat says it waits for an agent. The agent opens it and
    answers first: the visitor's header and every agent's inbox learn it at once, without a
    reload; a visitor reconnecting later is told the same."""
    token = visitor_token_make(channel_code="site")
    headers = asgi_server.agent_headers(second_agent)

    async def scenario():
        async with agent(asgi_server, headers) as staff, visitor(asgi_server, token) as customer:
            ack, before_ack = await first_message(customer, body="有人吗？")
            conversation_id = ack["conversation"]
            waiting = first_of("assignment", before_ack)
            await watch(staff, conversation_id)
            # when: the agent answers over the socket
            await staff.send(type="message", conversation=conversation_id, body="您好，我是小李")
            taken, _ = await customer.until(kind("assignment"))
            assigned, _ = await staff.until(kind("assigned"))
        async with visitor(asgi_server, token) as again:
            hello = await again.next()
            resumed, _ = await again.until(kind("assignment"))
        return conversation_id, waiting, taken, assigned, hello, resumed

    conversation_id, waiting, taken, assigned, hello, resumed = run(scenario())

    # then
    assert waiting == {"type": "assignment", "status": "queued", "agent": ""}
    assert taken == {"type": "assignment", "status": "open", "agent": "小李"}
    assert assigned["conversation"]["id"] == conversation_id
    assert assigned["conversation"]["assignee"] == second_agent.pk
    assert assigned["conversation"]["status"] == "open"
    assert hello["conversation"] == conversation_id
    assert resumed == taken


def test_an_agent_coming_online_takes_the_waiting_chat_live(asgi_server, web_chat, second_agent):
    """The offline message goes to the agent who comes online; the visitor's header says so."""
    token = visitor_token_make(channel_code="site")
    headers = asgi_server.agent_headers(second_agent)

    async def scenario():
        async with agent(asgi_server, headers) as staff, visitor(asgi_server, token) as customer:
            ack, before_ack = await first_message(customer, body="留言：请回电")
            conversation_id = ack["conversation"]
            waiting = first_of("assignment", before_ack)
            # when
            await asgi_server.acall(services.agent_status_set, actor=second_agent, status="online")
            taken, _ = await customer.until(kind("assignment"))
            assigned, _ = await staff.until(kind("assigned"))
        return conversation_id, waiting, taken, assigned

    conversation_id, waiting, taken, assigned = run(scenario())

    # then
    assert waiting["status"] == "queued"
    assert taken == {"type": "assignment", "status": "open", "agent": "小李"}
    assert assigned["conversation"] == {
        **assigned["conversation"],
        "id": conversation_id,
        "assignee": second_agent.pk,
    }
    assert Conversation.objects.get(pk=conversation_id).assignee == second_agent
