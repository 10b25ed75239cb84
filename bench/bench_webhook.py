"""Platform webhook ingestion: signed customer messages per second through the real HTTP stack,
each stored exactly once.

A fresh database (SQLite under a temporary KEFU_VAR_DIR; with PostgreSQL also the database
kefu_bench_webhook, dropped and created anew) gets the demo department, an online queue with five
agents online, and a webhook channel (code "qq") with a greeting. A tiny HTTP server in this
process stands in for the platform bridge and answers the greetings the worker sends out. Then
`kefu run --no-demo` (uvicorn serving kefu.asgi:application) listens on a free loopback port and:

1. ingest: N messages (default 5,000) from ~500 distinct senders, each signed at send time
   (X-Kefu-Timestamp, X-Kefu-Signature), are POSTed to /channels/hook/qq/ by several client
   threads, each on one keep-alive connection, until done or out of time. Every answer must be
   201 "stored".
2. retries: 10% of them are posted again (signed anew, as a bridge retrying would); every answer
   must be 200 "duplicate" naming the message first stored.
3. races: 200 new messages are each posted twice back to back by two clients; one answer per
   message must be 201 and the other 200.

Then the database must hold exactly one incoming message per message id accepted.

Metrics: webhook_ingest_msgs_per_s, webhook_ingest_p50/p95 (ms), webhook_retry_msgs_per_s,
webhook_ingest_duplicates_stored and webhook_ingest_missing (both must be 0),
webhook_ingest_busy_answers (503 "unavailable" answers, each retried after 0.5 s); with PostgreSQL
the same names end in _pg ({"skipped": ...} when PostgreSQL is not reachable).

    .venv/bin/python bench/bench_webhook.py [--quick] [--messages N] [--senders S]
        [--clients C] [--seconds T] [--db sqlite|pg|both] [--bridge-delay S] [--keep]
"""

import argparse
import hashlib
import hmac
import http.client
import http.server
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_api import Server, emit, free_port, log, percentile  # noqa: E402

PG_DATABASE = "kefu_bench_webhook"
CHANNEL_CODE = "qq"
SECRET = "bench-webhook-secret"
SEED = 4242
PATH = f"/channels/hook/{CHANNEL_CODE}/"
# A 503 "unavailable" (database busy) stored nothing: retried like a bridge would, and counted.
BUSY_RETRIES = 10
BUSY_PAUSE = 0.5
BUSY_ANSWERS = [0]
TEXTS = [
    "你好，在吗？",
    "想问一下你们门店几点关门",
    "我上周买的热水器一直没人来安装",
    "订单号 {n} 什么时候发货？",
    "可以开发票吗",
    "这个型号有现货吗",
    "售后电话打不通",
    "能不能改一下收货地址",
    "好的，谢谢",
    "[图片]",
]


