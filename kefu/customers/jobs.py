"""Customer imports and exports as background jobs (see kefu.jobs).

An import is two jobs, as on the page: the check (read the file, check every row, keep the rows
read and the error report; nothing is saved) and, once the user confirms, the import (check the
kept rows again and write the valid ones in one transaction). `kefu import FILE --commit` runs
one import job that reads the file itself. An export writes the file and audits it in the
worker; its download is audited again by the jobs app.

A run that dies is run again from the start by the worker: a check writes only its own files,
and an import's customers and the job's "done" commit in one transaction, so a second run never
adds a customer twice.
"""

import datetime as dt
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from kefu.accounts.models import User
from kefu.core.exceptions import Conflict
from kefu.core.permissions import require_perm
from kefu.customers.exceptions import ImportFileInvalid
from kefu.customers.exports import (
    PHASE_EXPORT,
    PHASE_PACKAGE,
    customer_export_audit,
    customer_export_write,
)
from kefu.customers.filtersets import CustomerFilterSet
from kefu.customers.imports import (
    PHASE_CHECK,
    PHASE_PREPARE,
    PHASE_SAVE,
    ImportResult,
    customer_import_rows,
    import_error_report_csv,
    import_rows_load,
    import_rows_save,
    open_spreadsheet,
)
from kefu.jobs.exceptions import JobNotFound
from kefu.jobs.kinds import JobKind, Phase, job_kind_register
from kefu.jobs.models import Job
from kefu.jobs.runs import JobResult, JobRun, job_dir
from kefu.jobs.services import job_create, job_files_delete

CHECK, IMPORT, EXPORT = "customer_import_check", "customer_import", "customer_export"
IMPORT_SUFFIXES = (".xlsx", ".csv")
ROWS_FILE = "rows.jsonl"
REPORT_FILE = "errors.csv"
# Row problems kept in a job's summary for its page; the report file has all of them.
PREVIEW_ERRORS = 200
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class ImportNotReady(Conflict):
    code = "import_not_ready"


# --- Starting jobs ------------------------------------------------------------------------------


def customer_import_check_start(
    *, actor: User | None, upload: IO[bytes], filename: str, ip: str | None, now: dt.datetime
) -> Job:
    """Keep an uploaded sheet and have the worker check it (nothing is saved to the archive)."""
    require_perm(actor, "customers.import_customer")
    suffix = _suffix(filename)
    return job_create(
        kind=CHECK,
        actor=actor,
        title=_("Check %(file)s") % {"file": filename},
        params={"file": filename, "input": f"upload{suffix}", "ip": ip},
        files={f"upload{suffix}": upload},
        now=now,
    )


@transaction.atomic
def customer_import_confirm(
    *, actor: User | None, check_job_id: int, ip: str | None, now: dt.datetime
) -> Job:
    """Import the valid rows of a finished check. Confirming twice gives the same import."""
    require_perm(actor, "customers.import_customer")
    checks = Job.objects.select_for_update(of=("self",)).filter(pk=check_job_id, kind=CHECK)
    if actor is not None:
        checks = checks.filter(owner=actor)
    check = checks.first()
    if check is None:
        raise JobNotFound(check_job_id)
    existing = check.followers.first()
    if existing is not None:
        return existing
    if check.status != Job.Status.SUCCEEDED:
        raise ImportNotReady(_("The file has not been checked yet; wait for the check to end."))
    if not check.summary.get("valid"):
        raise ImportNotReady(_("No row of this file can be imported."))
    if check.files_deleted_at or not (job_dir(check.pk) / ROWS_FILE).exists():
        raise ImportNotReady(_("This check is too old to import from; upload the file again."))
    name = check.params.get("file", "")
    return job_create(
        kind=IMPORT,
        actor=actor,
        title=_("Import %(file)s") % {"file": name},
        params={"file": name, "ip": ip},
        source=check,
        now=now,
    )


def customer_import_recheck(
    *, actor: User | None, job_id: int, ip: str | None, now: dt.datetime
) -> Job:
    """Check the same upload again (after an import stopped because the archive changed)."""
    require_perm(actor, "customers.import_customer")
    jobs = Job.objects.filter(pk=job_id, kind__in=(CHECK, IMPORT))
    if actor is not None:
        jobs = jobs.filter(owner=actor)
    job = jobs.select_related("source").first()
    if job is None:
        raise JobNotFound(job_id)
    check = job.source if job.kind == IMPORT else job
    kept = check is not None and check.files_deleted_at is None and check.params.get("input")
    upload = job_dir(check.pk) / check.params["input"] if kept and check else None
    if check is None or upload is None or not upload.is_file():
        raise ImportNotReady(_("The uploaded file is no longer kept; upload it again."))
    with upload.open("rb") as f:
        return customer_import_check_start(
            actor=actor, upload=f, filename=check.params.get("file", upload.name), ip=ip, now=now
        )


