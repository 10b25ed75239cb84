"""The complaint summary workbook (客诉周报 / 月报) as a background job (see kefu.jobs): the
manager asks for it on the summary page and downloads it from the job's page."""

import datetime as dt
from pathlib import Path

from django.db import transaction
from django.utils.translation import gettext_lazy

from kefu.accounts.models import User
from kefu.core.permissions import require_perm
from kefu.jobs.kinds import JobKind, Phase, job_kind_register
from kefu.jobs.models import Job
from kefu.jobs.runs import JobResult, JobRun
from kefu.jobs.services import job_create
from kefu.tickets import reports

COMPLAINT_EXPORT = "complaint_summary_export"
PHASE_BUILD = "building"
RESULT_FILE = "summary.xlsx"


def complaint_summary_export_start(
    *, actor: User | None, period: str, start: dt.date, ip: str | None, now: dt.datetime
) -> Job:
    """Have the worker build the summary workbook of the period that holds `start`."""
    require_perm(actor, "tickets.view_ticket_report")
    chosen = reports.period_of(period, start)
    return job_create(
        kind=COMPLAINT_EXPORT,
        actor=actor,
        title=Path(reports.complaint_summary_filename(chosen)).stem,
        params={"period": chosen.kind, "start": chosen.start.isoformat(), "ip": ip},
        now=now,
    )


def _export_run(run: JobRun) -> None:
    job = run.job
    run.progress(PHASE_BUILD, 0, None)
    with transaction.atomic():
        # The figures are as of when the workbook was asked for.
        content, filename = reports.complaint_summary_export(
            actor=run.actor,
            period=job.params["period"],
            start=dt.date.fromisoformat(job.params["start"]),
            now=job.created_at,
            ip=job.params.get("ip"),
        )
        run.path(RESULT_FILE).write_bytes(content)
        run.complete(
            summary={"period": job.params["period"], "start": job.params["start"]},
            result=JobResult(file=RESULT_FILE, name=filename, content_type=reports.XLSX_TYPE),
        )


job_kind_register(
    JobKind(
        name=COMPLAINT_EXPORT,
        label=gettext_lazy("Complaint summary workbook"),
        permission="tickets.view_ticket_report",
        run=_export_run,
        phases=(Phase(PHASE_BUILD, gettext_lazy("Building the workbook")),),
    )
)
