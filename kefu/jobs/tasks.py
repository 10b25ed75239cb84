"""Background work of jobs: running one, recovering those whose worker died, pruning files."""

import logging
import threading

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task, on_startup

from kefu.jobs.models import Job
from kefu.jobs.services import jobs_files_prune, jobs_recover

logger = logging.getLogger(__name__)

# Jobs run at once in one worker process: the other threads stay free for SLA scans, reminders
# and sends while a long import runs.
_slots = threading.BoundedSemaphore(max(settings.JOB_CONCURRENCY, 1))
# A job waiting for a slot asks again after this many seconds.
RETRY_DELAY = 3


@db_task()
def job_run_task(job_id: int) -> str:
    """Run one job (idempotent: a job that is not waiting is left alone)."""
    from kefu.jobs.services import job_run

    if HUEY.immediate:
        return job_run(job_id=job_id)
    if not _slots.acquire(blocking=False):
        # Still in hand: the recovery need not hand the job to the worker again.
        Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(enqueued_at=timezone.now())
        job_run_task.schedule((job_id,), delay=RETRY_DELAY)
        return "waiting for a slot"
    try:
        return job_run(job_id=job_id)
    finally:
        _slots.release()


@db_periodic_task(crontab(minute="*"))
def jobs_recover_task() -> dict[str, int]:
    return jobs_recover(now=timezone.now())


@db_periodic_task(crontab(minute="40", hour="3"))
def jobs_files_prune_task() -> int:
    return jobs_files_prune(now=timezone.now())


@on_startup()
def jobs_recover_at_startup() -> None:
    """A restarted worker picks up at once the jobs its dead predecessor held."""
    try:
        counts = jobs_recover(now=timezone.now())
        if any(counts.values()):
            logger.warning("Jobs recovered at start-up: %s", counts)
    except Exception:
        logger.exception("Recovering jobs at start-up failed.")
    finally:
        close_old_connections()