# --- The bridge: receives what Kefu sends out (the greetings) ----------------------------------
class Bridge:
    """A loopback HTTP server that accepts Kefu's outbound webhook calls and counts them."""

    def __init__(self, delay: float = 0) -> None:
        self.count = 0
        bridge = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(delay)  # a platform API answering slowly
                bridge.count += 1
                out = json.dumps({"id": f"bridge-{bridge.count}"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/kefu"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- Data --------------------------------------------------------------------------------------
def prepare(*, bridge_url: str) -> None:
    """Migrate the fresh database; staff, a queue with agents online and the webhook channel."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from kefu.conversations.models import AgentStatus, Channel, InboxQueue
    from kefu.demo import data

    call_command("migrate", interactive=False, verbosity=0)
    call_command("createcachetable", verbosity=0)
    users = data.department_create()
    queue = InboxQueue.objects.create(name="平台咨询", strategy=InboxQueue.Strategy.LEAST_BUSY)
    for username in ("agent06", "agent07", "agent08", "agent09", "agent10"):
        queue.members.add(users[username])
        AgentStatus.objects.create(
            user=users[username], status=AgentStatus.Status.ONLINE, capacity=5
        )
    Channel.objects.create(
        kind=Channel.Kind.WEBHOOK,
        code=CHANNEL_CODE,
        name="QQ 客服",
        platform="QQ",
        queue=queue,
        greeting="您好，这里是QQ客服，请问有什么可以帮您？",
        away_message="客服暂时不在线，请留言，我们上线后第一时间回复。",
        config={"secret": SECRET, "platform": "qq", "outbound_url": bridge_url},
    )
    connections.close_all()


def messages(count: int, senders: int, *, prefix: str, rng: random.Random) -> list[dict]:
    """`count` message bodies from `senders` people, their messages interleaved."""
    from kefu.demo import data

    people = []
    for i, row in enumerate(data.customer_rows(seed=SEED, count=senders)):
        person = {"id": f"{700000 + i}", "name": row["name"]}
        if rng.random() < 0.3:  # some platforms pass the phone the customer gave
            person["phone"] = row["phone"]
        people.append(person)
    out = []
    for n in range(count):
        body = {
            "message_id": f"{prefix}-{n:07d}",
            "sender": people[rng.randrange(senders)],
            "type": "text",
            "text": rng.choice(TEXTS).format(n=10_000_000 + n),
        }
        if rng.random() < 0.05:
            body.update(type="image", text="", media_url=f"https://cdn.example.com/{n}.jpg")
        out.append(body)
    return out


# --- Clients -----------------------------------------------------------------------------------
def sign(raw: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    mac = hmac.new(SECRET.encode(), timestamp.encode() + b"." + raw, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "X-Kefu-Timestamp": timestamp,
        "X-Kefu-Signature": "sha256=" + mac.hexdigest(),
    }


def post_all(
    *, port: int, bodies: list[dict], clients: int, seconds: float
) -> tuple[float, list[float], list[tuple[str, int, dict]]]:
    """POST the bodies from `clients` threads, each on one keep-alive connection, in order,
    until done or out of time. Returns the elapsed time, the latencies and, for each body
    posted, (message_id, HTTP status, JSON answer)."""
    lock = threading.Lock()
    position = iter(range(len(bodies)))
    latencies: list[float] = []
    answers: list[tuple[str, int, dict]] = []
    busy = [0]
    deadline = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while time.monotonic() < deadline:
                with lock:
                    i = next(position, None)
                if i is None:
                    return
                raw = json.dumps(bodies[i], ensure_ascii=False).encode()
                started = time.perf_counter()
                for _attempt in range(BUSY_RETRIES + 1):
                    try:
                        # Signed at each attempt, as a bridge retrying would.
                        conn.request("POST", PATH, body=raw, headers=sign(raw))
                        response = conn.getresponse()
                        content = response.read()
                    except (OSError, http.client.HTTPException) as exc:
                        response, content = None, repr(exc).encode()
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                        break
                    if response.status != 503:
                        break
                    # The database was busy and nothing was stored: the bridge retries.
                    with lock:
                        busy[0] += 1
                    time.sleep(BUSY_PAUSE)
                if response is None:
                    with lock:
                        answers.append((bodies[i]["message_id"], 0, {"error": content.decode()}))
                    continue
                elapsed = time.perf_counter() - started
                try:
                    answer = json.loads(content)
                except ValueError:
                    answer = {"raw": content[:300].decode(errors="replace")}
                with lock:
                    latencies.append(elapsed)
                    answers.append((bodies[i]["message_id"], response.status, answer))
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    BUSY_ANSWERS[0] += busy[0]
    return time.perf_counter() - started, latencies, answers


def unexpected(answers, wanted: set[tuple[int, str]]) -> list[tuple[str, int, dict]]:
    return [a for a in answers if (a[1], a[2].get("status")) not in wanted]


def stored_counts() -> tuple[int, int]:
    """Incoming messages on the channel, and distinct message ids among them."""
    import django

    django.setup()
    from django.db import connections

    from kefu.conversations.models import Message

    rows = Message.objects.filter(
        channel__code=CHANNEL_CODE, direction=Message.Direction.IN
    ).exclude(external_id="")
    total = rows.count()
    distinct = rows.values("external_id").distinct().count()
    connections.close_all()
    return total, distinct


# --- One run against one database ---------------------------------------------------------------
def run(args, *, db: str, var_dir: Path) -> int:
    suffix = "" if db == "sqlite" else "_pg"
    count = args.messages or (1000 if args.quick else 5000)
    senders = args.senders or (100 if args.quick else 500)
    seconds = args.seconds or (60 if args.quick else 240)
    races = 50 if args.quick else 200
    rng = random.Random(SEED)
    bridge = Bridge(delay=args.bridge_delay)
    server = None
    try:
        log(f"[{db}] preparing a fresh database")
        prepare(bridge_url=bridge.url)
        server = Server(
            port=free_port(), env=dict(os.environ), log_path=var_dir / f"server-{db}.log"
        )
        server.wait_ready()
        warmup = messages(20, 5, prefix="warm", rng=rng)
        main = messages(count, senders, prefix="msg", rng=rng)
        _e, _l, answers = post_all(port=server.port, bodies=warmup, clients=1, seconds=seconds)
        accepted = {a[0] for a in answers if a[1] == 201}
        log(f"[{db}] server up on port {server.port}; {args.clients} clients, {count} messages")

        # 1. ingest
        elapsed, latencies, answers = post_all(
            port=server.port, bodies=main, clients=args.clients, seconds=seconds
        )
        bad = unexpected(answers, {(201, "stored")})
        first_ids = {a[0]: a[2].get("message") for a in answers if a[1] == 201}
        accepted |= set(first_ids)
        done = len(answers)
        common = {"messages": done, "senders": senders, "clients": args.clients, "db": db}
        if done < count:
            log(f"[{db}] time limit: {done} of {count} messages posted in {seconds:.0f} s")
        emit(
            f"webhook_ingest_msgs_per_s{suffix}",
            round(done / elapsed, 1),
            "msg/s",
            seconds=round(elapsed, 2),
            **common,
        )
        emit(
            f"webhook_ingest_p50{suffix}",
            round(percentile(latencies, 50) * 1000, 1),
            "ms",
            **common,
        )
        emit(
            f"webhook_ingest_p95{suffix}",
            round(percentile(latencies, 95) * 1000, 1),
            "ms",
            **common,
        )

        # 2. retries of 10% of what was stored
        sent = [b for b in main if b["message_id"] in first_ids]
        retries = rng.sample(sent, max(1, len(sent) // 10)) if sent else []
        r_elapsed, _l, r_answers = post_all(
            port=server.port, bodies=retries, clients=args.clients, seconds=seconds
        )
        bad += unexpected(r_answers, {(200, "duplicate")})
        bad += [
            a
            for a in r_answers
            if a[1] == 200 and a[2].get("message") != first_ids.get(a[0], a[2].get("message"))
        ]
        if r_answers:
            emit(
                f"webhook_retry_msgs_per_s{suffix}",
                round(len(r_answers) / r_elapsed, 1),
                "msg/s",
                retries=len(r_answers),
                clients=args.clients,
                db=db,
            )

        # 3. the same new message posted twice at once
        racing = [b for b in messages(races, senders, prefix="race", rng=rng) for _ in range(2)]
        _e, _l, race_answers = post_all(
            port=server.port, bodies=racing, clients=args.clients, seconds=seconds
        )
        by_id: dict[str, list[int]] = {}
        for message_id, status, _answer in race_answers:
            by_id.setdefault(message_id, []).append(status)
        bad += unexpected(race_answers, {(201, "stored"), (200, "duplicate")})
        bad += [
            (m, 0, {"statuses": s})
            for m, s in by_id.items()
            if sorted(s) not in ([200, 201], [201])
        ]
        accepted |= {m for m, s in by_id.items() if 201 in s}

        server.stop()
        server = None
        total, distinct = stored_counts()
        duplicates = total - distinct
        missing = len(accepted) - distinct
        checks = {"accepted": len(accepted), "stored": total, "db": db}
        emit(f"webhook_ingest_duplicates_stored{suffix}", duplicates, "messages", **checks)
        emit(f"webhook_ingest_missing{suffix}", missing, "messages", **checks)
        emit(f"webhook_ingest_busy_answers{suffix}", BUSY_ANSWERS[0], "answers", db=db)
        log(f"[{db}] the bridge received {bridge.count} outbound messages (greetings)")
        if bad:
            for message_id, status, answer in bad[:5]:
                log(f"  {message_id}: {status} {json.dumps(answer, ensure_ascii=False)[:300]}")
            log(f"[{db}] {len(bad)} unexpected answers")
            return 1
        return 0 if duplicates == 0 and missing == 0 else 1
    finally:
        if server is not None:
            server.stop()
        bridge.stop()


def pg_url() -> str | None:
    """The URL of a fresh kefu_bench_webhook database, or None (with a skip line) without one."""
    from bench.bench_tickets import PG_SERVER, pg_database_create, pg_reachable

    reason = pg_reachable()
    if reason:
        for metric in ("webhook_ingest_msgs_per_s_pg", "webhook_ingest_duplicates_stored_pg"):
            emit(metric, None, "msg/s" if "per_s" in metric else "messages", skipped=reason)
        return None
    pg_database_create(PG_DATABASE, drop=True)
    return f"{PG_SERVER}/{PG_DATABASE}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 messages from 100 senders")
    parser.add_argument("--messages", type=int)
    parser.add_argument("--senders", type=int)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, help="time limit of each phase")
    parser.add_argument("--db", choices=["sqlite", "pg", "both"], default="both")
    parser.add_argument("--part", choices=["sqlite", "pg"], help=argparse.SUPPRESS)
    parser.add_argument(
        "--bridge-delay", type=float, default=0, help="seconds the bridge takes to answer Kefu"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    # bench/run.py stops an overrunning script with SIGTERM: unwind so `finally` stops the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.part is None and args.db == "both":
        # Django is set up once per process: each database gets a process of its own.
        import subprocess

        status = 0
        for part in ("sqlite", "pg"):
            command = [sys.executable, __file__, *sys.argv[1:], "--part", part]
            status |= subprocess.run(command, cwd=ROOT, check=False).returncode
        return status
    db = args.part or args.db
    var_dir = Path(tempfile.mkdtemp(prefix=f"kefu-bench-webhook-{db}-"))
    os.environ.pop("KEFU_DATABASE_URL", None)
    os.environ.update(
        KEFU_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="kefu.settings", KEFU_LOG_LEVEL="WARNING"
    )
    try:
        if db == "pg":
            url = pg_url()
            if url is None:
                return 0
            os.environ["KEFU_DATABASE_URL"] = url
        return run(args, db=db, var_dir=var_dir)
    finally:
        if args.keep:
            log(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
