"""Chat delivery customer → agent screen over WebSockets, with 2,000 open chats.

A fresh database (SQLite in a temporary KEFU_VAR_DIR; with --pg a PostgreSQL database
kefu_bench_ws at KEFU_BENCH_PG, created empty and dropped afterwards) gets one web chat channel,
its queue, 20 online agents taking 100 chats each and a logged-in session per agent.
`kefu run --no-demo --no-worker` serves it (one process, in-memory channel layer, as without
Redis) on a free loopback port.

2,000 visitors connect to /ws/chat/<code>/ with their own token, and each sends a first message
that opens its conversation (routed to an agent, greeted), waiting for its ack (50 at a time).
Then the 20 agents connect to /ws/agent/ with their session cookie. Then 2,000 messages, spread
round-robin over the open chats at a bounded rate (50/s by default: 2,000 customers each writing
every 40 s), each carry a sequence number and the moment they were sent; the latency is the time
until the assigned agent's socket receives that message. Sender and agents run in this one
process on one clock; the server and this client share the machine's cores.

Prints {"metric": "ws_delivery_p50_ms_2000_chats", ...}, p95, p99 and max, plus the time the
2,000 chats took to open, and on stderr the median latency by fifth of the sampling (a queue
building up shows there). Every sampled message must arrive within --timeout seconds.

The agents connect after the chats are open on purpose: the in-memory layer keeps at most 100
events per socket and drops a socket from every group once an event waited 60 s, so agents
connected while 2,000 chats open at once (tens of events each per second) fell behind and stopped
receiving anything at all. That burst is a finding, not the workload measured here.

    .venv/bin/python bench/bench_websocket.py [--quick] [--chats N] [--agents A]
        [--samples S] [--rate R] [--pg] [--keep]
"""

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_api import Server, emit, free_port, log, percentile  # noqa: E402

PG_SERVER = os.environ.get("KEFU_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
PG_DATABASE = "kefu_bench_ws"
CHANNEL_CODE = "bench"
OPEN_CONCURRENCY = 50
RECEIVE_TIMEOUT = 30.0


def label(count: int) -> str:
    return f"{count // 1000}k" if count % 1000 == 0 and count >= 10_000 else str(count)


def raise_open_files(wanted: int) -> int:
    """Lift the soft open-files limit (the server inherits it); returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


class ChatServer(Server):
    """`kefu run` without the background worker (nothing here needs it)."""

    def __init__(self, *, port: int, env: dict[str, str], log_path: Path):
        kefu = Path(sys.executable).with_name("kefu")
        base = [str(kefu)] if kefu.exists() else [sys.executable, str(ROOT / "manage.py")]
        command = [*base, "run", "--no-demo", "--no-worker", "--host", "127.0.0.1"]
        self.port = port
        self.log_path = log_path
        self.log_file = log_path.open("w")
        self.proc = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


# --- The database --------------------------------------------------------------------------
def pg_database(*, create: bool) -> str:
    """Drop the bench's PostgreSQL database, and create it empty again when `create`."""
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    return f"{PG_SERVER}/{PG_DATABASE}"


def prepare(*, chats: int, agents: int, capacity: int) -> tuple[list[str], list[str]]:
    """Migrate, then the channel, its queue and online agents; returns the agents' session keys
    and one visitor token per chat."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.db import connections

    from kefu.accounts.models import User
    from kefu.accounts.services import user_set_role
    from kefu.conversations.models import AgentStatus, Channel, InboxQueue
    from kefu.conversations.visitors import visitor_token_make

    call_command("migrate", interactive=False, verbosity=0)
    call_command("createcachetable", verbosity=0)
    queue = InboxQueue.objects.create(name="在线咨询", strategy=InboxQueue.Strategy.LEAST_BUSY)
    Channel.objects.create(
        kind=Channel.Kind.WEB_CHAT,
        code=CHANNEL_CODE,
        name="官网在线咨询",
        queue=queue,
        greeting="您好，欢迎咨询，请问有什么可以帮您？",
    )
    sessions = []
    for i in range(agents):
        user = User.objects.create_user(
            username=f"bench-agent-{i:02d}", password=None, display_name=f"客服{i:02d}"
        )
        user_set_role(user=user, role="agent")
        queue.members.add(user)
        AgentStatus.objects.create(user=user, status=AgentStatus.Status.ONLINE, capacity=capacity)
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        sessions.append(session.session_key)
    tokens = [
        visitor_token_make(channel_code=CHANNEL_CODE, name=f"访客{i:04d}") for i in range(chats)
    ]
    connections.close_all()
    return sessions, tokens


# --- The peers -----------------------------------------------------------------------------
class Board:
    """What the agents' sockets have received of the sampled messages."""

    def __init__(self) -> None:
        self.waiting: dict[int, asyncio.Future] = {}
        self.latencies: list[float] = []
        self.frames = 0


async def agent_peer(url: str, origin: str, session_key: str, board: Board, ready: asyncio.Event):
    from websockets.asyncio.client import connect

    headers = {"Cookie": f"sessionid={session_key}", "Origin": origin}
    async with connect(url, additional_headers=headers, open_timeout=30, max_queue=None) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT))
        if hello.get("type") != "hello":
            raise RuntimeError(f"agent socket answered {hello}")
        ready.set()
        async for raw in ws:
            arrived = time.perf_counter()
            board.frames += 1
            if '"bench ' not in raw:
                continue
            frame = json.loads(raw)
            if frame.get("type") != "message" or frame["message"]["direction"] != "in":
                continue
            _tag, seq, sent = frame["message"]["body"].split(" ", 2)
            future = board.waiting.pop(int(seq), None)
            if future is not None and not future.done():
                future.set_result((arrived - float(sent)) * 1000)


