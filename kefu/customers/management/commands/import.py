"""`kefu import FILE [--commit] [--user USERNAME]`: the import page's check and import, in a shell.

The work is a background job run in this process (it is listed among the user's jobs, with its
error report); a progress line on the terminal shows rows done of total, the rate and the time
left.
"""

import csv
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from kefu.accounts.models import User
from kefu.core.exceptions import DomainError
from kefu.customers.imports import PHASE_CHECK, PHASE_PREPARE, PHASE_SAVE
from kefu.customers.jobs import customer_import_command_job
from kefu.jobs.models import Job
from kefu.jobs.runs import ProgressReport, job_dir
from kefu.jobs.services import job_run

PHASE_WORDS = {PHASE_CHECK: "checking", PHASE_PREPARE: "preparing", PHASE_SAVE: "saving"}
# The progress line is redrawn at most this often (seconds).
REDRAW = 0.2


class ProgressLine:
    """One line on a terminal, redrawn in place with a carriage return:
    `checking  45,000/100,000 rows  12,500 rows/s  4 s left`."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.drawn = 0.0
        self.width = 0

    def __call__(self, report: ProgressReport) -> None:
        now = time.monotonic()
        finished = report.total is not None and report.done >= report.total
        if now - self.drawn < REDRAW and not finished:
            return
        self.drawn = now
        elapsed = max(now - report.phase_started, 1e-6)
        rate = report.done / elapsed
        words = PHASE_WORDS.get(report.phase, report.phase)
        if report.total:
            line = f"{words:<9} {report.done:>9,}/{report.total:,} rows"
            if rate > 0 and elapsed >= 0.5:
                line += f"  {rate:,.0f} rows/s  {(report.total - report.done) / rate:,.0f} s left"
        else:
            line = f"{words:<9} {report.done:>9,} rows"
        self.stream.write("\r" + line.ljust(self.width))
        self.width = len(line)
        self.stream.flush()

    def end(self) -> None:
        if self.width:
            self.stream.write("\n")
            self.stream.flush()


def _report_rows(path: Path) -> list[list[str]]:
    """The rows of an import's error report (row, column, value, problem)."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    return rows[1:]


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
        parser.add_argument(
            "--progress",
            action="store_true",
            default=None,
            help="Show the progress line even when the output is not a terminal.",
        )
        parser.add_argument(
            "--no-progress", action="store_false", dest="progress", help="No progress line."
        )

    def handle(
        self,
        *args,
        file: str,
        commit: bool,
        user: str | None,
        max_errors: int,
        progress: bool | None,
        **options,
    ):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No file {file!r}.")
        actor = None
        if user:
            try:
                actor = User.objects.get(username=user)
            except User.DoesNotExist:
                raise CommandError(f"No user {user!r}.") from None
        if progress is None:
            progress = sys.stderr.isatty()
        line = ProgressLine(self.stderr) if progress else None
        started = time.monotonic()
        try:
            job = customer_import_command_job(
                actor=actor, path=path, commit=commit, now=timezone.now()
            )
        except DomainError as exc:
            raise CommandError(str(exc.message)) from None
        try:
            job_run(job_id=job.pk, listener=line)
        finally:
            if line is not None:
                line.end()
        job.refresh_from_db()
        elapsed = time.monotonic() - started
        if job.status != Job.Status.SUCCEEDED:
            raise CommandError(job.error_display or job.get_status_display())
        self._report(path, job, elapsed, max_errors, commit)

    def _report(self, path: Path, job: Job, elapsed: float, max_errors: int, commit: bool):
        s = job.summary
        self.stdout.write(
            f"{path.name}: {s['rows']} rows, {s['valid']} valid, "
            f"{s['invalid']} with problems ({elapsed:.1f} s)."
        )
        if s["unknown_columns"]:
            self.stdout.write("Columns not imported: " + ", ".join(s["unknown_columns"]))
        errors = s["errors"]
        wanted = s["error_count"] if max_errors <= 0 else max_errors
        if wanted > len(errors) and job.has_result_file:
            errors = _report_rows(job_dir(job.pk) / job.result_file)
        shown = errors[:wanted]
        for row, label, value, message in shown:
            value = f" [{value}]" if value else ""
            self.stdout.write(f"  row {row}, {label}{value}: {message}")
        hidden = s["error_count"] - len(shown)
        if hidden > 0:
            self.stdout.write(f"  … and {hidden} more problems.")
        if job.has_result_file and hidden > 0:
            self.stdout.write(f"All problems: {job_dir(job.pk) / job.result_file}")
        if s["committed"]:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Imported {s['created']} customers ({s['first_number']} – {s['last_number']})."
                )
            )
        elif commit:
            self.stdout.write("Nothing to import.")
        else:
            self.stdout.write(
                f"Checked only, nothing was saved. Run again with --commit to import "
                f"{s['valid']} rows."
            )
