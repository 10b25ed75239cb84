import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from kefu.core.backup import BackupError, backup_restore, backup_verify


class Command(BaseCommand):
    help = (
        "Check a backup against its checksums and replace the database and the uploaded files"
        " with it. Stop Kefu first."
    )

    def add_arguments(self, parser):
        parser.add_argument("src", type=Path, help="a folder written by `kefu backup`")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, src, yes, **options):
        try:
            manifest = backup_verify(src)
            self.stdout.write(
                f"{src}: Kefu {manifest['kefu_version']}, {manifest['database']['engine']},"
                f" taken {manifest['created_at']}: all {len(manifest['files'])} file(s) intact."
            )
            self.stdout.write(
                f"This replaces the database {self._database()} and every file in"
                f" {settings.MEDIA_ROOT}."
            )
            self._confirm(yes)
            backup_restore(src)
        except BackupError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Restored {src}."))
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            self.stdout.write("The backup is older than this Kefu: run `kefu migrate` now.")

    def _database(self) -> str:
        db = connection.settings_dict
        if connection.vendor == "sqlite":
            return str(db["NAME"])
        return f"{db['NAME']} on {db['HOST'] or 'localhost'}"

    def _confirm(self, yes: bool) -> None:
        if yes:
            return
        if not sys.stdin.isatty():
            raise CommandError("Not asking on a non-interactive input: add --yes to restore.")
        if input("Type yes to restore: ").strip().lower() != "yes":
            raise CommandError("Restore cancelled; nothing was changed.")