class Visitor:
    """One customer's widget: opens its chat, then sends what it is told to."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws = None
        self.acks: asyncio.Queue = asyncio.Queue()
        self.reader: asyncio.Task | None = None

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        self.ws = await connect(self.url, open_timeout=30, max_queue=None)
        hello = json.loads(await asyncio.wait_for(self.ws.recv(), RECEIVE_TIMEOUT))
        if hello.get("type") != "hello":
            raise RuntimeError(f"visitor socket answered {hello}")
        self.reader = asyncio.create_task(self._read())
        await self.ws.send(json.dumps({"type": "message", "body": "在吗？", "client_id": "first"}))
        ack = await asyncio.wait_for(self.acks.get(), RECEIVE_TIMEOUT)
        if not ack.get("conversation"):
            raise RuntimeError(f"no conversation opened: {ack}")

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in self.ws:
                if raw.startswith('{"type": "ack"'):
                    await self.acks.put(json.loads(raw))
                elif raw.startswith('{"type": "error"'):
                    log(f"visitor error frame: {raw[:300]}")
        except ConnectionClosed:
            pass

    async def say(self, body: str) -> None:
        await self.ws.send(json.dumps({"type": "message", "body": body, "client_id": body[:64]}))

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        if self.ws is not None:
            await self.ws.close()


async def measure(args, port: int, sessions: list[str], tokens: list[str]) -> dict:
    base = f"ws://127.0.0.1:{port}"
    origin = f"http://127.0.0.1:{port}"
    board = Board()
    visitors = [
        Visitor(f"{base}/ws/chat/{CHANNEL_CODE}/?visitor={quote(token)}&last_id=0")
        for token in tokens
    ]
    started = time.perf_counter()
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def open_one(visitor: Visitor) -> None:
        async with gate:
            await visitor.open()

    opened = 0
    for chunk in range(0, len(visitors), 500):
        await asyncio.gather(*(open_one(v) for v in visitors[chunk : chunk + 500]))
        opened += len(visitors[chunk : chunk + 500])
        log(f"  {opened} chats open ({time.perf_counter() - started:.0f} s)")
    open_seconds = time.perf_counter() - started

    # The agents log in once the chats are open (their inbox page loads the list over HTTP), so
    # what they receive is the steady traffic of open chats, not the burst of 2,000 new ones.
    agent_tasks = []
    for key in sessions:
        ready = asyncio.Event()
        task = asyncio.create_task(agent_peer(f"{base}/ws/agent/", origin, key, board, ready))
        agent_tasks.append(task)
        await asyncio.wait_for(ready.wait(), RECEIVE_TIMEOUT)
    log(f"{len(sessions)} agents connected")
    await asyncio.sleep(1)

    log(f"sampling {args.samples} messages at {args.rate}/s over {len(visitors)} chats")
    loop = asyncio.get_running_loop()
    futures = []
    interval = 1 / args.rate
    began = time.perf_counter()
    for seq in range(args.samples):
        due = began + seq * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        future = loop.create_future()
        board.waiting[seq] = future
        futures.append(future)
        await visitors[seq % len(visitors)].say(f"bench {seq} {time.perf_counter()!r}")
    sampling_seconds = time.perf_counter() - began
    done, pending = await asyncio.wait(futures, timeout=args.timeout)
    latencies = [f.result() for f in done]
    # A queue building up shows as latencies growing from the first fifth to the last.
    ordered = [futures[k * len(futures) // 5 : (k + 1) * len(futures) // 5] for k in range(5)]
    trend = [
        round(percentile([f.result() for f in part if f.done()] or [0], 50), 1) for part in ordered
    ]
    log(f"median latency by fifth of the sampling (ms): {trend}")
    for task in agent_tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log(f"an agent socket ended: {task.exception()!r}")

    for visitor in visitors:
        await visitor.close()
    for task in agent_tasks:
        task.cancel()
    await asyncio.gather(*agent_tasks, return_exceptions=True)
    return {
        "latencies": latencies,
        "lost": len(pending),
        "open_seconds": open_seconds,
        "sampling_seconds": sampling_seconds,
        "agent_frames": board.frames,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 chats, 400 samples")
    parser.add_argument("--chats", type=int)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--samples", type=int)
    parser.add_argument("--rate", type=float, default=50.0, help="sampled messages per second")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a message may take")
    parser.add_argument("--pg", action="store_true", help="a fresh PostgreSQL database")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    # bench/run.py stops an overrunning script with SIGTERM: unwind so `finally` stops the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    chats = args.chats or (200 if args.quick else 2000)
    args.samples = args.samples or (400 if args.quick else 2000)
    capacity = max(1, -(-chats // args.agents))  # every chat gets an agent
    limit = raise_open_files(chats * 2 + 1000)
    if limit < chats * 2 + 200:
        log(f"open-files limit {limit} is too low for {chats} chats")
        return 1

    var_dir = Path(tempfile.mkdtemp(prefix="kefu-bench-ws-"))
    os.environ.pop("KEFU_DATABASE_URL", None)
    os.environ.pop("KEFU_REDIS_URL", None)  # one process, in-memory channel layer
    os.environ.update(
        KEFU_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="kefu.settings", KEFU_LOG_LEVEL="WARNING"
    )
    db = "sqlite"
    if args.pg:
        os.environ["KEFU_DATABASE_URL"] = pg_database(create=True)
        db = "postgresql"
    server = None
    try:
        log(f"preparing a fresh {db} database ({var_dir})")
        sessions, tokens = prepare(chats=chats, agents=args.agents, capacity=capacity)
        server = ChatServer(port=free_port(), env=dict(os.environ), log_path=var_dir / "server.log")
        server.wait_ready()
        log(f"server up on port {server.port}")
        result = asyncio.run(measure(args, server.port, sessions, tokens))
        latencies = result["latencies"]
        if result["lost"] or not latencies:
            log(f"{result['lost']} of {args.samples} messages did not reach an agent")
            log(server.log_path.read_text()[-3000:])
            return 1
        common = {
            "chats": chats,
            "agents": args.agents,
            "samples": len(latencies),
            "rate_per_s": args.rate,
            "db": db,
            "layer": "in-memory",
        }
        name = f"{label(chats)}_chats"
        for p in (50, 95, 99):
            emit(f"ws_delivery_p{p}_ms_{name}", round(percentile(latencies, p), 1), "ms", **common)
        emit(f"ws_delivery_max_ms_{name}", round(max(latencies), 1), "ms", **common)
        emit(f"ws_chats_open_seconds_{name}", round(result["open_seconds"], 1), "s", **common)
        return 0
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            shutil.rmtree(var_dir, ignore_errors=True)
            if args.pg:
                from django.db import connections

                connections.close_all()
                pg_database(create=False)


if __name__ == "__main__":
    sys.exit(main())
