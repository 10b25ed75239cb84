"""Background work of bulk messages: queueing the audience, dispatching each gateway at its rate,
picking up what a stopped worker left, scheduled campaigns, and the daily birthday and holiday
greetings.

No task here holds a lock in the task store: a worker killed in the middle keeps nothing from
the next one. The dispatcher of a gateway and the queueing of a campaign hold leases in the
database that lapse (KEFU_LEASE_SECONDS), and `campaigns_resume_task` restarts what has no live
worker on it: every minute, and a lease's time after a worker starts.
"""

import threading

from django.conf import settings
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task

from kefu.campaigns.models import Campaign
from kefu.campaigns.services import (
    birthday_greetings_run,
    campaign_queue,
    campaigns_dispatch,
    campaigns_stalled,
    holiday_greetings_run,
    queue_lease_name,
)
from kefu.core.leases import LeaseHeld, lease


@db_task()
def campaign_queue_task(campaign_id: int) -> int:
    """Write a campaign's recipients; one worker at a time per campaign."""
    try:
        with lease(queue_lease_name(campaign_id), heartbeat=True):
            return campaign_queue(campaign_id=campaign_id)
    except LeaseHeld:
        return 0  # another worker is writing them


@db_task()
def campaign_gateway_dispatch_task(gateway: str) -> dict:
    """Send for up to a minute, then hand over to a fresh task (at the end of the quiet hours
    when only they hold messages back). When another worker's dispatcher holds the gateway, it
    sends this campaign's messages too."""
    result = campaigns_dispatch(gateway=gateway)
    if not HUEY.immediate:
        if result["more"]:
            campaign_gateway_dispatch_task(gateway)
        elif result["wait_until"] is not None:
            campaign_gateway_dispatch_task.schedule((gateway,), eta=result["wait_until"])
    return result


@db_task()
def campaign_dispatch_task(campaign_id: int) -> dict:
    """Dispatch the gateway of a campaign (tasks queued before dispatching went per gateway)."""
    gateway = (
        Campaign.objects.filter(pk=campaign_id).values_list("template__gateway", flat=True).first()
    )
    return campaign_gateway_dispatch_task.call_local(gateway) if gateway else {}


@db_periodic_task(crontab(minute="*"))
def campaigns_resume_task() -> dict:
    """Restart the dispatch of gateways and the queueing of campaigns no live worker is on."""
    stalled = campaigns_stalled(now=timezone.now())
    for gateway in stalled["gateways"]:
        campaign_gateway_dispatch_task(gateway)
    for campaign_id in stalled["queued"]:
        campaign_queue_task(campaign_id)
    return stalled


_resume_planned = threading.Lock()


@HUEY.on_startup()
def campaigns_resume_after_start() -> None:
    """A worker that starts (after a crash, say) looks for stalled campaigns once the leases of
    a dead worker have lapsed, instead of waiting for the next minute's sweep."""
    if _resume_planned.acquire(blocking=False):  # once per process, not per worker thread
        campaigns_resume_task.schedule(delay=settings.LEASE_SECONDS + 1)


@db_periodic_task(crontab(minute="*"))
def campaigns_scheduled_task() -> int:
    """Queue the scheduled campaigns whose time has come."""
    now = timezone.now()
    due = Campaign.objects.filter(status=Campaign.Status.SCHEDULED, scheduled_at__lte=now)
    started = 0
    for campaign_id in due.values_list("pk", flat=True):
        if Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SCHEDULED).update(
            status=Campaign.Status.QUEUED, queued_at=now
        ):
            campaign_queue_task(campaign_id)
            started += 1
    return started


@db_periodic_task(crontab(minute="0", hour=str(settings.GREETING_HOUR)))
def greetings_daily_task() -> list[int]:
    now = timezone.now()
    done = [birthday_greetings_run(now=now), holiday_greetings_run(now=now)]
    return [c.pk for c in done if c is not None]
