"""The reminder of a store appointment is scheduled when it is booked and sent by a real
`kefu worker` process, once."""

import subprocess
import time

import pytest

from kefu.core.tests.test_worker import KEFU, _start_worker, _stop, worker_env  # noqa: F401

pytestmark = pytest.mark.slow

SETUP = """
import datetime as dt
from django.utils import timezone
from kefu.accounts.models import Store, User
from kefu.appointments.models import OpeningHours, StoreSchedule
from kefu.appointments.services import appointment_book
from kefu.customers.services import customer_create

store = Store.objects.create(code="S1", name="人民路店", address="人民路1号")
StoreSchedule.objects.create(store=store, slot_minutes=30, capacity=2)
for weekday in range(7):
    OpeningHours.objects.create(store=store, weekday=weekday, opens_at=dt.time(0),
                                closes_at=dt.time(23, 59))
customer = customer_create(actor=None, data={"name": "王女士"},
                           contacts=[{"kind": "phone", "value": "13812345678"}])
# The next slot at least an hour ahead: its day-before reminder is due at once.
start = timezone.localtime() + dt.timedelta(hours=1)
start = start.replace(minute=30 if start.minute < 30 else 0, second=0, microsecond=0)
if start.minute == 0:
    start += dt.timedelta(hours=1)
if start.hour == 23 and start.minute == 30:
    start = (start + dt.timedelta(days=1)).replace(hour=0, minute=30)
appointment_book(actor=None, data={"customer": customer.pk, "store": store.pk,
                                   "starts_at": start, "purpose": "验光"})
"""

COUNT = """
from kefu.campaigns.models import OutboxMessage
from kefu.appointments.models import Appointment
print("COUNTS", OutboxMessage.objects.filter(reference__endswith="-reminder").count(),
      Appointment.objects.filter(reminder_sent_at__isnull=False).count())
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
    _label, sent, marked = next(x for x in out.splitlines() if x.startswith("COUNTS")).split()
    return int(sent), int(marked)


def test_booking_schedules_the_reminder_and_a_worker_sends_it_once(worker_env, tmp_path):  # noqa: F811
    # given: an appointment booked while no worker runs
    subprocess.run([KEFU, "shell", "-c", SETUP], env=worker_env, check=True, timeout=60)
    assert _counts(worker_env) == (0, 0)
    # when: a worker starts
    log = tmp_path / "worker.log"
    worker = _start_worker(worker_env, log)
    try:
        deadline = time.monotonic() + 45
        while _counts(worker_env) == (0, 0) and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(2)
        # then: the customer got one reminder
        assert _counts(worker_env) == (1, 1), log.read_text()
    finally:
        _stop(worker)
