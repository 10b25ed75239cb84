"""Customer create through the API: requests per second against the real server on SQLite.

A fresh KEFU_VAR_DIR (so a fresh SQLite database) gets the demo department's stores and staff;
the records officer gets an API token. Then `kefu run --no-demo` serves on a free loopback port
and a few client threads, each on one keep-alive connection, POST /api/v1/customers with
generated customers (name, phone and sometimes e-mail, tags, level, store, birthday...) until
the request count or the time limit is reached. Every response must be 201.

    .venv/bin/python bench/bench_api.py [--quick] [--requests N] [--seconds S] [--clients C]
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(metric: str, value: float, unit: str, **extra) -> None:
    print(json.dumps({"metric": metric, "value": value, "unit": unit, **extra}), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def server_command(port: int) -> list[str]:
    kefu = Path(sys.executable).with_name("kefu")
    base = [str(kefu)] if kefu.exists() else [sys.executable, str(ROOT / "manage.py")]
    return [*base, "run", "--no-demo", "--host", "127.0.0.1", "--port", str(port)]


class Server:
    """`kefu run` in a subprocess on loopback; always stopped by `stop()`."""

    def __init__(self, *, port: int, env: dict[str, str], log_path: Path):
        self.port = port
        self.log_file = log_path.open("w")
        self.proc = subprocess.Popen(
            server_command(port),
            cwd=ROOT,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.log_path = log_path

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/api/v1/openapi.json")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not answer in {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


def prepare(count: int) -> tuple[str, list[bytes]]:
    """Migrate the fresh database, create staff and a token; returns the key and request bodies."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from kefu.accounts.models import Store
    from kefu.accounts.services import api_token_create
    from kefu.demo import data

    call_command("migrate", interactive=False, verbosity=0)
    call_command("createcachetable", verbosity=0)
    users = data.department_create()
    _token, key = api_token_create(user=users["records"], name="bench", actor=None)
    store_ids = dict(Store.objects.values_list("code", "id"))
    bodies = []
    # A seed of its own, so none of these customers is also in a demo database.
    for row in data.customer_rows(seed=7001, count=count):
        contacts = [{"kind": "phone", "value": row["phone"]}]
        if row["email"]:
            contacts.append({"kind": "email", "value": row["email"]})
        payload = {
            "name": row["name"],
            "level": row["level"],
            "gender": row["gender"],
            "birthday": row["birthday"].isoformat() if row["birthday"] else None,
            "source": row["source"],
            "store_id": store_ids.get(row["store"]),
            "notes": row["notes"],
            "tags": [t for t in row["tags"].split(",") if t],
            "contacts": contacts,
        }
        bodies.append(json.dumps(payload, ensure_ascii=False).encode())
    connections.close_all()
    return key, bodies


def hammer(
    *,
    port: int,
    key: str,
    bodies: list[bytes],
    clients: int,
    seconds: float,
    path: str = "/api/v1/customers",
) -> tuple[float, list[float], list[tuple[int, bytes]]]:
    """POST the bodies to `path` from `clients` threads, each on one keep-alive connection,
    until done or out of time; every answer but 201 is a failure."""
    lock = threading.Lock()
    position = iter(range(len(bodies)))
    latencies: list[float] = []
    failures: list[tuple[int, bytes]] = []
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    deadline = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while time.monotonic() < deadline:
                with lock:
                    i = next(position, None)
                if i is None:
                    return
                started = time.perf_counter()
                try:
                    conn.request("POST", path, body=bodies[i], headers=headers)
                    response = conn.getresponse()
                    body = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    with lock:
                        failures.append((0, repr(exc).encode()))
                    return
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if response.status != 201:
                        failures.append((response.status, body[:300]))
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--requests", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    # bench/run.py stops an overrunning script with SIGTERM: unwind so `finally` stops the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    count = args.requests or (300 if args.quick else 2000)
    seconds = args.seconds or (10 if args.quick else 30)
    warmup = 20

    var_dir = Path(tempfile.mkdtemp(prefix="kefu-bench-api-"))
    os.environ.pop("KEFU_DATABASE_URL", None)
    os.environ.update(
        KEFU_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="kefu.settings", KEFU_LOG_LEVEL="WARNING"
    )
    server = None
    try:
        log(f"preparing a fresh database in {var_dir}")
        key, bodies = prepare(count + warmup)
        server = Server(port=free_port(), env=dict(os.environ), log_path=var_dir / "server.log")
        server.wait_ready()
        log(f"server up on port {server.port}; {args.clients} clients, {count} requests")
        _elapsed, _lat, failures = hammer(
            port=server.port, key=key, bodies=bodies[:warmup], clients=1, seconds=seconds
        )
        elapsed, latencies, more = hammer(
            port=server.port,
            key=key,
            bodies=bodies[warmup:],
            clients=args.clients,
            seconds=seconds,
        )
        failures += more
        if failures:
            for status, body in failures[:5]:
                log(f"  {status}: {body.decode(errors='replace')}")
            log(f"{len(failures)} of {len(latencies) + warmup} responses were not 201")
            return 1
        done = len(latencies)
        common = {"requests": done, "clients": args.clients, "db": "sqlite"}
        emit(
            "customer_create_api",
            round(done / elapsed, 1),
            "req/s",
            seconds=round(elapsed, 2),
            **common,
        )
        emit("customer_create_api_p50", round(percentile(latencies, 50) * 1000, 1), "ms", **common)
        emit("customer_create_api_p95", round(percentile(latencies, 95) * 1000, 1), "ms", **common)
        return 0
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
