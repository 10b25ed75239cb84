"""Background work of core: backups. Tasks take plain values, are idempotent and call one service."""

from pathlib import Path

from django.conf import settings
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from kefu.core.backup import backup_create, backup_prune


@db_task()
def backup_create_task(dest: str | None = None, keep: int | None = None) -> str:
    """Write a backup (and keep only the newest `keep`); returns the folder written."""
    folder = backup_create(Path(dest) if dest else None)
    if keep:
        backup_prune(folder.parent, keep=keep)
    return str(folder)


# KEFU_BACKUP_DAILY_HOUR empty switches the daily backup off.
if settings.BACKUP_DAILY_HOUR.strip():

    @db_periodic_task(crontab(minute="30", hour=settings.BACKUP_DAILY_HOUR.strip()))
    def backup_daily_task() -> str:
        """The daily backup of PRODUCT §2.12, to KEFU_BACKUP_DIR (a second location in production)."""
        return backup_create_task.call_local(str(settings.BACKUP_DIR), settings.BACKUP_KEEP)
