"""Time the customer import on a fresh SQLite database: dry run, then commit, of one big sheet.

    .venv/bin/python bench/bench_import.py [--rows 100000] [--format xlsx|xlsx-openpyxl|csv]

The sheet has realistic Chinese names, unique valid mobile numbers and about 1% bad rows (bad
phone, duplicate phone, unknown store, bad date, future date, missing name). The .xlsx is saved
the way Excel and WPS save it (text in a shared string table); `--format xlsx-openpyxl` writes
it with openpyxl instead, as Kefu's own export does (inline strings, about 2.5 times slower to
read).

The steps are those of the import page, run as its background jobs would run them in the worker
(in this process): the check job stores the upload, reads the file, checks it and keeps the rows
it read; the import job checks those rows again, prepares the customers and writes them in one
transaction. The time that transaction holds the database's write lock is reported too. Reading
the file alone is timed, since `kefu import FILE --commit` reads and commits in one go.

Prints one JSON line per metric, with wall-clock seconds as the value and CPU seconds beside it
(other processes on the machine slow the first, not the second). The database lives in a new
temporary KEFU_VAR_DIR, removed afterwards unless --keep is given.
"""

import argparse
import datetime as dt
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STORES = [("S01", "人民路店"), ("S02", "解放路店"), ("S03", "中山路店"), ("S04", "滨江店")]
# Prefixes whose every eight-digit ending is a valid mainland mobile number.
MOBILE_PREFIXES = ["133", "135", "136", "137", "138", "139", "150", "151", "158", "186", "189"]
HEADER = ["姓名", "手机", "性别", "生日", "等级", "状态", "门店", "标签", "来源", "邮箱"]
HEADER += ["会员卡号", "入会日期", "备注"]
TAGS = ["慢病", "高血压", "糖尿病", "母婴", "保健品", "中药调理", "会员日", "老年"]
BAD_KINDS = ["bad_phone", "duplicate", "unknown_store", "bad_date", "future_date", "no_name"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--format",
        choices=["xlsx", "xlsx-openpyxl", "csv"],
        default="xlsx",
        help="xlsx: saved as Excel and WPS do (default); xlsx-openpyxl: as Kefu's export does",
    )
    parser.add_argument("--bad", type=float, default=0.01, help="share of bad rows (0.01)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="kefu-bench-import-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "kefu.settings"
    os.environ["KEFU_VAR_DIR"] = str(var_dir)
    os.environ.pop("KEFU_DATABASE_URL", None)
    try:
        run(args, var_dir)
    finally:
        if not args.keep:
            shutil.rmtree(var_dir, ignore_errors=True)


def run(args: argparse.Namespace, var_dir: Path) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from kefu.accounts.models import Store
    from kefu.customers.imports import read_spreadsheet
    from kefu.customers.jobs import customer_import_check_start, customer_import_confirm
    from kefu.customers.models import ContactPoint, Customer
    from kefu.jobs.models import Job
    from kefu.jobs.services import job_run

    call_command("migrate", verbosity=0)
    for code, name in STORES:
        Store.objects.create(code=code, name=name)

    with Timer() as generate:
        rows, bad = sheet_rows(args.rows, args.bad)
        path = var_dir / ("customers.csv" if args.format == "csv" else "customers.xlsx")
        write_sheet(path, rows, args.format)
        del rows
    emit("customer_import_generate_file", generate, args)

    # Parsing alone: what `kefu import FILE --commit` pays on top of the commit step below.
    with Timer() as read, path.open("rb") as f:
        assert sum(1 for _row in read_spreadsheet(f, path.name)) == args.rows
    # The import page: the check job reads and checks the upload, keeping the rows read ...
    with Timer() as dry_run, path.open("rb") as f:
        check = customer_import_check_start(
            actor=None, upload=f, filename=path.name, ip=None, now=timezone.now()
        )
        job_run(job_id=check.pk)
    check.refresh_from_db()
    assert check.status == Job.Status.SUCCEEDED, check.error_display
    assert Customer.objects.count() == 0, "the check wrote customers"
    # ... then "Import N valid rows" starts the import job: it checks them again and writes them.
    phases = PhaseClock()
    with Timer() as commit:
        imported = customer_import_confirm(
            actor=None, check_job_id=check.pk, ip=None, now=timezone.now()
        )
        job_run(job_id=imported.pk, listener=phases)
    imported.refresh_from_db()
    assert imported.status == Job.Status.SUCCEEDED, imported.error_display
    done, dry = imported.summary, check.summary
    assert done["rows"] == args.rows, (done["rows"], args.rows)
    assert done["invalid"] == bad == dry["invalid"], (done["invalid"], bad, dry["invalid"])
    assert Customer.objects.count() == done["created"] == args.rows - bad
    assert ContactPoint.objects.count() >= done["created"]

    label = "100k" if args.rows == 100_000 else str(args.rows)
    emit("customer_import_read_file", read, args, note="parse only")
    emit("customer_import_dry_run", dry_run, args, note="check job: read, check, keep the rows")
    emit("customer_import_commit", commit, args, note="import job: check again, prepare, write")
    emit(
        "customer_import_write_lock",
        Timer(phases.seconds("saving")),
        args,
        note="the import job's write transaction",
    )
    emit(
        f"customer_import_{label}_rows",
        Timer(dry_run.seconds + commit.seconds, dry_run.cpu + commit.cpu),
        args,
        note="check job + import job, as on the import page",
    )
    emit(
        "customer_import_file_commit",
        Timer(read.seconds + commit.seconds, read.cpu + commit.cpu),
        args,
        note="kefu import FILE --commit: read + commit",
    )
    emit("customer_import_commit_rate", Timer(args.rows / commit.seconds), args, unit="rows/s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    emit("customer_import_peak_memory", Timer(peak), args, unit="MiB")


def sheet_rows(count: int, bad_share: float) -> tuple[list[list], int]:
    from django.utils import timezone
    from faker import Faker

    rng = random.Random(20260101)
    fake = Faker("zh_CN")
    fake.seed_instance(20260101)
    suffixes = rng.sample(range(10**8), count)
    today = timezone.localdate()
    bad_every = round(1 / bad_share) if bad_share else 0
    rows: list[list] = [HEADER]
    bad = 0
    for i in range(count):
        phone = f"{rng.choice(MOBILE_PREFIXES)}{suffixes[i]:08d}"
        status = rng.choices(["潜在", "成交", "会员", "销户"], [30, 40, 27, 3])[0]
        is_member = status == "会员"
        row = [
            fake.name(),
            phone,
            rng.choice(["男", "女", ""]),
            (today - dt.timedelta(days=rng.randint(18 * 365, 85 * 365))).isoformat(),
            rng.choices(["普通", "VIP", "大客户"], [85, 12, 3])[0],
            status,
            rng.choice(STORES)[rng.randint(0, 1)],  # by code or by name
            "、".join(rng.sample(TAGS, rng.choice([0, 0, 1, 1, 2]))),
            rng.choice(["电话", "微信", "门店", "到店", "在线客服"]),
            f"user{i}@example.com" if rng.random() < 0.1 else "",
            f"VIP{i:08d}" if is_member else "",
            (today - dt.timedelta(days=rng.randint(1, 3000))).isoformat() if is_member else "",
            "老客户，电话回访" if rng.random() < 0.05 else "",
        ]
        if bad_every and i % bad_every == bad_every // 2 and i > 0:
            spoil(row, BAD_KINDS[bad % len(BAD_KINDS)], rows, today)
            bad += 1
        rows.append(row)
    return rows, bad


def spoil(row: list, kind: str, rows: list[list], today: dt.date) -> None:
    if kind == "bad_phone":
        row[1] = "1380013"
    elif kind == "duplicate":
        row[1] = rows[1][1]  # the phone of the first data row
    elif kind == "unknown_store":
        row[6] = "不存在的门店"
    elif kind == "bad_date":
        row[3] = "1990-13-45"
    elif kind == "future_date":
        row[3] = (today + dt.timedelta(days=30)).isoformat()
    else:
        row[0] = ""


def write_sheet(path: Path, rows: list[list], fmt: str) -> None:
    if fmt == "csv":
        import csv

        with path.open("w", encoding="utf-8-sig", newline="") as f:
            csv.writer(f).writerows(rows)
    elif fmt == "xlsx-openpyxl":
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet()
        for row in rows:
            sheet.append([v if v != "" else None for v in row])
        workbook.save(path)
    else:
        write_xlsx_like_excel(path, rows)


def write_xlsx_like_excel(path: Path, rows: list[list]) -> None:
    """A minimal .xlsx as Excel and WPS save one: text in a shared string table, a dimension."""
    import zipfile
    from xml.sax.saxutils import escape

    from openpyxl.utils import get_column_letter

    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships"
    types = "http://schemas.openxmlformats.org/package/2006/content-types"
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    strings: dict[str, int] = {}
    letters = [get_column_letter(i + 1) for i in range(max(len(r) for r in rows))]
    sheet = [f'<worksheet xmlns="{main}"><dimension ref="A1:{letters[-1]}{len(rows)}"/>']
    sheet.append("<sheetData>")
    for number, row in enumerate(rows, start=1):
        cells = "".join(
            f'<c r="{letters[i]}{number}" t="s"><v>{strings.setdefault(v, len(strings))}</v></c>'
            for i, v in enumerate(row)
            if v
        )
        sheet.append(f'<row r="{number}">{cells}</row>')
    sheet.append("</sheetData></worksheet>")
    shared = "".join(f"<si><t>{escape(s)}</t></si>" for s in strings)
    parts = {
        "[Content_Types].xml": f'<Types xmlns="{types}">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{ct}.sheet.main+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{ct}.worksheet+xml"/>'
        f'<Override PartName="/xl/sharedStrings.xml" ContentType="{ct}.sharedStrings+xml"/>'
        "</Types>",
        "_rels/.rels": f'<Relationships xmlns="{pkg}"><Relationship Id="rId1" '
        f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
        '<sheet name="客户" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{pkg}">'
        f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/>'
        "</Relationships>",
        "xl/worksheets/sheet1.xml": "".join(sheet),
        "xl/sharedStrings.xml": f'<sst xmlns="{main}" uniqueCount="{len(strings)}">{shared}</sst>',
    }
    declaration = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in parts.items():
            archive.writestr(name, declaration + body)


class PhaseClock:
    """A job listener that notes when each phase began and last reported."""

    def __init__(self) -> None:
        self.spans: dict[str, list[float]] = {}

    def __call__(self, report) -> None:
        now = time.perf_counter()
        self.spans.setdefault(report.phase, [now, now])[1] = now

    def seconds(self, phase: str) -> float:
        start, end = self.spans.get(phase, (0.0, 0.0))
        return end - start


class Timer:
    """Wall-clock and CPU seconds of a block."""

    def __init__(self, seconds: float = 0.0, cpu: float = 0.0) -> None:
        self.seconds, self.cpu = seconds, cpu

    def __enter__(self) -> "Timer":
        self._started = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._started[0]
        self.cpu = time.process_time() - self._started[1]


def emit(metric: str, value: Timer, args: argparse.Namespace, unit: str = "s", **extra) -> None:
    from django.db import connection

    line = {
        "metric": metric,
        "value": round(value.seconds, 2),
        "unit": unit,
        "rows": args.rows,
        "format": args.format,
        "db": connection.vendor,
    }
    if unit == "s":
        line["cpu_s"] = round(value.cpu, 2)
    print(json.dumps({**line, **extra}, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
