"""Spreadsheet import and export pages.

Import: upload → dry run (counts and the row errors) → "Import N valid rows", which imports the
same upload with every check run again, so rows that became duplicates in between are caught.
The upload is kept, as the rows read from it (parsing a big .xlsx twice would double the wait),
under MEDIA_ROOT/imports with a random name that only the uploader's session knows.
Export: the customer list's filters as an .xlsx (or .csv) download.
"""

import datetime as dt
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from kefu.core.exceptions import DomainError, NotFound, ValidationFailed
from kefu.core.permissions import require_perm
from kefu.customers.exports import (
    customer_export_csv,
    customer_export_xlsx,
    import_template_xlsx,
)
from kefu.customers.forms import CustomerImportForm
from kefu.customers.imports import (
    COLUMNS,
    ImportResult,
    customer_import_rows,
    import_error_report_csv,
    import_rows_load,
    import_rows_save,
    read_spreadsheet,
)

TEMPLATE = "customers/customer_import.html"
SESSION_KEY = "customer_imports"
# Errors shown on the page; the downloadable report has all of them.
PREVIEW_ERRORS = 200
# Uploads not confirmed within a day are deleted; a session remembers its last few.
UPLOAD_LIFETIME = dt.timedelta(days=1)
PENDING_PER_SESSION = 5
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@login_required
def customer_import(request: HttpRequest) -> HttpResponse:
    require_perm(request.user, "customers.import_customer")
    if request.method == "POST":
        if "token" in request.POST:
            return _import_commit(request, request.POST["token"])
        return _import_preview(request)
    if "report" in request.GET:
        return _import_report(request, request.GET["report"])
    if "template" in request.GET:
        response = HttpResponse(import_template_xlsx(), content_type=XLSX_TYPE)
        response["Content-Disposition"] = 'attachment; filename="customer-import-template.xlsx"'
        return response
    return _render(request, form=CustomerImportForm())


def _import_preview(request: HttpRequest) -> HttpResponse:
    form = CustomerImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render(request, form=form)
    upload = form.cleaned_data["file"]
    token = secrets.token_urlsafe(16)
    stored = _upload_dir() / f"{token}.jsonl"
    try:
        with stored.open("w", encoding="utf-8") as out:
            rows = import_rows_save(read_spreadsheet(upload, upload.name), out)
            result = customer_import_rows(
                actor=request.user,
                rows=rows,
                commit=False,
                filename=upload.name,
                ip=request.META.get("REMOTE_ADDR"),
            )
    except DomainError as exc:
        stored.unlink(missing_ok=True)
        form.add_error("file", exc.message)
        return _render(request, form=form)
    if result.errors:
        _report_path(token).write_bytes(import_error_report_csv(result))
    pending = request.session.get(SESSION_KEY, {})
    pending[token] = {"file": stored.name, "name": upload.name, "user": request.user.pk}
    for old in list(pending)[:-PENDING_PER_SESSION]:
        _discard(pending.pop(old), old)
    request.session[SESSION_KEY] = pending
    return _render(request, result=result, token=token)


def _import_commit(request: HttpRequest, token: str) -> HttpResponse:
    entry = _pending(request, token)
    stored = _upload_dir() / entry["file"]
    if not stored.exists():
        _forget(request, token)
        problem = _("That upload has expired; upload the file again.")
        return _render(request, form=CustomerImportForm(), problem=problem)
    try:
        with stored.open(encoding="utf-8") as saved:
            result = customer_import_rows(
                actor=request.user,
                rows=import_rows_load(saved),
                commit=True,
                filename=entry["name"],
                ip=request.META.get("REMOTE_ADDR"),
            )
    except DomainError as exc:
        # Nothing was written and the upload stays, so the user can try again.
        return _render(request, form=CustomerImportForm(), problem=str(exc.message))
    _forget(request, token)
    return _render(request, result=result)


def _import_report(request: HttpRequest, token: str) -> FileResponse:
    entry = _pending(request, token)
    path = _report_path(token)
    if not path.exists():
        raise NotFound(_("There is no error report for this upload."))
    filename = f"{Path(entry['name']).stem}-errors.csv"
    return FileResponse(
        path.open("rb"), as_attachment=True, filename=filename, content_type="text/csv"
    )


def _render(
    request: HttpRequest,
    *,
    form: CustomerImportForm | None = None,
    result: ImportResult | None = None,
    token: str = "",
    problem: str = "",
) -> HttpResponse:
    context: dict[str, Any] = {
        "form": form,
        "problem": problem,
        "result": result,
        "token": token,
        "errors": result.errors[:PREVIEW_ERRORS] if result else [],
        "hidden_errors": max(len(result.errors) - PREVIEW_ERRORS, 0) if result else 0,
        "has_report": bool(token and result and result.errors),
        "columns": COLUMNS,
        "max_mb": settings.IMPORT_MAX_BYTES // (1024 * 1024),
        "active_nav": "import",
    }
    template = TEMPLATE + ("#import-panel" if request.htmx and not request.htmx.boosted else "")
    return render(request, template, context)


def _pending(request: HttpRequest, token: str) -> dict[str, Any]:
    """The upload behind a token; only the session (and user) that uploaded it may use it."""
    entry = request.session.get(SESSION_KEY, {}).get(token)
    if entry is None or entry.get("user") != request.user.pk:
        raise NotFound(_("This upload does not exist or belongs to someone else."))
    return entry


def _forget(request: HttpRequest, token: str) -> None:
    pending = request.session.get(SESSION_KEY, {})
    entry = pending.pop(token, None)
    if entry is not None:
        _discard(entry, token)
        request.session[SESSION_KEY] = pending


def _discard(entry: dict[str, Any], token: str) -> None:
    (_upload_dir() / entry["file"]).unlink(missing_ok=True)
    _report_path(token).unlink(missing_ok=True)


def _upload_dir() -> Path:
    directory = Path(settings.MEDIA_ROOT) / "imports"
    directory.mkdir(parents=True, exist_ok=True)
    # Uploads nobody confirmed: removed after a day.
    cutoff = (timezone.now() - UPLOAD_LIFETIME).timestamp()
    for path in directory.iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            continue
    return directory


def _report_path(token: str) -> Path:
    return Path(settings.MEDIA_ROOT) / "imports" / f"{token}.errors.csv"


@login_required
@require_GET
def customer_export(request: HttpRequest) -> HttpResponse:
    """The customer list's filters (same query parameters) as a download; audited."""
    fmt = "csv" if request.GET.get("format") == "csv" else "xlsx"
    export = customer_export_csv if fmt == "csv" else customer_export_xlsx
    try:
        content, _count = export(
            actor=request.user,
            queryset_filters=request.GET.dict(),
            ip=request.META.get("REMOTE_ADDR"),
        )
    except ValidationFailed:
        messages.error(request, _("The filters are not valid, so nothing was exported."))
        return redirect(f"{reverse('customers:customer_list')}?{request.GET.urlencode()}")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = HttpResponse(content, content_type="text/csv" if fmt == "csv" else XLSX_TYPE)
    response["Content-Disposition"] = f'attachment; filename="customers-{stamp}.{fmt}"'
    return response
