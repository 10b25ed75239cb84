"""Bulk messages at 100,000 recipients: queueing the audience, then dispatching to the outbox.

A fresh database (SQLite in a new temporary KEFU_VAR_DIR by default; with --db pg the PostgreSQL
database kefu_bench_campaign on KEFU_BENCH_PG, created afresh and dropped afterwards unless
--keep) gets four stores and 100,000 members with a mobile phone each, written with bulk_create
(not through the services).
A segment matching all of them, an SMS template with per-customer variables and a campaign are
made through the services, the campaign is launched (the worker's queue task is only enqueued),
then:

- campaign_queue_<size>_s: services.campaign_queue writing one recipient row per customer (with
  the address, opt-outs and missing phones checked). Target: under 60 s for 100,000.
- campaign_dispatch_outbox_msgs_per_s: services.campaign_dispatch with the SMS rate limit off
  (KEFU_SMS_RATE=0) sending to the local outbox, for --dispatch-seconds (60 by default; 0: the
  whole campaign), run in slices of a few seconds as the worker re-runs it. The rate of each
  slice goes to stderr, so a slowdown as the outbox grows shows.
- campaign_outbox_duplicate_customers: customers with more than one outbox message (must be 0;
  the script fails otherwise), and every sent recipient has exactly one outbox row.

One JSON line per metric on stdout, wall-clock seconds with CPU seconds beside them. --quick uses
10,000 customers and 10 s of dispatch.

    .venv/bin/python bench/bench_campaign.py [--quick] [--customers N] [--dispatch-seconds S]
        [--db sqlite|pg] [--keep]
"""

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_api import emit, log  # noqa: E402

