"""Leases: one worker at a time on a piece of background work, never stuck behind a dead one.

Huey's `lock_task` keeps its lock in the task store until the task's `finally` runs. A worker
that is killed (SIGKILL, out of memory, a lost machine) never runs it, nor does one stopped with
SIGTERM (the consumer exits without waiting for its threads): the lock stays and the work it
guards stops for good. A lease lapses KEFU_LEASE_SECONDS after its holder last renewed it
instead. The holder renews it while the work goes on (`HeldLease.renew()` between steps, or a
heartbeat thread) and gives it up at the end; after a crash the next worker takes it over once it
has lapsed.

Taking a lease is one conditional UPDATE (free, or lapsed), which SQLite and PostgreSQL both run
atomically: two workers, on one machine or several, never both hold it. Lapsing is judged by the
clock of the worker that asks, so the machines' clocks must agree to well within the lease time
(NTP does).
"""

import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from kefu.core.models import Lease

log = logging.getLogger(__name__)


class LeaseHeld(Exception):
    """Another worker holds the lease (and has renewed it in time)."""


def _holder() -> str:
    """Who takes the lease: machine and process (shown to administrators), and a unique part."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class HeldLease:
    """A lease this worker holds. `renew()` keeps it; `lost` says another worker took it over
    after it lapsed (the work must stop: it may be running twice)."""

    def __init__(self, name: str, holder: str, ttl: float, taken_over_from: str = "") -> None:
        self.name = name
        self.holder = holder
        self.ttl = ttl
        # The holder whose lease had lapsed when this one took it: a worker that died holding it.
        self.taken_over_from = taken_over_from
        self.lost = False
        self._renewed = time.monotonic()
        self._mutex = threading.Lock()

    def renew(self, *, force: bool = False, now: dt.datetime | None = None) -> bool:
        """Extend the lease by its time from now, at most every third of it unless `force`.
        Returns False once the lease is lost."""
        with self._mutex:
            if self.lost:
                return False
            if not force and time.monotonic() - self._renewed < self.ttl / 3:
                return True
            now = now or timezone.now()
            kept = Lease.objects.filter(name=self.name, holder=self.holder).update(
                expires_at=now + dt.timedelta(seconds=self.ttl)
            )
            self._renewed = time.monotonic()
            if not kept:
                self.lost = True
                log.warning("Lease %s lapsed and was taken over: stopping this run", self.name)
            return bool(kept)

    def release(self) -> None:
        """Give the lease up (when it is still ours)."""
        with self._mutex:
            if not self.lost:
                Lease.objects.filter(name=self.name, holder=self.holder).update(
                    holder="", expires_at=None
                )
            self.lost = True


def lease_acquire(
    name: str, *, ttl: float | None = None, now: dt.datetime | None = None
) -> HeldLease | None:
    """Take the named lease for `ttl` seconds (KEFU_LEASE_SECONDS) if it is free or has lapsed;
    None when another worker holds it. Call it outside a transaction, so it counts at once."""
    ttl = float(ttl or settings.LEASE_SECONDS)
    now = now or timezone.now()
    holder = _holder()
    row, _created = Lease.objects.get_or_create(name=name)
    taken = (
        Lease.objects.filter(name=name)
        .filter(Q(holder="") | Q(expires_at__isnull=True) | Q(expires_at__lte=now))
        .update(holder=holder, acquired_at=now, expires_at=now + dt.timedelta(seconds=ttl))
    )
    if not taken:
        return None
    lapsed = bool(row.holder) and row.expires_at is not None and row.expires_at <= now
    return HeldLease(name, holder, ttl, taken_over_from=row.holder if lapsed else "")


def lease_is_held(name: str, *, now: dt.datetime) -> bool:
    """Whether a worker holds the named lease and has renewed it in time."""
    return Lease.objects.filter(name=name, expires_at__gt=now).exclude(holder="").exists()


class _Heartbeat(threading.Thread):
    """Renews a lease every third of its time while the work runs in another thread."""

    def __init__(self, held: HeldLease) -> None:
        super().__init__(name=f"lease-{held.name}", daemon=True)
        self.held = held
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.held.ttl / 3):
                if not self.held.renew(force=True):
                    break
        except Exception:
            log.exception("Renewing lease %s failed", self.held.name)
        finally:
            connection.close()  # this thread's own connection


@contextlib.contextmanager
def lease(name: str, *, ttl: float | None = None, heartbeat: bool = False) -> Iterator[HeldLease]:
    """Hold the named lease for the block; raise LeaseHeld when another worker holds it.

    With `heartbeat` a thread renews it while the block runs (for work that cannot stop to
    renew, such as a mailbox poll); otherwise the block calls `renew()` between its steps."""
    held = lease_acquire(name, ttl=ttl)
    if held is None:
        raise LeaseHeld(name)
    beat = _Heartbeat(held) if heartbeat else None
    if beat is not None:
        beat.start()
    try:
        yield held
    finally:
        if beat is not None:
            beat.stopped.set()
            beat.join(5)
        held.release()
