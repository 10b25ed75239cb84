"""Import jobs in real `kefu worker` processes, killed (SIGKILL) in the middle of their work.

The worker is killed once while the check reads the file and once while the import is inside its
write transaction. Nothing of the import may stay after the kill, and the restarted worker must
finish the job with exactly the rows of the file: none lost, none twice.
"""

import csv
import json
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import pytest

from kefu.core.tests.test_worker import KEFU, _start_worker, _stop, worker_env  # noqa: F401

pytestmark = pytest.mark.slow

ROWS = 24_000
BAD_ROWS = 24  # every 1000th row has a phone that cannot be one
WAIT = 180  # seconds, at most, for a step on a loaded machine


def _sheet(path: Path) -> int:
    """A CSV of ROWS customers with unique phones; returns how many rows are valid."""
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["姓名", "手机", "标签"])
        for i in range(ROWS):
            phone = "12345" if i % 1000 == 999 else f"138{i:08d}"
            writer.writerow([f"客户{i}", phone, "慢病" if i % 3 == 0 else ""])
    return ROWS - BAD_ROWS


def _query(env: dict[str, str], sql: str, *params) -> list[tuple]:
    db = Path(env["KEFU_VAR_DIR"]) / "kefu.sqlite3"
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as conn:
        return conn.execute(sql, params).fetchall()


def _job(env: dict[str, str], job_id: int) -> dict:
    rows = _query(
        env,
        "SELECT status, phase, done, total, attempts, summary FROM jobs_job WHERE id = ?",
        job_id,
    )
    status, phase, done, total, attempts, summary = rows[0]
    return {
        "status": status,
        "phase": phase,
        "done": done,
        "total": total,
        "attempts": attempts,
        "summary": json.loads(summary),
    }


def _progress_file(env: dict[str, str], job_id: int) -> dict:
    path = Path(env["KEFU_VAR_DIR"]) / "media" / "jobs" / str(job_id) / "progress.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _shell(env: dict[str, str], code: str) -> str:
    done = subprocess.run(
        [KEFU, "shell", "-c", code],
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip().splitlines()[-1]


def _wait(what: str, check, log: Path, timeout: float = WAIT, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out waiting for {what}\n{log.read_text()[-5000:]}")


def _counts(env: dict[str, str]) -> dict[str, int]:
    def one(sql: str) -> int:
        return _query(env, sql)[0][0]

    return {
        "customers": one("SELECT COUNT(*) FROM customers_customer"),
        "phones": one("SELECT COUNT(DISTINCT value) FROM customers_contactpoint"),
        "events": one("SELECT COUNT(*) FROM customers_customerevent WHERE kind = 'imported'"),
        "audits": one("SELECT COUNT(*) FROM audit_auditentry WHERE action = 'customer.imported'"),
    }


def test_an_import_survives_workers_killed_while_checking_and_while_saving(
    worker_env,  # noqa: F811
    tmp_path,
):
    # given a sheet checked by a worker that is killed half-way through reading it
    sheet = tmp_path / "customers.csv"
    valid = _sheet(sheet)
    log = tmp_path / "worker.log"
    check_id = int(
        _shell(
            worker_env,
            "from django.utils import timezone; from kefu.customers.jobs import "
            "customer_import_check_start as start; "
            f"f = open({str(sheet)!r}, 'rb'); "
            "print(start(actor=None, upload=f, filename='customers.csv', ip=None, "
            "now=timezone.now()).pk)",
        )
    )
    worker = _start_worker(worker_env, log)
    try:
        _wait(
            "the check to be half-way",
            lambda: (
                (job := _job(worker_env, check_id))["phase"] == "checking" and job["done"] >= 5000
            ),
            log,
        )
    finally:
        _stop(worker, signal.SIGKILL)
    halfway = _job(worker_env, check_id)
    assert (halfway["status"], halfway["attempts"]) == ("running", 1)
    assert halfway["done"] < ROWS

    # when a worker starts again, then the check runs again from the start and ends
    worker = _start_worker(worker_env, log)
    try:
        checked = _wait(
            "the check to end",
            lambda: (
                (job := _job(worker_env, check_id))["status"] not in ("queued", "running") and job
            ),
            log,
            every=0.5,
        )
    finally:
        _stop(worker)
    assert checked["status"] == "succeeded", log.read_text()[-5000:]
    assert checked["attempts"] == 2
    assert (checked["summary"]["rows"], checked["summary"]["valid"]) == (ROWS, valid)
    assert _counts(worker_env)["customers"] == 0  # a check saves nothing

    # given the import of the checked rows, and a worker killed inside its write transaction
    import_id = int(
        _shell(
            worker_env,
            "from django.utils import timezone; from kefu.customers.jobs import "
            "customer_import_confirm as confirm; "
            f"print(confirm(actor=None, check_job_id={check_id}, ip=None, "
            "now=timezone.now()).pk)",
        )
    )
    worker = _start_worker(worker_env, log)
    try:
        live = _wait(
            "the import to be saving",
            lambda: (
                (p := _progress_file(worker_env, import_id)).get("phase") == "saving"
                and p.get("done", 0) >= 2000
                and p
            ),
            log,
            every=0.02,
        )
    finally:
        _stop(worker, signal.SIGKILL)
    assert live["done"] < valid
    # then nothing of it stays: no customer, contact, event or audit entry
    assert _counts(worker_env) == {"customers": 0, "phones": 0, "events": 0, "audits": 0}
    assert _job(worker_env, import_id)["status"] == "running"

    # when a worker starts again
    worker = _start_worker(worker_env, log)
    try:
        imported = _wait(
            "the import to end",
            lambda: (
                (job := _job(worker_env, import_id))["status"] not in ("queued", "running") and job
            ),
            log,
            every=0.5,
        )
    finally:
        _stop(worker)

    # then the import ran again from the start and wrote every valid row exactly once
    assert imported["status"] == "succeeded", log.read_text()[-5000:]
    assert imported["attempts"] == 2
    assert imported["summary"]["created"] == valid
    assert _counts(worker_env) == {
        "customers": valid,
        "phones": valid,
        "events": valid,
        "audits": 1,
    }
    numbers = _query(
        worker_env,
        "SELECT COUNT(DISTINCT number), MIN(number), MAX(number) FROM customers_customer",
    )[0]
    assert numbers[0] == valid
    assert (numbers[1], numbers[2]) == (
        imported["summary"]["first_number"],
        imported["summary"]["last_number"],
    )