PG_SERVER = os.environ.get("KEFU_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
PG_DATABASE = "kefu_bench_campaign"
SEED = 23
STORES = [("S01", "人民路店"), ("S02", "解放路店"), ("S03", "中山路店"), ("S04", "滨江店")]
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红梅飞鑫波斌宇浩凯健俊")
BATCH = 5000
SLICE_SECONDS = 5.0


def label(count: int) -> str:
    return f"{count // 1000}k" if count % 1000 == 0 else str(count)


class Timer:
    """Wall-clock and CPU seconds of a block."""

    def __enter__(self) -> "Timer":
        self._started = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = self.elapsed()
        self.cpu = time.process_time() - self._started[1]

    def elapsed(self) -> float:
        return time.perf_counter() - self._started[0]


def customers_load(count: int) -> None:
    """`count` members over the stores, each with one primary mobile phone; bulk inserts."""
    from django.db import transaction
    from django.utils import timezone

    from kefu.accounts.models import Store
    from kefu.core.models import Sequence
    from kefu.customers.models import ContactPoint, Customer
    from kefu.customers.services import NUMBER_PREFIX, NUMBER_SEQUENCE

    rng = random.Random(SEED)
    stores = list(Store.objects.values_list("pk", flat=True))
    today = timezone.localdate()
    for start in range(0, count, BATCH):
        numbers = range(start + 1, min(count, start + BATCH) + 1)
        with transaction.atomic():
            created = Customer.objects.bulk_create(
                [
                    Customer(
                        number=f"{NUMBER_PREFIX}{n:08d}",
                        name=rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.choice([1, 2]))),
                        status=Customer.Status.MEMBER,
                        level=rng.choices([Customer.Level.NORMAL, Customer.Level.VIP], [85, 15])[0],
                        store_id=rng.choice(stores),
                        source=Customer.Source.IMPORT,
                        birthday=today.replace(year=today.year - 30 - n % 40, day=1),
                        member_since=today.replace(year=today.year - 1 - n % 5, day=1),
                    )
                    for n in numbers
                ]
            )
            ids = [c.pk for c in created]
            if None in ids:  # a backend without RETURNING: read them back
                ids = list(
                    Customer.objects.filter(number__in=[f"{NUMBER_PREFIX}{n:08d}" for n in numbers])
                    .order_by("number")
                    .values_list("pk", flat=True)
                )
            ContactPoint.objects.bulk_create(
                [
                    ContactPoint(
                        customer_id=pk,
                        kind=ContactPoint.Kind.PHONE,
                        value=f"+86138{n:08d}",
                        is_primary=True,
                        last4=f"{n % 10000:04d}",
                    )
                    for pk, n in zip(ids, numbers, strict=True)
                ]
            )
        if (start // BATCH) % 4 == 3:
            log(f"  {min(count, start + BATCH):,} customers")
    Sequence.objects.update_or_create(name=NUMBER_SEQUENCE, defaults={"value": count})


def campaign_prepare():
    """A segment matching every member, an SMS template and a launched campaign."""
    from kefu.campaigns import services
    from kefu.campaigns.models import Campaign, MessageTemplate

    segment = services.segment_save(actor=None, name="全部会员", filters={"statuses": ["member"]})
    template = MessageTemplate.objects.create(
        name="会员日短信",
        gateway="sms",
        purpose=MessageTemplate.Purpose.PROMOTION,
        body="{name}您好，{store}本周六会员日，全场9折，{date}前有效。",
    )
    campaign = services.campaign_create(
        actor=None, data={"name": "会员日", "template": template.pk, "segment": segment.pk}
    )
    services.campaign_launch(actor=None, campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.QUEUED, campaign.status
    return campaign


def run(args: argparse.Namespace) -> int:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count

    from kefu.accounts.models import Store
    from kefu.campaigns import services
    from kefu.campaigns.models import CampaignRecipient, OutboxMessage
    from kefu.customers.models import Customer

    assert settings.CAMPAIGN_RATES["sms"] == 0, "the SMS rate limit must be off"
    db = connection.vendor
    common = {"customers": args.customers, "db": db}
    call_command("migrate", verbosity=0)
    for code, name in STORES:
        Store.objects.create(code=code, name=name)
    log(f"loading {args.customers:,} customers with phones ({db})")
    with Timer() as load:
        customers_load(args.customers)
    log(f"  loaded in {load.seconds:.1f} s")
    assert Customer.objects.count() == args.customers
    campaign = campaign_prepare()

    # (a) queueing: one recipient row per customer of the segment
    with Timer() as queue:
        written = services.campaign_queue(campaign_id=campaign.pk)
    pending = CampaignRecipient.objects.filter(campaign=campaign, status="pending").count()
    assert written == args.customers == pending, (written, pending)
    emit(
        f"campaign_queue_{label(args.customers)}_s",
        round(queue.seconds, 2),
        "s",
        cpu_s=round(queue.cpu, 2),
        target_s=60,
        **common,
    )

    # (b) dispatching to the outbox, rate limit off, in slices as the worker re-runs it
    budget = args.dispatch_seconds or float("inf")
    sent = failed = 0
    with Timer() as dispatch:
        while dispatch.elapsed() < budget:
            slice_seconds = min(SLICE_SECONDS, budget - dispatch.elapsed())
            step = time.perf_counter()
            counts = services.campaign_dispatch(campaign_id=campaign.pk, max_seconds=slice_seconds)
            sent, failed = sent + counts["sent"], failed + counts["failed"]
            rate = counts["sent"] / (time.perf_counter() - step)
            log(f"  dispatch: {sent:,} sent, {counts['remaining']:,} waiting ({rate:,.0f}/s)")
            if not counts["remaining"]:
                break
    remaining = CampaignRecipient.objects.filter(campaign=campaign, status="pending").count()
    emit(
        "campaign_dispatch_outbox_msgs_per_s",
        round(sent / dispatch.seconds, 1),
        "msgs/s",
        sent=sent,
        failed=failed,
        remaining=remaining,
        seconds=round(dispatch.seconds, 1),
        cpu_s=round(dispatch.cpu, 2),
        **common,
    )

    # (c) at most once: no customer with two outbox messages, one outbox row per sent recipient
    twice = OutboxMessage.objects.values("customer").annotate(n=Count("id")).filter(n__gt=1).count()
    outbox = OutboxMessage.objects.count()
    sent_rows = CampaignRecipient.objects.filter(campaign=campaign, status="sent").count()
    linked = OutboxMessage.objects.filter(recipient__campaign=campaign).count()
    emit(
        "campaign_outbox_duplicate_customers",
        twice,
        "customers",
        outbox_messages=outbox,
        sent_recipients=sent_rows,
        **common,
    )
    if twice or not (outbox == sent_rows == linked == sent):
        log(f"!! duplicates={twice} outbox={outbox} sent={sent_rows} linked={linked}")
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 customers, 10 s dispatch")
    parser.add_argument("--customers", type=int)
    parser.add_argument(
        "--dispatch-seconds",
        type=float,
        help="how long to dispatch (default 60, --quick 10); 0: until the campaign is sent",
    )
    parser.add_argument("--db", choices=["sqlite", "pg"], default="sqlite")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    args.customers = args.customers or (10_000 if args.quick else 100_000)
    if args.dispatch_seconds is None:
        args.dispatch_seconds = 10.0 if args.quick else 60.0

    var_dir = Path(tempfile.mkdtemp(prefix="kefu-bench-campaign-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "kefu.settings"
    os.environ["KEFU_VAR_DIR"] = str(var_dir)  # the task queue's file lands here too
    os.environ["KEFU_SMS_RATE"] = "0"
    os.environ.pop("KEFU_DATABASE_URL", None)
    if args.db == "pg":
        from bench.bench_tickets import pg_connect, pg_database_create, pg_reachable

        reason = pg_reachable()
        if reason:
            emit(f"campaign_queue_{label(args.customers)}_s", None, "s", skipped=reason)
            emit("campaign_dispatch_outbox_msgs_per_s", None, "msgs/s", skipped=reason)
            return 0
        pg_database_create(PG_DATABASE, drop=True)
        os.environ["KEFU_DATABASE_URL"] = f"{PG_SERVER}/{PG_DATABASE}"
    try:
        return run(args)
    finally:
        if not args.keep:
            shutil.rmtree(var_dir, ignore_errors=True)
            if args.db == "pg":
                from django.db import connections

                connections.close_all()
                with pg_connect("postgres") as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
