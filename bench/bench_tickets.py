"""Tickets: create through the API on SQLite, and the ticket list at 1,000,000 tickets on
PostgreSQL.

- ticket_create_api (req/s, p50/p95 ms): a fresh SQLite database gets the demo department, its
  ticket configuration (queues, SLA policies, categories) and 2,000 customers; an agent gets an
  API token; `kefu run --no-demo` serves on a free loopback port and a few client threads, each
  on one keep-alive connection, POST /api/v1/tickets (routing, SLA clocks, timeline and
  notifications included) until the request count or the time limit is reached. Every
  response must be 201.
- ticket_list_p50/p95/max_1m_pg (ms, server time in-process): on the PostgreSQL database
  kefu_bench_tickets (created and migrated when missing), 1,000,000 tickets written with one
  INSERT ... SELECT over generate_series (not through the services): two years of tickets,
  newer ones more numerous, status by age, type, severity, channel, 54 agents and
  specialists, queues, categories, stores, SLA due columns and marks; 50,000 customers through
  the import. Built once and kept (a marker table records the row count and a fingerprint of
  the schema and of this generator). Then ~200 list queries as the ticket list page runs them:
  ticket_list_visible_to(user) + a filter (open tickets, mine, breaching SLA, a category, a
  number, waiting on a department, a store manager's open tickets), ordered newest first, the
  first page of 50 (+1) through ticket_list_for_display, and sla.state for each row.
- ticket_list_api_p50/p95/max_1m_pg (ms, through HTTP): the same mix as GET /api/v1/tickets
  parameters against `kefu run --no-worker` on that database (the worker's timer pass would
  fire the kept tickets' SLA breaches meanwhile), when the list API is there.

Without PostgreSQL the list metrics print {"metric": ..., "skipped": "..."}. The first build
takes a few minutes (progress on stderr); a new or edited migration rebuilds it. --quick uses
300 creates and a kept database of 100,000 tickets. EXPLAIN ANALYZE of the slowest kind's
query goes to stderr and var/bench/tickets-explain.txt. --db-options tries connection options
(e.g. "options=-c%20join_collapse_limit%3D1") without editing the settings.

    .venv/bin/python bench/bench_tickets.py [--quick] [--only create|list] [--requests N]
        [--seconds S] [--clients C] [--queries N] [--no-http] [--rebuild] [--db-options Q]
"""

import argparse
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_api import Server, emit, free_port, hammer, log, percentile, server_command  # noqa: E402