def customer_import_command_job(
    *, actor: User | None, path: Path, commit: bool, now: dt.datetime
) -> Job:
    """The job `kefu import` runs in its own process: a check, or with `commit` an import that
    reads the file itself. The file is read where it is."""
    _suffix(path.name)
    title = _("Import %(file)s") if commit else _("Check %(file)s")
    return job_create(
        kind=IMPORT if commit else CHECK,
        actor=actor,
        title=title % {"file": path.name},
        params={"file": path.name, "path": str(path.resolve())},
        in_process=True,
        now=now,
    )


def customer_export_start(
    *,
    actor: User | None,
    queryset_filters: dict[str, Any],
    fmt: str,
    ip: str | None,
    now: dt.datetime,
) -> Job:
    """Have the worker write an export of the customer list with these filters."""
    require_perm(actor, "customers.export_customer")
    fmt = "csv" if fmt == "csv" else "xlsx"
    filters = {
        k: str(v)
        for k, v in queryset_filters.items()
        if k in CustomerFilterSet.base_filters and v not in (None, "")
    }
    return job_create(
        kind=EXPORT,
        actor=actor,
        title=_("Export customers as .%(format)s") % {"format": fmt},
        params={"filters": filters, "format": fmt, "ip": ip},
        now=now,
    )


