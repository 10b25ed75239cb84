"""`kefu import FILE [--commit] [--user USERNAME]`: the import page's check and import, in a shell."""

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from kefu.accounts.models import User
from kefu.core.exceptions import DomainError
from kefu.customers.imports import customer_import_rows, read_spreadsheet


class Command(BaseCommand):
    help = (
        "Check a spreadsheet of customers (.xlsx or .csv) and list the rows with problems; "
        "with --commit, import the valid rows."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="An .xlsx or .csv file with a header row.")
        parser.add_argument(
            "--commit", action="store_true", help="Import the valid rows (default: only check)."
        )
        parser.add_argument(
            "--user",
            help="Import as this user, with their permissions (default: the system).",
        )
        parser.add_argument(
            "--max-errors",
            type=int,
            default=50,
            help="How many row problems to print (default 50; 0 prints all).",
        )

    def handle(self, *args, file: str, commit: bool, user: str | None, max_errors: int, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No file {file!r}.")
        actor = None
        if user:
            try:
                actor = User.objects.get(username=user)
            except User.DoesNotExist:
                raise CommandError(f"No user {user!r}.") from None
        started = time.monotonic()
        try:
            with path.open("rb") as f:
                result = customer_import_rows(
                    actor=actor,
                    rows=read_spreadsheet(f, path.name),
                    commit=commit,
                    filename=path.name,
                )
        except DomainError as exc:
            raise CommandError(str(exc.message)) from None
        elapsed = time.monotonic() - started

        self.stdout.write(
            f"{path.name}: {result.total} rows, {result.valid} valid, "
            f"{result.invalid} with problems ({elapsed:.1f} s)."
        )
        if result.unknown_columns:
            self.stdout.write("Columns not imported: " + ", ".join(result.unknown_columns))
        shown = result.errors if max_errors <= 0 else result.errors[:max_errors]
        for e in shown:
            value = f" [{e.value}]" if e.value else ""
            self.stdout.write(f"  row {e.row}, {e.label}{value}: {e.message}")
        if len(shown) < len(result.errors):
            self.stdout.write(f"  … and {len(result.errors) - len(shown)} more problems.")
        if result.committed:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Imported {result.created} customers "
                    f"({result.first_number} – {result.last_number})."
                )
            )
        elif commit:
            self.stdout.write("Nothing to import.")
        else:
            self.stdout.write(
                f"Checked only, nothing was saved. Run again with --commit to import "
                f"{result.valid} rows."
            )
