"""Leases: one holder at a time, given up at the end, and taken over once the holder has stopped
renewing it (a killed worker), never before."""

import datetime as dt
import time

import pytest
from django.utils import timezone

from kefu.core.leases import LeaseHeld, lease, lease_acquire, lease_is_held
from kefu.core.models import Lease

pytestmark = pytest.mark.django_db


def test_one_holder_at_a_time_until_it_gives_the_lease_up():
    now = timezone.now()
    first = lease_acquire("job", ttl=60, now=now)
    assert first is not None
    assert lease_acquire("job", ttl=60, now=now + dt.timedelta(seconds=59)) is None
    assert lease_is_held("job", now=now)
    first.release()
    assert not lease_is_held("job", now=now)
    second = lease_acquire("job", ttl=60, now=now)
    assert second is not None
    assert second.taken_over_from == ""  # it was given up, not left behind


def test_a_lease_left_by_a_dead_worker_is_taken_over_once_it_lapses():
    # given: a worker took the lease and died (it neither renews nor releases it)
    now = timezone.now()
    dead = lease_acquire("job", ttl=30, now=now)
    # when / then: refused while it runs, taken over when it has lapsed
    assert lease_acquire("job", ttl=30, now=now + dt.timedelta(seconds=29)) is None
    later = lease_acquire("job", ttl=30, now=now + dt.timedelta(seconds=31))
    assert later is not None
    assert later.taken_over_from == dead.holder
    assert Lease.objects.get(name="job").holder == later.holder
    # the old holder, should it wake up, finds it lost and stops
    assert dead.renew(force=True) is False
    assert dead.lost
    dead.release()  # gives up nothing of the new holder's
    assert Lease.objects.get(name="job").holder == later.holder


def test_renewing_keeps_the_lease_from_lapsing():
    now = timezone.now()
    held = lease_acquire("job", ttl=30, now=now)
    assert held.renew(force=True, now=now + dt.timedelta(seconds=25))
    assert lease_acquire("job", ttl=30, now=now + dt.timedelta(seconds=40)) is None
    assert lease_acquire("job", ttl=30, now=now + dt.timedelta(seconds=56)) is not None


def test_the_block_form_refuses_a_held_lease_and_releases_its_own():
    with lease("poll", ttl=30):
        with pytest.raises(LeaseHeld), lease("poll", ttl=30):
            pass  # pragma: no cover
        assert lease_is_held("poll", now=timezone.now())
    assert not lease_is_held("poll", now=timezone.now())


@pytest.mark.django_db(transaction=True)
def test_a_heartbeat_renews_the_lease_while_the_work_runs():
    """Work that cannot stop to renew (a mailbox poll) gets a thread that does it for it."""
    with lease("poll", ttl=2, heartbeat=True) as held:
        first = Lease.objects.get(name="poll").expires_at
        time.sleep(1.6)
        renewed = Lease.objects.get(name="poll").expires_at
        assert not held.lost
    assert renewed > first
    assert not lease_is_held("poll", now=timezone.now())