def _suffix(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix not in IMPORT_SUFFIXES:
        raise ImportFileInvalid(_("Upload an .xlsx or .csv file."))
    return suffix


# --- Running them -------------------------------------------------------------------------------


@contextmanager
def _input(run: JobRun):
    params = run.job.params
    path = Path(params["path"]) if "path" in params else run.path(params.get("input", ""))
    try:
        handle = path.open("rb")
    except OSError:
        raise ImportFileInvalid(_("The file to import can no longer be read.")) from None
    with handle:
        yield handle


def _summary(result: ImportResult) -> dict[str, Any]:
    return {
        "file": result.filename,
        "rows": result.total,
        "valid": result.valid,
        "invalid": result.invalid,
        "created": result.created,
        "committed": result.committed,
        "first_number": result.first_number,
        "last_number": result.last_number,
        "unknown_columns": result.unknown_columns,
        "error_count": len(result.errors),
        "errors": [[e.row, e.label, e.value, e.message] for e in result.errors[:PREVIEW_ERRORS]],
    }


def _report(run: JobRun, result: ImportResult) -> JobResult | None:
    if not result.errors:
        return None
    run.path(REPORT_FILE).write_bytes(import_error_report_csv(result))
    stem = Path(result.filename).stem or "import"
    return JobResult(file=REPORT_FILE, name=f"{stem}-errors.csv", content_type="text/csv")


def _check_run(run: JobRun) -> None:
    job = run.job
    name = job.params.get("file", "")
    # The rows read are kept for the import that confirms the check; `kefu import` reads the
    # file again instead, so its checks keep no copy of the customers' data.
    with _input(run) as f, ExitStack() as files:
        sheet = open_spreadsheet(f, name)
        rows = sheet.rows
        if not job.in_process:
            out = files.enter_context(run.path(ROWS_FILE).open("w", encoding="utf-8"))
            rows = import_rows_save(rows, out)
        result = customer_import_rows(
            actor=run.actor,
            rows=rows,
            commit=False,
            filename=name,
            ip=job.params.get("ip"),
            progress=run.progress,
            expected_rows=sheet.estimated_rows,
        )
    run.complete(summary=_summary(result), result=_report(run, result))


def _import_run(run: JobRun) -> None:
    job = run.job
    name = job.params.get("file", "")

    def done(result: ImportResult) -> None:
        # In the import's transaction: the customers and "done" commit together.
        run.complete(summary=_summary(result), result=_report(run, result))

    def import_rows(rows, expected: int | None) -> ImportResult:
        return customer_import_rows(
            actor=run.actor,
            rows=rows,
            commit=True,
            filename=name,
            ip=job.params.get("ip"),
            progress=run.progress,
            expected_rows=expected,
            before_commit=done,
        )

    if job.source_id is not None:
        source = Job.objects.get(pk=job.source_id)
        try:
            saved = (job_dir(source.pk) / ROWS_FILE).open(encoding="utf-8")
        except OSError:
            raise ImportNotReady(
                _("The rows of the check are no longer kept; upload the file again.")
            ) from None
        with saved:
            result = import_rows(import_rows_load(saved), source.summary.get("rows"))
    else:
        with _input(run) as f:
            sheet = open_spreadsheet(f, name)
            result = import_rows(sheet.rows, sheet.estimated_rows)
    if not run.completed:
        done(result)  # no valid row: nothing was written
    if job.source_id is not None and result.committed:
        # The rows are in the archive now; the copy of the upload need not stay around.
        source = Job.objects.get(pk=job.source_id)
        transaction.on_commit(
            lambda: job_files_delete(source, ROWS_FILE, source.params.get("input", ""))
        )


def _export_run(run: JobRun) -> None:
    job = run.job
    fmt = "csv" if job.params.get("format") == "csv" else "xlsx"
    file = f"customers.{fmt}"
    with run.path(file).open("wb") as out:
        written = customer_export_write(
            actor=run.actor,
            queryset_filters=job.params.get("filters", {}),
            fmt=fmt,
            out=out,
            progress=run.progress,
        )
    stamp = timezone.localtime(job.created_at).strftime("%Y%m%d-%H%M")
    with transaction.atomic():
        customer_export_audit(
            run.actor, written=written, fmt=fmt, ip=job.params.get("ip"), job_id=job.pk
        )
        run.complete(
            summary={
                "rows": written.count,
                "format": fmt,
                "full_contacts": written.full_contacts,
                "filters": written.filters,
            },
            result=JobResult(
                file=file,
                name=f"customers-{stamp}.{fmt}",
                content_type="text/csv" if fmt == "csv" else XLSX_TYPE,
            ),
        )


# --- Showing them -------------------------------------------------------------------------------


def _errors(job: Job) -> list[dict[str, Any]]:
    return [
        {"row": row, "label": label, "value": value, "message": message}
        for row, label, value, message in job.summary.get("errors", [])
    ]


def _import_context(job: Job, user: User) -> dict[str, Any]:
    summary = job.summary
    errors = _errors(job)
    follower = job.followers.first() if job.kind == CHECK else None
    return {
        "summary": summary,
        "errors": errors,
        "hidden_errors": max(summary.get("error_count", 0) - len(errors), 0),
        "follower": follower,
        "can_confirm": (
            job.kind == CHECK
            and job.status == Job.Status.SUCCEEDED
            and follower is None
            and summary.get("valid", 0) > 0
            and job.files_deleted_at is None
            and not job.in_process
        ),
        # A failure that reading the file once more may get past (not a file that cannot be read).
        "can_recheck": (
            job.status in (Job.Status.FAILED, Job.Status.CANCELLED)
            and not job.in_process
            and job.error_code != ImportFileInvalid.code
        ),
    }


def _export_context(job: Job, user: User) -> dict[str, Any]:
    filters = job.summary.get("filters") or job.params.get("filters", {})
    return {"summary": job.summary, "filters": customer_filter_words(filters)}


def customer_filter_words(filters: dict[str, str]) -> list[tuple[str, str]]:
    """The export's filters as (label, value) in words, as the list page shows them."""
    form = CustomerFilterSet(filters).form
    words = []
    for name, raw in filters.items():
        field = form.fields.get(name)
        if field is None:
            continue
        try:
            value = field.clean(raw)
        except ValidationError:
            value = raw
        if hasattr(field, "choices") and not hasattr(value, "pk"):
            value = dict(field.choices).get(raw, raw)
        words.append((str(field.label), str(value)))
    return words


def _import_outcome(job: Job) -> str:
    s = job.summary
    if job.kind == CHECK:
        return _("%(rows)s rows checked, %(valid)s valid, %(invalid)s with problems") % {
            "rows": f"{s.get('rows', 0):,}",
            "valid": f"{s.get('valid', 0):,}",
            "invalid": f"{s.get('invalid', 0):,}",
        }
    return _("%(created)s customers imported, %(invalid)s rows left out") % {
        "created": f"{s.get('created', 0):,}",
        "invalid": f"{s.get('invalid', 0):,}",
    }


def _export_outcome(job: Job) -> str:
    return _("%(rows)s customers exported") % {"rows": f"{job.summary.get('rows', 0):,}"}


job_kind_register(
    JobKind(
        name=CHECK,
        label=gettext_lazy("Check a customer import"),
        permission="customers.import_customer",
        run=_check_run,
        phases=(Phase(PHASE_CHECK, gettext_lazy("Reading and checking rows")),),
        template="customers/job_customer_import.html",
        context=_import_context,
        outcome=_import_outcome,
        own_download=True,
    )
)
job_kind_register(
    JobKind(
        name=IMPORT,
        label=gettext_lazy("Customer import"),
        permission="customers.import_customer",
        run=_import_run,
        # Shares of the time of a 100,000-row import (bench/bench_import.py).
        phases=(
            Phase(PHASE_CHECK, gettext_lazy("Checking rows again"), 0.3),
            Phase(PHASE_PREPARE, gettext_lazy("Preparing customers"), 0.45),
            Phase(PHASE_SAVE, gettext_lazy("Saving customers"), 0.25),
        ),
        template="customers/job_customer_import.html",
        context=_import_context,
        outcome=_import_outcome,
        own_download=True,
    )
)
job_kind_register(
    JobKind(
        name=EXPORT,
        label=gettext_lazy("Customer export"),
        permission="customers.export_customer",
        run=_export_run,
        phases=(
            Phase(PHASE_EXPORT, gettext_lazy("Writing customers"), 0.85),
            Phase(PHASE_PACKAGE, gettext_lazy("Packing the workbook"), 0.15),
        ),
        template="customers/job_customer_export.html",
        context=_export_context,
        outcome=_export_outcome,
    )
)
