"""Background work of bulk messages: queueing the audience, dispatching at the gateway's rate,
scheduled campaigns, and the daily birthday and holiday greetings."""

from django.conf import settings
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task

from kefu.campaigns.models import Campaign
from kefu.campaigns.services import (
    birthday_greetings_run,
    campaign_dispatch,
    campaign_queue,
    holiday_greetings_run,
)


@db_task()
def campaign_queue_task(campaign_id: int) -> int:
    return campaign_queue(campaign_id=campaign_id)


@db_task()
def campaign_dispatch_task(campaign_id: int) -> dict[str, int]:
    """Send for up to a minute at the gateway's rate, then hand over to a fresh task."""
    campaign = Campaign.objects.select_related("template").filter(pk=campaign_id).first()
    if campaign is None:
        return {}
    # One dispatcher per gateway at a time, so the rate limit holds across worker threads.
    with HUEY.lock_task(f"campaign-gateway-{campaign.template.gateway}"):
        counts = campaign_dispatch(campaign_id=campaign_id)
    if counts.get("remaining") and not HUEY.immediate:
        campaign_dispatch_task.schedule((campaign_id,), delay=1)
    return counts


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
