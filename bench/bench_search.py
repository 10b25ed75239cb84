"""Customer search at 200,000 customers on SQLite: p50, p95 and max in milliseconds.

The archive is the demo generator's (seed 1) loaded through the spreadsheet import path
(kefu.customers.imports.customer_import_rows) in chunks. Building it takes a few minutes, so
the database file is kept under var/bench/ and reused while the migrations and the code that
writes the search keys are unchanged.

Two measurements over the same bounded mix of queries (pinyin initials, full pinyin, Chinese
name, last four phone digits, phone prefix, customer number, tag):

- server time, in-process: what the list page and GET /api/v1/customers run for a records
  officer: CustomerFilterSet(...).qs, count(), customer_list_for_display(...)[0:25] evaluated
  and turned into list items;
- through HTTP: GET /api/v1/customers?q=... on `kefu run` on loopback, one client.

    .venv/bin/python bench/bench_search.py [--quick] [--customers N] [--queries N] [--no-http]
"""

import argparse
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
CACHE_DIR = ROOT / "var" / "bench"
SEED = 1
# Code whose change makes a cached database stale: the schema and whatever writes search keys.
FINGERPRINT_FILES = [
    "kefu/customers/search.py",
    "kefu/customers/services.py",
    "kefu/customers/imports.py",
    "kefu/customers/contacts.py",
    "kefu/demo/data.py",
]
QUERY_KINDS = [
    "pinyin_initials",
    "full_pinyin",
    "chinese_name",
    "phone_last4",
    "phone_prefix",
    "customer_number",
    "tag",
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(metric: str, value: float, unit: str, **extra) -> None:
    print(json.dumps({"metric": metric, "value": value, "unit": unit, **extra}), flush=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fingerprint() -> str:
    digest = hashlib.sha256()
    paths = sorted(ROOT.glob("kefu/*/migrations/*.py")) + [ROOT / p for p in FINGERPRINT_FILES]
    for path in paths:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes() if path.exists() else b"-")
    return digest.hexdigest()[:12]


def label(count: int) -> str:
    return f"{count // 1000}k" if count % 1000 == 0 else str(count)


# --- The archive ---------------------------------------------------------------------------


def build(count: int) -> None:
    """Load the demo department and `count` customers through the import path, in chunks."""
    from kefu.customers.imports import customer_import_rows
    from kefu.demo import data

    data.department_create()
    started = time.monotonic()
    done = 0
    for rows in data.customer_row_chunks(seed=SEED, count=count, size=10_000):
        result = customer_import_rows(actor=None, rows=rows, commit=True)
        errors = getattr(result, "errors", None)
        if errors:
            raise RuntimeError(f"import refused rows: {errors[:3]}")
        done += len(rows)
        rate = done / (time.monotonic() - started)
        log(f"  {done:,} customers loaded ({rate:,.0f}/s)")


def sqlite_checkpoint(path: Path) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def prepare_database(var_dir: Path, count: int) -> None:
    """Put a `count`-customer database at var_dir/kefu.sqlite3, from the cache or built anew."""
    from django.core.management import call_command
    from django.db import connections

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    cached = CACHE_DIR / f"search-{count}-seed{SEED}-{fingerprint()}.sqlite3"
    target = var_dir / "kefu.sqlite3"
    if cached.exists():
        log(f"using the cached archive {cached.relative_to(ROOT)}")
        shutil.copyfile(cached, target)
        call_command("migrate", interactive=False, verbosity=0)
        return
    log(f"building an archive of {count:,} customers (kept in {CACHE_DIR.relative_to(ROOT)}/)")
    call_command("migrate", interactive=False, verbosity=0)
    call_command("createcachetable", verbosity=0)
    build(count)
    connections.close_all()
    sqlite_checkpoint(target)
    for stale in CACHE_DIR.glob(f"search-{count}-*.sqlite3"):
        stale.unlink()
    shutil.copyfile(target, cached.with_suffix(".tmp"))
    cached.with_suffix(".tmp").rename(cached)


# --- The queries ---------------------------------------------------------------------------


def query_mix(total: int, rng: random.Random) -> list[tuple[str, str]]:
    """(kind, query) pairs drawn from real customers, the same kinds in equal parts, shuffled."""
    from django.db.models import Max, Min

    from kefu.customers.contacts import phone_national
    from kefu.customers.models import ContactPoint, Customer, Tag
    from kefu.customers.search import name_tokens

    bounds = Customer.objects.aggregate(low=Min("id"), high=Max("id"))
    tags = list(Tag.objects.order_by("name").values_list("name", flat=True))
    per_kind = -(-total // len(QUERY_KINDS))
    queries = []
    for kind in QUERY_KINDS:
        for _ in range(per_kind):
            customer = Customer.objects.filter(id__gte=rng.randint(bounds["low"], bounds["high"]))
            customer = customer.order_by("id").first()
            phone = (
                ContactPoint.objects.filter(customer=customer, kind="phone", is_primary=True)
                .values_list("value", flat=True)
                .first()
            )
            digits = phone_national(phone) if phone else "13800000000"
            tokens = name_tokens(customer.name)
            if kind == "pinyin_initials":
                query = tokens[3] if len(tokens) > 3 else tokens[0]
            elif kind == "full_pinyin":
                query = tokens[2] if len(tokens) > 2 else tokens[0]
            elif kind == "chinese_name":
                query = customer.name
            elif kind == "phone_last4":
                query = digits[-4:]
            elif kind == "phone_prefix":
                query = digits[: rng.randint(4, 7)]
            elif kind == "customer_number":
                query = customer.number
            else:
                query = rng.choice(tags)
            queries.append((kind, query))
    rng.shuffle(queries)
    return queries


def search_in_process(user_id: int, query: str) -> int:
    """What customer_list_api runs for one page of results; returns the total count."""
    from kefu.accounts.models import User
    from kefu.customers.api import _list_item
    from kefu.customers.filtersets import CustomerFilterSet
    from kefu.customers.selectors import customer_list_for_display, customer_list_visible_to

    user = User.objects.get(pk=user_id)  # as the token or session lookup loads it per request
    filterset = CustomerFilterSet({"q": query}, queryset=customer_list_visible_to(user=user).live())
    assert filterset.is_valid(), filterset.errors
    customers = filterset.qs.order_by("-id")
    count = customers.count()
    items = [_list_item(c) for c in customer_list_for_display(customers)[0:25]]
    assert len(items) == min(count, 25)
    return count


def timed(queries: list[tuple[str, str]], run) -> tuple[list[float], dict[str, list[float]]]:
    times, by_kind = [], {kind: [] for kind in QUERY_KINDS}
    for kind, query in queries:
        started = time.perf_counter()
        run(query)
        elapsed = (time.perf_counter() - started) * 1000
        times.append(elapsed)
        by_kind[kind].append(elapsed)
    return times, by_kind


def report(
    metric: str, size: str, times: list[float], by_kind: dict[str, list[float]], **extra
) -> None:
    """customer_search_p95_200k_sqlite and friends."""
    common = {"queries": len(times), "db": "sqlite", **extra}
    p95_by_kind = {k: round(percentile(v, 95), 1) for k, v in by_kind.items() if v}
    emit(f"{metric}_p50_{size}_sqlite", round(percentile(times, 50), 1), "ms", **common)
    emit(
        f"{metric}_p95_{size}_sqlite",
        round(percentile(times, 95), 1),
        "ms",
        p95_by_kind=p95_by_kind,
        **common,
    )
    emit(f"{metric}_max_{size}_sqlite", round(max(times), 1), "ms", **common)


# --- Over HTTP -----------------------------------------------------------------------------


def server_command(port: int) -> list[str]:
    kefu = Path(sys.executable).with_name("kefu")
    base = [str(kefu)] if kefu.exists() else [sys.executable, str(ROOT / "manage.py")]
    return [*base, "run", "--no-demo", "--host", "127.0.0.1", "--port", str(port)]


def search_over_http(
    var_dir: Path, key: str, queries: list[tuple[str, str]]
) -> tuple[list[float], dict[str, list[float]]]:
    port = free_port()
    log_file = (var_dir / "server.log").open("w")
    proc = subprocess.Popen(
        server_command(port),
        cwd=ROOT,
        env=dict(os.environ),
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    conn = None
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"server exited:\n{(var_dir / 'server.log').read_text()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError("server did not answer in 120 s")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request("GET", "/api/v1/openapi.json")
                conn.getresponse().read()
                break
            except OSError:
                time.sleep(0.2)
        headers = {"Authorization": f"Bearer {key}"}

        def run(query: str) -> None:
            path = "/api/v1/customers?" + urllib.parse.urlencode({"q": query})
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")

        timed(queries[:20], run)  # warm-up
        return timed(queries, run)
    finally:
        if conn is not None:
            conn.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log_file.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 customers")
    parser.add_argument("--customers", type=int)
    parser.add_argument("--queries", type=int, default=315)
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP measurement")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    # bench/run.py stops an overrunning script with SIGTERM: unwind so `finally` stops the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    count = args.customers or (20_000 if args.quick else 200_000)

    var_dir = Path(tempfile.mkdtemp(prefix="kefu-bench-search-"))
    os.environ.pop("KEFU_DATABASE_URL", None)
    os.environ.update(
        KEFU_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="kefu.settings", KEFU_LOG_LEVEL="WARNING"
    )
    try:
        import django

        django.setup()
        from django.db import connections

        from kefu.accounts.models import User
        from kefu.accounts.services import api_token_create

        prepare_database(var_dir, count)
        officer = User.objects.get(username="records")
        queries = query_mix(args.queries, random.Random(SEED))

        # Server time, in-process, after a short warm-up of the page cache.
        timed(queries[:20], lambda q: search_in_process(officer.pk, q))
        times, by_kind = timed(queries, lambda q: search_in_process(officer.pk, q))
        report("customer_search", label(count), times, by_kind, customers=count)

        if not args.no_http:
            _token, key = api_token_create(user=officer, name="bench", actor=None)
            connections.close_all()
            times, by_kind = search_over_http(var_dir, key, queries)
            report("customer_search_api", label(count), times, by_kind, customers=count)
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
