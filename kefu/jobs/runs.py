"""The running side of a job: who holds it (the claim) and what a kind's run function reports.

A claim names the process that holds a job: `host:pid:process-start:nonce`. The nonce makes it
a fencing token: progress and the final "done" are written only `WHERE claimed_by = <claim>`,
so a run whose job was handed to another worker (its own worker looked dead) can write neither,
and its transaction rolls back. The host, pid and process start time let a worker tell at once
whether the process of a claim on its own machine is still alive.
"""

import datetime as dt
import json
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from kefu.jobs.exceptions import JobCancelled, JobLost, JobOwnerGone
from kefu.jobs.kinds import JobKind
from kefu.jobs.models import Job

# How often progress is written: to the job row, and (inside the run's own transaction, where
# the row cannot be seen by others) to the progress file.
DB_FLUSH_SECONDS = 1.0
FILE_FLUSH_SECONDS = 0.5
PROGRESS_FILE = "progress.json"
# In a job's params: started by the system (a command without --user), not by a person.
SYSTEM_PARAM = "by_system"


def jobs_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "jobs"


def job_dir(job_id: int) -> Path:
    """The folder of a job's files (upload, rows read, result); created on first use."""
    folder = jobs_root() / str(int(job_id))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --- Claims -------------------------------------------------------------------------------------


@cache
def _host() -> str:
    return socket.gethostname()[:60]


def _process_start(pid: int) -> str:
    """The start time of a process in clock ticks since boot (Linux), or "" when not known."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19] if len(fields) > 19 else ""


def claim_token() -> str:
    pid = os.getpid()
    return f"{_host()}:{pid}:{_process_start(pid)}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Claim:
    host: str
    pid: int
    started: str

    @classmethod
    def parse(cls, token: str) -> "Claim | None":
        parts = token.split(":")
        if len(parts) != 4 or not parts[1].isdigit():
            return None
        return cls(host=parts[0], pid=int(parts[1]), started=parts[2])

    @property
    def is_local(self) -> bool:
        return self.host == _host()

    def process_alive(self) -> bool:
        """Whether the claiming process still runs (only answerable on its own machine)."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except FileNotFoundError:
            return False
        except OSError:
            return self._signal_alive()
        rest = stat.rsplit(")", 1)[1].split()
        state, started = rest[0], rest[19] if len(rest) > 19 else ""
        if state in ("Z", "X"):
            return False  # a zombie: dead, not yet reaped by its parent
        # The pid was reused by another process (a restarted container starts at the same pid).
        return not (self.started and started != self.started)

    def _signal_alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


# --- Progress file ------------------------------------------------------------------------------


def progress_file_read(job_id: int) -> dict[str, Any] | None:
    path = jobs_root() / str(int(job_id)) / PROGRESS_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _progress_file_write(job_id: int, data: dict[str, Any]) -> None:
    folder = job_dir(job_id)
    tmp = folder / f".{PROGRESS_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(data))
    os.replace(tmp, folder / PROGRESS_FILE)


# --- The run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobResult:
    """The file a job produced, in its folder, and how it is offered for download."""

    file: str
    name: str
    content_type: str


@dataclass(frozen=True)
class ProgressReport:
    """What a run reported last; passed to a listener (`kefu import` prints it)."""

    phase: str
    done: int
    total: int | None
    phase_started: float  # time.monotonic()


class JobRun:
    """What a kind's run function gets: the job, a place for files, and progress reporting.

    The run function calls `progress(phase, done, total)` as it goes (often: it is throttled)
    and `complete(summary=..., result=...)` once at the end. A run that writes to the database
    calls `complete` inside its own transaction, so the work and the record of it being done
    commit together or not at all.
    """

    def __init__(
        self,
        job: Job,
        kind: JobKind,
        claim: str,
        listener: Callable[[ProgressReport], None] | None = None,
    ) -> None:
        self.job = job
        self.kind = kind
        self.claim = claim
        self.listener = listener
        self.completed = False
        self.phase = ""
        self.done = 0
        self.total: int | None = None
        self._phase_started = time.monotonic()
        self._phase_started_at: dt.datetime | None = None
        self._db_flushed = 0.0
        self._file_flushed = 0.0
        self._phase_flushed = True
        # Transactions the run did not open (the test's own) do not hide the job row.
        self._base_depth = len(connection.atomic_blocks)

    @property
    def actor(self) -> Any:
        """Whom the work is done for (their permissions apply); None: the system."""
        if self.job.owner_id is None and not self.job.params.get(SYSTEM_PARAM):
            raise JobOwnerGone()
        return self.job.owner

    @property
    def folder(self) -> Path:
        return job_dir(self.job.pk)

    def path(self, name: str) -> Path:
        return self.folder / name

    def progress(self, phase: str, done: int, total: int | None = None) -> None:
        """Report rows done of total in a phase; raises JobCancelled when the owner cancelled."""
        now = time.monotonic()
        if phase != self.phase:
            self.phase, self._phase_started = phase, now
            self._phase_started_at = timezone.now()
            self._phase_flushed = False
        self.done, self.total = done, total
        if total is not None and done >= total:
            self._phase_flushed = False  # the end of a step is always told
        if self.listener is not None:
            self.listener(ProgressReport(phase, done, total, self._phase_started))
        if len(connection.atomic_blocks) > self._base_depth:
            # Inside the run's own transaction: the row's progress would not be seen by anyone
            # until the commit. The progress file is (and tells the worker is alive).
            if not self._phase_flushed or now - self._file_flushed >= FILE_FLUSH_SECONDS:
                self._file_flushed = now
                self._phase_flushed = True
                self._flush_file()
        elif not self._phase_flushed or now - self._db_flushed >= DB_FLUSH_SECONDS:
            self._db_flushed = now
            self._phase_flushed = True
            self._flush_db()

    def _flush_db(self) -> None:
        now = timezone.now()
        values: dict[str, Any] = {
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "heartbeat_at": now,
        }
        if self._phase_started_at is not None:
            values["phase_started_at"] = self._phase_started_at
        held = Job.objects.filter(pk=self.job.pk, status=Job.Status.RUNNING, claimed_by=self.claim)
        if held.filter(cancel_requested_at__isnull=True).update(**values):
            return
        if held.exists():
            raise JobCancelled()
        raise JobLost()

    def _flush_file(self) -> None:
        started = self._phase_started_at or timezone.now()
        _progress_file_write(
            self.job.pk,
            {
                "claim": self.claim,
                "phase": self.phase,
                "done": self.done,
                "total": self.total,
                "phase_started_at": started.isoformat(),
                "at": timezone.now().isoformat(),
            },
        )

    def complete(self, *, summary: dict[str, Any], result: JobResult | None = None) -> None:
        """Record the job as done, with its summary and result file."""
        from kefu.jobs.services import job_finished_notify

        now = timezone.now()
        values: dict[str, Any] = {
            "status": Job.Status.SUCCEEDED,
            "summary": summary,
            "finished_at": now,
            "heartbeat_at": now,
            "phase": "",
            "error_code": "",
            "error_message": "",
        }
        if self.total is not None:
            values.update(done=self.total, total=self.total)
        if result is not None:
            values.update(
                result_file=result.file,
                result_name=result.name[:200],
                result_type=result.content_type,
                result_size=self.path(result.file).stat().st_size,
            )
        with transaction.atomic():
            held = Job.objects.filter(
                pk=self.job.pk, status=Job.Status.RUNNING, claimed_by=self.claim
            )
            if not held.update(**values):
                raise JobLost()
            for name, value in values.items():
                setattr(self.job, name, value)
            job_finished_notify(self.job, now=now)
        self.completed = True
