from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from kefu.core.backup import BackupError, backup_create, backup_prune


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Write a consistent backup of the database and the uploaded files while Kefu runs;"
        " prints the folder written."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "dest", nargs="?", type=Path, help="folder to write into (default: KEFU_BACKUP_DIR)"
        )
        parser.add_argument(
            "--keep",
            type=positive_int,
            metavar="N",
            help="then delete all but the newest N backups in that folder",
        )

    def handle(self, *args, dest, keep, **options):
        try:
            path = backup_create(dest)
            removed = backup_prune(path.parent, keep=keep) if keep else []
        except BackupError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(str(path))
        for old in removed:
            self.stdout.write(f"removed {old}")
