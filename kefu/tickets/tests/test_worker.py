"""Ticket timers with real `kefu worker` processes: a worker killed before an urge and an SLA
breach are due loses neither, and a restarted one fires each exactly once."""

import signal
import subprocess
import time

import pytest

from kefu.core.tests.test_worker import KEFU, _start_worker, _stop, worker_env  # noqa: F401

pytestmark = pytest.mark.slow

SETUP = """
import datetime as dt
from django.utils import timezone
from kefu.accounts.models import User
from kefu.customers.services import customer_create
from kefu.tickets import services
from kefu.tickets.models import Department, SlaPolicy, Ticket, TicketHandoff
from kefu.tickets.tasks import ticket_timers_task

handler = User.objects.create_user("handler", role="department_handler")
department = Department.objects.create(name="质量管理部", urge_interval_minutes=60)
department.handlers.add(handler)
SlaPolicy.objects.create(name="投诉", ticket_type="complaint", first_response_minutes=60,
                         business_hours=False)
customer = customer_create(actor=None, data={"name": "张三"},
                           contacts=[{"kind": "phone", "value": "13812341234"}])
ticket = services.ticket_create(actor=None, data={
    "type": "complaint", "subject": "过期药品", "customer": customer.pk})
services.ticket_hand_off(actor=None, ticket_id=ticket.pk, department_id=department.pk,
                         instructions="请核查")
# Both timers fall due 4 s from now; the timer pass is queued for 6 s from now.
due = timezone.now() + dt.timedelta(seconds=4)
TicketHandoff.objects.update(next_urge_at=due)
Ticket.objects.update(first_response_due_at=due, sla_marks={}, sla_next_check_at=due)
ticket_timers_task.schedule(delay=6)
"""

COUNT = """
from kefu.tickets.models import TicketEvent
print("COUNTS", TicketEvent.objects.filter(kind="urged").count(),
      TicketEvent.objects.filter(kind="sla_breached").count())
"""


def _counts(env) -> tuple[int, int]:
    out = subprocess.run(
        [KEFU, "shell", "-c", COUNT],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("COUNTS"))
    _label, urged, breached = line.split()
    return int(urged), int(breached)


def test_ticket_timers_survive_a_killed_worker(worker_env, tmp_path):  # noqa: F811
    # given a hand-off and an SLA due in 4 s, and a worker killed (SIGKILL) before then
    subprocess.run([KEFU, "shell", "-c", SETUP], env=worker_env, check=True, timeout=60)
    started = time.monotonic()
    log = tmp_path / "worker.log"
    first = _start_worker(worker_env, log)
    time.sleep(2)
    assert first.poll() is None, log.read_text()
    _stop(first, signal.SIGKILL)
    time.sleep(max(0.0, started + 7 - time.monotonic()))  # both moments pass with no worker
    assert _counts(worker_env) == (0, 0)

    # when a worker starts again
    second = _start_worker(worker_env, log)
    try:
        deadline = time.monotonic() + 45
        while _counts(worker_env) == (0, 0) and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(3)  # time enough for a duplicate to show
        # then the urge and the breach each fired exactly once
        assert _counts(worker_env) == (1, 1), log.read_text()
    finally:
        _stop(second)