PG_SERVER = os.environ.get("KEFU_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
PG_DATABASE = "kefu_bench_tickets"
SEED = 11
# Bump when the data the generator writes changes (staff, customers, ticket columns).
GENERATOR_VERSION = 2
LIST_KINDS = ["open", "mine", "breaching", "category", "number", "waiting_department", "store"]


def label(count: int) -> str:
    if count % 1_000_000 == 0:
        return f"{count // 1_000_000}m"
    return f"{count // 1000}k" if count % 1000 == 0 else str(count)


def fingerprint(count: int) -> str:
    """What the kept database was built from: the migrations (the initial ones are still edited
    in place, so `migrate` alone would miss a change), the generator and the demo's
    configuration it draws on. Other edits to this file keep the database."""
    from kefu.demo import tickets as demo_tickets

    digest = hashlib.sha256(f"{count}|{GENERATOR_VERSION}|{INSERT_SQL}|{SUBJECTS}".encode())
    config = (
        demo_tickets.CATEGORY_TREE,
        demo_tickets.ROOT_CAUSES,
        demo_tickets.SLA_POLICIES,
        [d.name for d in demo_tickets.DEPARTMENTS],
    )
    digest.update(repr(config).encode())
    for path in sorted(ROOT.glob("kefu/*/migrations/*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# --- Ticket create through the API on SQLite ---------------------------------------------------


def create_prepare(count: int) -> tuple[str, list[bytes]]:
    """Migrate a fresh SQLite database, load staff, configuration and customers; returns an
    agent's API key and the request bodies."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from django.utils import timezone

    from kefu.accounts.models import Store
    from kefu.accounts.services import api_token_create
    from kefu.customers.imports import customer_import_rows
    from kefu.customers.models import Customer
    from kefu.demo import data
    from kefu.demo import tickets as demo_tickets

    call_command("migrate", interactive=False, verbosity=0)
    call_command("createcachetable", verbosity=0)
    users = data.department_create()
    config = demo_tickets.config_create()
    for rows in data.customer_row_chunks(seed=SEED, count=2000):
        customer_import_rows(actor=None, rows=rows, commit=True)
    _token, key = api_token_create(user=users["agent01"], name="bench", actor=None)
    customer_ids = list(Customer.objects.values_list("pk", flat=True))
    stores = {s.pk: s.name.split("·")[-1] for s in Store.objects.all()}
    rng = random.Random(SEED)
    weights = {"consultation": 40, "complaint": 33, "after_sales": 10, "service_request": 10}
    matters = [m for m in demo_tickets.MATTERS if m.type in weights]
    phones = iter(r["phone"] for r in data.customer_rows(seed=SEED + 1, count=count))
    bodies = []
    now = timezone.now()
    for _ in range(count):
        matter = rng.choices(matters, [weights[m.type] * m.weight for m in matters])[0]
        store_id = rng.choice(list(stores))
        values = demo_tickets.matter_values(rng, opened=now, store=stores[store_id])
        payload = {
            "type": matter.type,
            "channel": rng.choice(["phone", "phone", "wechat", "web_chat", "store"]),
            "subject": matter.subject.format(**values),
            "description": matter.description.format(**values),
            "category_id": config.categories[matter.category].pk if matter.category else None,
            "store_id": store_id,
        }
        if matter.type == "complaint":
            payload["severity"] = rng.choice(["normal", "normal", "normal", "urgent"])
        # An integration mostly knows the customer; an unknown caller becomes a prospect.
        if rng.random() < 0.85:
            payload["customer_id"] = rng.choice(customer_ids)
        else:
            payload["phone"] = next(phones)
            payload["caller_name"] = "来电顾客"
        bodies.append(json.dumps(payload, ensure_ascii=False).encode())
    connections.close_all()
    return key, bodies


def has_route(port: int, method: str, path: str) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/api/v1/openapi.json")
        schema = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    return method.lower() in schema.get("paths", {}).get(path, {})


def run_create(args) -> int:
    count = args.requests or (300 if args.quick else 2000)
    seconds = args.seconds or (10 if args.quick else 30)
    warmup = 20
    metric = "ticket_create_api"
    var_dir = Path(tempfile.mkdtemp(prefix="kefu-bench-tickets-"))
    os.environ.pop("KEFU_DATABASE_URL", None)
    os.environ.update(
        KEFU_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="kefu.settings", KEFU_LOG_LEVEL="WARNING"
    )
    server = None
    try:
        log(f"preparing a fresh SQLite database in {var_dir}")
        key, bodies = create_prepare(count + warmup)
        server = Server(port=free_port(), env=dict(os.environ), log_path=var_dir / "server.log")
        server.wait_ready()
        if not has_route(server.port, "post", "/api/v1/tickets"):
            emit(metric, None, "req/s", skipped="POST /api/v1/tickets is not in the API yet")
            return 0
        log(f"server up on port {server.port}; {args.clients} clients, {count} tickets")
        path = "/api/v1/tickets"
        _elapsed, _lat, failures = hammer(
            port=server.port,
            key=key,
            bodies=bodies[:warmup],
            clients=1,
            seconds=seconds,
            path=path,
        )
        elapsed, latencies, more = hammer(
            port=server.port,
            key=key,
            bodies=bodies[warmup:],
            clients=args.clients,
            seconds=seconds,
            path=path,
        )
        failures += more
        if failures:
            for status, body in failures[:5]:
                log(f"  {status}: {body.decode(errors='replace')}")
            log(f"{len(failures)} of {len(latencies) + warmup} responses were not 201")
            return 1
        done = len(latencies)
        common = {"requests": done, "clients": args.clients, "db": "sqlite"}
        emit(metric, round(done / elapsed, 1), "req/s", seconds=round(elapsed, 2), **common)
        emit(f"{metric}_p50", round(percentile(latencies, 50) * 1000, 1), "ms", **common)
        emit(f"{metric}_p95", round(percentile(latencies, 95) * 1000, 1), "ms", **common)
        return 0
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(var_dir, ignore_errors=True)


# --- The 1,000,000-ticket PostgreSQL database --------------------------------------------------

SUBJECTS = [
    "咨询阿莫西林胶囊的用法用量",
    "孩子发烧能否服用布洛芬混悬液",
    "购买头孢克肟分散片是否需要处方",
    "咨询会员积分兑换规则",
    "咨询送药上门的配送范围",
    "购买的维生素C片已过期",
    "蒙脱石散铝箔包装破损",
    "怀疑购买的阿胶块是假货",
    "人民路店店员服务态度冷淡",
    "货架标价与结账价格不一致",
    "会员日折扣没有生效",
    "送药上门超时3小时",
    "线上订单漏发感冒灵颗粒",
    "会员积分被清零",
    "电子血压计无法开机",
    "血糖仪测量数据不准要求换货",
    "建议延长夜间营业时间",
    "申请修改会员绑定手机号",
    "申请开具电子发票",
    "预约药师一对一用药指导",
]
INSERT_SQL = """
INSERT INTO tickets_ticket (
    created_at, updated_at, number, type, channel, customer_id, category_id, severity, subject,
    description, store_id, order_ref, status, queue_id, assignee_id, department_id,
    created_by_id, sla_policy_id, first_response_due_at, first_responded_at,
    next_response_due_at, resolution_due_at, sla_paused_at, sla_next_check_at, sla_marks,
    escalation_level, resolution_type, resolution_summary, resolution_cost, root_cause_id,
    acceptance, acceptance_note, resolved_at, closed_at, reopened_count, is_impact_watched)
WITH base AS (
    SELECT %(now)s::timestamptz - power(random(), 1.3) * interval '730 days' AS created_at,
           random() AS r_type, random() AS r_sev, random() AS r_status, random() AS r_who,
           random() AS r_late, random() AS r_done
    FROM generate_series(1, %(count)s)
), typed AS (
    SELECT b.*,
        CASE WHEN r_type < 0.40 THEN 'consultation' WHEN r_type < 0.73 THEN 'complaint'
             WHEN r_type < 0.83 THEN 'after_sales' WHEN r_type < 0.93 THEN 'service_request'
             ELSE 'suggestion' END AS type,
        extract(epoch FROM (%(now)s::timestamptz - created_at)) / 86400 AS age
    FROM base b
), staged AS (
    SELECT t.*,
        CASE WHEN type = 'complaint' THEN
            CASE WHEN r_sev < 0.03 THEN 'major' WHEN r_sev < 0.23 THEN 'urgent' ELSE 'normal' END
        ELSE 'normal' END AS severity,
        CASE
            WHEN age < 2 THEN CASE
                WHEN r_status < .05 THEN 'new' WHEN r_status < .20 THEN 'assigned'
                WHEN r_status < .55 THEN 'in_progress' WHEN r_status < .67 THEN 'waiting_department'
                WHEN r_status < .77 THEN 'waiting_customer' WHEN r_status < .90 THEN 'resolved'
                ELSE 'closed' END
            WHEN age < 14 THEN CASE
                WHEN r_status < .10 THEN 'in_progress' WHEN r_status < .16 THEN 'waiting_department'
                WHEN r_status < .22 THEN 'waiting_customer' WHEN r_status < .40 THEN 'resolved'
                ELSE 'closed' END
            ELSE CASE
                WHEN r_status < .002 THEN 'in_progress'
                WHEN r_status < .004 THEN 'waiting_department'
                WHEN r_status < .006 THEN 'waiting_customer' WHEN r_status < .025 THEN 'resolved'
                ELSE 'closed' END
        END AS status
    FROM typed t
), timed AS (
    SELECT s.*,
        CASE WHEN type = 'consultation' THEN interval '1 hour'
             WHEN type = 'complaint' AND severity = 'major' THEN interval '30 minutes'
             WHEN type = 'complaint' AND severity = 'urgent' THEN interval '1 hour'
             WHEN type = 'complaint' THEN interval '2 hours'
             ELSE interval '4 hours' END AS first_response,
        CASE WHEN type = 'consultation' THEN interval '1 day'
             WHEN type = 'complaint' AND severity = 'normal' THEN interval '2 days'
             WHEN type = 'complaint' THEN interval '1 day'
             WHEN type = 'after_sales' THEN interval '3 days'
             ELSE interval '5 days' END AS resolution,
        CASE WHEN type = 'consultation' THEN %(policy_consultation)s
             WHEN type = 'complaint' AND severity = 'major' THEN %(policy_major)s
             WHEN type = 'complaint' AND severity = 'urgent' THEN %(policy_urgent)s
             WHEN type = 'complaint' THEN %(policy_complaint)s
             WHEN type = 'after_sales' THEN %(policy_after_sales)s
             ELSE %(policy_other)s END AS policy_id,
        status IN ('resolved', 'closed') AS done,
        CASE WHEN status = 'new' THEN NULL
             WHEN type = 'complaint' THEN (%(specialists)s::bigint[])[
                 1 + floor(r_who * cardinality(%(specialists)s::bigint[]))::int]
             ELSE (%(agents)s::bigint[])[1 + floor(r_who * cardinality(%(agents)s::bigint[]))::int]
        END AS assignee_id
    FROM staged s
), resolved AS (
    SELECT t.*,
        CASE WHEN done THEN least(%(now)s::timestamptz,
            created_at + resolution * (0.1 + 1.1 * r_done)) END AS resolved_at,
        CASE WHEN status IN ('new', 'assigned') THEN NULL
             ELSE least(%(now)s::timestamptz, created_at + first_response * (0.1 + 1.2 * r_late))
        END AS first_responded_at
    FROM timed t
), closed AS (
    SELECT r.*,
        CASE WHEN status = 'closed' THEN least(%(now)s::timestamptz,
            resolved_at + interval '2 days' * random()) END AS closed_at
    FROM resolved r
), clocked AS (
    SELECT c.*,
        created_at + first_response AS fr_due, created_at + first_response * 0.8 AS fr_warn,
        created_at + resolution AS res_due, created_at + resolution * 0.8 AS res_warn,
        first_responded_at IS NULL AS fr_pending
    FROM closed c
)
SELECT
    created_at,
    coalesce(closed_at, resolved_at, first_responded_at, created_at),
    'GD' || lpad((%(number_start)s + row_number() OVER (ORDER BY created_at))::text, 8, '0'),
    type,
    CASE WHEN random() < 0.45 THEN 'phone' WHEN random() < 0.4 THEN 'wechat'
         WHEN random() < 0.4 THEN 'web_chat' WHEN random() < 0.5 THEN 'store' ELSE 'platform' END,
    %(customer_low)s + floor(random() * %(customer_count)s)::bigint,
    CASE WHEN random() < 0.1 THEN NULL ELSE (%(categories)s::bigint[])[
        1 + floor(random() * cardinality(%(categories)s::bigint[]))::int] END,
    severity,
    (%(subjects)s::text[])[1 + floor(random() * cardinality(%(subjects)s::text[]))::int],
    '',
    (%(stores)s::bigint[])[1 + floor(random() * cardinality(%(stores)s::bigint[]))::int],
    '',
    status,
    CASE WHEN type = 'complaint' THEN %(queue_complaints)s ELSE %(queue_service)s END,
    assignee_id,
    CASE WHEN status = 'waiting_department' THEN (%(departments)s::bigint[])[
        1 + floor(random() * cardinality(%(departments)s::bigint[]))::int] END,
    (%(agents)s::bigint[])[1 + floor(random() * cardinality(%(agents)s::bigint[]))::int],
    policy_id,
    fr_due,
    first_responded_at,
    NULL,
    res_due,
    CASE WHEN status = 'waiting_customer'
         THEN least(%(now)s::timestamptz, created_at + interval '1 hour') END,
    -- The timer pass has fired what is past: the next check is the next moment still ahead.
    CASE WHEN NOT done AND status <> 'waiting_customer' THEN least(
        CASE WHEN fr_pending AND fr_warn > %(now)s THEN fr_warn END,
        CASE WHEN fr_pending AND fr_due > %(now)s THEN fr_due END,
        CASE WHEN res_warn > %(now)s THEN res_warn END,
        CASE WHEN res_due > %(now)s THEN res_due END) END,
    CASE WHEN done THEN '{}'::jsonb ELSE jsonb_strip_nulls(jsonb_build_object(
        'first_response', jsonb_build_object(
            'warn_at', fr_warn,
            'warned_at', CASE WHEN fr_pending AND fr_warn <= %(now)s THEN fr_warn END,
            'breached_at', CASE WHEN fr_pending AND fr_due <= %(now)s THEN fr_due END),
        'resolution', jsonb_build_object(
            'warn_at', res_warn,
            'warned_at', CASE WHEN res_warn <= %(now)s THEN res_warn END,
            'breached_at', CASE WHEN res_due <= %(now)s THEN res_due END))) END,
    CASE WHEN NOT done AND (res_due <= %(now)s OR (fr_pending AND fr_due <= %(now)s))
         THEN 1 ELSE 0 END,
    CASE WHEN NOT done THEN '' WHEN type = 'complaint' THEN
        (ARRAY['exchange', 'refund', 'compensation', 'explanation'])[1 + floor(random() * 4)::int]
        ELSE 'explanation' END,
    CASE WHEN done THEN '已处理并告知顾客。' ELSE '' END,
    CASE WHEN done AND type = 'complaint' THEN round((random() * 200)::numeric, 2) END,
    CASE WHEN done AND type = 'complaint' THEN (%(root_causes)s::bigint[])[
        1 + floor(random() * cardinality(%(root_causes)s::bigint[]))::int] END,
    CASE WHEN status = 'closed' AND type = 'complaint' THEN 'accepted' ELSE '' END,
    '',
    resolved_at,
    closed_at,
    0,
    type = 'complaint' AND severity = 'major'
FROM clocked
ORDER BY created_at
"""


def pg_connect(dbname: str):
    import psycopg

    return psycopg.connect(f"{PG_SERVER}/{dbname}", autocommit=True, connect_timeout=5)


def pg_reachable() -> str | None:
    """None when the server answers, else why not."""
    try:
        with pg_connect("postgres") as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure to connect means "skip"
        return f"PostgreSQL at {PG_SERVER} is unreachable: {exc.__class__.__name__}"
    return None


def pg_database_state(dbname: str) -> str | None:
    """The fingerprint recorded when the database was built, or None when it is not there."""
    with pg_connect("postgres") as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
    if not exists:
        return None
    with pg_connect(dbname) as conn:
        table = conn.execute("SELECT to_regclass('kefu_bench_marker')").fetchone()[0]
        if table is None:
            return ""
        row = conn.execute("SELECT fingerprint FROM kefu_bench_marker").fetchone()
        return row[0] if row else ""


def pg_database_create(dbname: str, *, drop: bool) -> None:
    with pg_connect("postgres") as conn:
        if drop:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{dbname}"')


def staff_create() -> None:
    """A center that takes a million tickets in two years: 50 agents and 4 complaint
    specialists (the demo department has 10 and 1)."""
    from django.contrib.auth.hashers import make_password

    from kefu.accounts.models import Team, User
    from kefu.accounts.roles import Role
    from kefu.accounts.services import user_create
    from kefu.demo import data
    from kefu.tickets.models import Queue, QueueMember

    data.department_create()
    hotline = Team.objects.get(name=data.HOTLINE)
    complaints = Team.objects.get(name=data.COMPLAINTS)
    extra = [(f"agent{i:02d}", Role.AGENT, hotline) for i in range(11, 51)]
    extra += [(f"complaints{i}", Role.COMPLAINT_SPECIALIST, complaints) for i in range(2, 5)]
    for number, (username, role, team) in enumerate(extra, start=100):
        user_create(
            username=username,
            password=None,
            role=role,
            display_name=username,
            employee_no=f"KF{number:03d}",
            team=team,
            actor=None,
        )
    User.objects.filter(username__in=[u for u, _r, _t in extra]).update(
        password=make_password(data.PASSWORD)
    )
    from kefu.demo import tickets as demo_tickets

    demo_tickets.config_create()
    for queue_name, role in (("客服组", Role.AGENT), ("投诉组", Role.COMPLAINT_SPECIALIST)):
        queue = Queue.objects.get(name=queue_name)
        have = set(queue.memberships.values_list("user_id", flat=True))
        QueueMember.objects.bulk_create(
            [
                QueueMember(queue=queue, user=u)
                for u in User.objects.filter(role=role).exclude(pk__in=have)
            ]
        )


def customers_load(count: int) -> None:
    from kefu.customers.imports import customer_import_rows
    from kefu.demo import data

    started, done = time.monotonic(), 0
    for rows in data.customer_row_chunks(seed=1, count=count, size=10_000):
        result = customer_import_rows(actor=None, rows=rows, commit=True)
        if result.errors:
            raise RuntimeError(f"import refused rows: {result.errors[:3]}")
        done += len(rows)
        log(f"  {done:,} customers ({done / (time.monotonic() - started):,.0f}/s)")


def tickets_insert(count: int, now) -> None:
    """`count` tickets in one INSERT ... SELECT, with the indexes dropped during the load and
    built again after it (several times faster than maintaining them row by row)."""
    from django.db import connection

    from kefu.accounts.models import Store, User
    from kefu.accounts.roles import Role
    from kefu.core.models import Sequence
    from kefu.customers.models import Customer
    from kefu.demo import tickets as demo_tickets
    from kefu.tickets.models import Category, Department, Queue, RootCause, SlaPolicy

    ids = Customer.objects.order_by("pk").values_list("pk", flat=True)
    low, high, total = ids.first(), ids.last(), ids.count()
    if high - low + 1 != total:
        raise RuntimeError("customer ids are not contiguous; rebuild the database")
    policies = dict(SlaPolicy.objects.values_list("name", "pk"))
    # Tickets of the pharmacy: the property manager's example tree stays empty.
    pharmacy = [
        c.pk
        for c in Category.objects.filter(children=None).select_related("parent__parent")
        if not c.path.startswith(demo_tickets.PROPERTY_ROOT)
    ]
    params = {
        "now": now,
        "count": count,
        "number_start": 0,
        "customer_low": low,
        "customer_count": total,
        "categories": pharmacy,
        "subjects": SUBJECTS,
        "stores": list(Store.objects.values_list("pk", flat=True)),
        "agents": list(User.objects.filter(role=Role.AGENT).values_list("pk", flat=True)),
        "specialists": list(
            User.objects.filter(role=Role.COMPLAINT_SPECIALIST).values_list("pk", flat=True)
        ),
        "departments": list(Department.objects.values_list("pk", flat=True)),
        "root_causes": list(RootCause.objects.values_list("pk", flat=True)),
        "queue_complaints": Queue.objects.get(name="投诉组").pk,
        "queue_service": Queue.objects.get(name="客服组").pk,
        "policy_consultation": policies["咨询"],
        "policy_major": policies["重大投诉"],
        "policy_urgent": policies["紧急投诉"],
        "policy_complaint": policies["一般投诉"],
        "policy_after_sales": policies["售后"],
        "policy_other": policies["其他工单"],
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'tickets_ticket' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        )
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        # Foreign keys are right by construction: skip their per-row checks during the load.
        cursor.execute("SET session_replication_role = replica")
        started = time.monotonic()
        cursor.execute(INSERT_SQL, params)
        log(f"  {count:,} tickets inserted in {time.monotonic() - started:.0f} s")
        cursor.execute("SET session_replication_role = DEFAULT")
        for name, definition in indexes:
            started = time.monotonic()
            cursor.execute(definition)
            log(f"  index {name} built in {time.monotonic() - started:.1f} s")
        cursor.execute("ANALYZE")
    Sequence.objects.update_or_create(name="ticket_number", defaults={"value": count})


def list_prepare(count: int, customers: int, *, rebuild: bool, db_options: str = "") -> None:
    """Make sure the database holds the dataset: reuse it when its marker matches."""
    dbname = PG_DATABASE if count == 1_000_000 else f"{PG_DATABASE}_{label(count)}"
    # --db-options: connection options to try, e.g. "server_side_binding=true".
    query = f"?{db_options}" if db_options else ""
    os.environ["KEFU_DATABASE_URL"] = f"{PG_SERVER}/{dbname}{query}"
    import django

    django.setup()  # connects only at the first query, after the database is there
    wanted = fingerprint(count)
    state = pg_database_state(dbname)
    if state != wanted or rebuild:
        if state is not None:
            log(f"the kept database {dbname} is stale or incomplete: building it again")
        pg_database_create(dbname, drop=state is not None)
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    call_command("migrate", interactive=False, verbosity=0)
    if state == wanted and not rebuild:
        log(f"using the kept database {dbname} ({count:,} tickets)")
        return
    started = time.monotonic()
    log(f"building {count:,} tickets and {customers:,} customers in {dbname} (kept for next time)")
    call_command("createcachetable", verbosity=0)
    with transaction.atomic():
        staff_create()
    customers_load(customers)
    with transaction.atomic():
        tickets_insert(count, timezone.now())
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE kefu_bench_marker (fingerprint text, built_at timestamptz)")
        cursor.execute("INSERT INTO kefu_bench_marker VALUES (%s, now())", [wanted])
    log(f"built in {time.monotonic() - started:.0f} s")


# --- The list queries ------------------------------------------------------------------------


def list_mix(total: int, rng: random.Random) -> list[tuple[str, dict]]:
    """(kind, parameters) in equal parts per kind, shuffled; parameters name real rows."""
    from django.db.models import Max, Min

    from kefu.accounts.models import User
    from kefu.accounts.roles import Role
    from kefu.tickets.models import Category, Ticket

    agents = list(User.objects.filter(role=Role.AGENT).values_list("pk", flat=True))
    managers = list(
        User.objects.filter(role=Role.STORE_MANAGER, store__isnull=False).values_list(
            "pk", flat=True
        )
    )
    used = set(Ticket.objects.values_list("category_id", flat=True).distinct()) - {None}
    categories = list(Category.objects.filter(pk__in=used).values_list("pk", flat=True))
    bounds = Ticket.objects.aggregate(low=Min("id"), high=Max("id"))
    per_kind = -(-total // len(LIST_KINDS))
    mix = []
    for kind in LIST_KINDS:
        for _ in range(per_kind):
            params = {"user": rng.choice(agents)}
            if kind == "category":
                params["category"] = rng.choice(categories)
            elif kind == "number":
                params["number"] = f"GD{rng.randint(bounds['low'], bounds['high']):08d}"
            elif kind == "store":
                params["user"] = rng.choice(managers)
            mix.append((kind, params))
    rng.shuffle(mix)
    return mix


def list_queryset(kind: str, params: dict, user, now):
    """The filtered, ordered tickets a list page shows for one kind of query."""
    from kefu.tickets.models import Ticket
    from kefu.tickets.selectors import category_descendant_ids, ticket_list_visible_to

    tickets = ticket_list_visible_to(user=user)
    if kind in ("open", "store"):
        tickets = tickets.open()
    elif kind == "mine":
        tickets = tickets.open().filter(assignee_id=user.pk)
    elif kind == "breaching":
        tickets = tickets.breaching_sla(now=now)
    elif kind == "category":
        tickets = tickets.filter(category_id__in=category_descendant_ids([params["category"]]))
    elif kind == "number":
        tickets = tickets.filter(number=params["number"])
    elif kind == "waiting_department":
        tickets = tickets.filter(status=Ticket.Status.WAITING_DEPARTMENT)
    return tickets.order_by("-created_at", "-id")


def list_in_process(kind: str, params: dict, page: int = 50) -> int:
    """One page as the ticket list page builds it; returns the rows shown."""
    from django.utils import timezone

    from kefu.accounts.models import User
    from kefu.tickets import sla
    from kefu.tickets.selectors import ticket_list_for_display

    now = timezone.now()
    user = User.objects.get(pk=params["user"])  # as the session or token lookup loads it
    tickets = list_queryset(kind, params, user, now)
    rows = list(ticket_list_for_display(tickets)[: page + 1])
    states = [sla.state(t, now=now) for t in rows[:page]]
    return len(states)


def timed(mix, run) -> tuple[list[float], dict[str, list[float]]]:
    times, by_kind = [], {kind: [] for kind in LIST_KINDS}
    for kind, params in mix:
        started = time.perf_counter()
        run(kind, params)
        elapsed = (time.perf_counter() - started) * 1000
        times.append(elapsed)
        by_kind[kind].append(elapsed)
    return times, by_kind


def report(metric: str, size: str, times, by_kind, **extra) -> None:
    common = {"queries": len(times), "db": "postgresql", **extra}
    p95_by_kind = {k: round(percentile(v, 95), 1) for k, v in by_kind.items() if v}
    emit(f"{metric}_p50_{size}_pg", round(percentile(times, 50), 1), "ms", **common)
    emit(
        f"{metric}_p95_{size}_pg",
        round(percentile(times, 95), 1),
        "ms",
        p95_by_kind=p95_by_kind,
        **common,
    )
    emit(f"{metric}_max_{size}_pg", round(max(times), 1), "ms", **common)


def explain_slowest(by_kind, mix) -> None:
    """EXPLAIN ANALYZE of the page query of the kind with the slowest p95, to stderr and to
    var/bench/tickets-explain.txt."""
    from django.utils import timezone

    from kefu.accounts.models import User
    from kefu.tickets.selectors import ticket_list_for_display

    kind = max(by_kind, key=lambda k: percentile(by_kind[k], 95) if by_kind[k] else 0)
    params = next(p for k, p in mix if k == kind)
    now = timezone.now()
    tickets = ticket_list_for_display(
        list_queryset(kind, params, User.objects.get(pk=params["user"]), now)
    )[:51]
    plan = tickets.explain(analyze=True, buffers=True)
    text = f"-- slowest kind: {kind} {params}\n{tickets.query}\n\n{plan}\n"
    out = ROOT / "var" / "bench" / "tickets-explain.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    log(text)


def api_params(kind: str, params: dict) -> dict:
    query = {"limit": 50}
    if kind in ("open", "store"):
        query["status"] = "open"
    elif kind == "mine":
        query.update(status="open", assignee="me")
    elif kind == "breaching":
        query["breaching"] = "true"
    elif kind == "category":
        query["category"] = params["category"]
    elif kind == "number":
        query["q"] = params["number"]
    elif kind == "waiting_department":
        query["status"] = "waiting_department"
    return query


class QuietServer(Server):
    """`kefu run` without the background worker: its timer pass would fire the SLA breaches of
    the kept tickets while they are measured (and write events into the kept database)."""

    def __init__(self, *, port: int, env: dict[str, str], log_path: Path):
        self.port = port
        self.log_file = log_path.open("w")
        self.proc = subprocess.Popen(
            [*server_command(port), "--no-worker"],
            cwd=ROOT,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.log_path = log_path


def list_over_http(mix, var_dir: Path) -> tuple[list[float], dict[str, list[float]]] | None:
    from django.db import connections

    from kefu.accounts.models import ApiToken, User
    from kefu.accounts.services import api_token_create

    keys = {}
    for user_id in {p["user"] for _k, p in mix}:
        _token, keys[user_id] = api_token_create(
            user=User.objects.get(pk=user_id), name="bench-tickets", actor=None
        )
    connections.close_all()
    server = QuietServer(port=free_port(), env=dict(os.environ), log_path=var_dir / "server.log")
    conn = None
    try:
        server.wait_ready(timeout=120)
        if not has_route(server.port, "get", "/api/v1/tickets"):
            return None
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)

        def run(kind: str, params: dict) -> None:
            path = "/api/v1/tickets?" + urllib.parse.urlencode(api_params(kind, params))
            headers = {"Authorization": f"Bearer {keys[params['user']]}"}
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")

        timed(mix[:20], run)  # warm-up
        return timed(mix, run)
    finally:
        if conn is not None:
            conn.close()
        server.stop()
        ApiToken.objects.filter(name="bench-tickets").delete()


def run_list(args) -> int:
    count = 100_000 if args.quick else 1_000_000
    customers = 10_000 if args.quick else 50_000
    size = label(count)
    metrics = [f"ticket_list_p95_{size}_pg", f"ticket_list_api_p95_{size}_pg"]
    reason = pg_reachable()
    if reason:
        for metric in metrics:
            emit(metric, None, "ms", skipped=reason)
        return 0
    var_dir = Path(tempfile.mkdtemp(prefix="kefu-bench-tickets-pg-"))
    os.environ.update(
        KEFU_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="kefu.settings", KEFU_LOG_LEVEL="WARNING"
    )
    try:
        list_prepare(count, customers, rebuild=args.rebuild, db_options=args.db_options)
        mix = list_mix(args.queries, random.Random(SEED))
        timed(mix[:20], list_in_process)  # warm-up: the page cache and the ORM's
        times, by_kind = timed(mix, list_in_process)
        report("ticket_list", size, times, by_kind, tickets=count, page=50)
        explain_slowest(by_kind, mix)
        if args.no_http:
            return 0
        measured = list_over_http(mix, var_dir)
        if measured is None:
            emit(metrics[1], None, "ms", skipped="GET /api/v1/tickets is not in the API yet")
        else:
            report("ticket_list_api", size, *measured, tickets=count, page=50)
        return 0
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 creates, 100,000 tickets")
    parser.add_argument("--only", choices=["create", "list"])
    parser.add_argument("--part", choices=["create", "list"], help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--queries", type=int, default=203)
    parser.add_argument("--no-http", action="store_true", help="skip the list over HTTP")
    parser.add_argument("--rebuild", action="store_true", help="build the PostgreSQL data anew")
    parser.add_argument(
        "--db-options",
        default="",
        help="query string added to the PostgreSQL URL, e.g. server_side_binding=true",
    )
    args = parser.parse_args()
    # bench/run.py stops an overrunning script with SIGTERM: unwind so `finally` stops servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.part == "create":
        return run_create(args)
    if args.part == "list":
        return run_list(args)
    # Each part configures Django for its own database, so each runs in a process of its own.
    status = 0
    for part in [args.only] if args.only else ["create", "list"]:
        command = [sys.executable, __file__, "--part", part, *sys.argv[1:]]
        status = subprocess.call(command, cwd=ROOT) or status
    return status


if __name__ == "__main__":
    sys.exit(main())
