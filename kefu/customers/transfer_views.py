"""Spreadsheet import and export pages; the work itself runs in the worker as jobs.

Import: upload → a check job (counts and the row errors; nothing saved) → "Import N valid rows"
→ an import job, which imports the rows the check read, with every check run again, so rows that
became duplicates in between are caught. Both show their progress on the job's page.
Export: the customer list's filters → a confirmation with the count → an export job, whose file
is downloaded from the job's page (the export and every download are audited).
"""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from kefu.core.exceptions import DomainError, ValidationFailed
from kefu.core.permissions import require_perm
from kefu.customers.exports import customer_export_preview, import_template_xlsx
from kefu.customers.forms import CustomerImportForm
from kefu.customers.imports import COLUMNS
from kefu.customers.jobs import (
    CHECK,
    IMPORT,
    XLSX_TYPE,
    customer_export_start,
    customer_filter_words,
    customer_import_check_start,
    customer_import_confirm,
    customer_import_recheck,
)
from kefu.jobs.selectors import job_list_visible_to
from kefu.jobs.views import job_started_response

TEMPLATE = "customers/customer_import.html"
# Recent imports listed under the upload form.
RECENT_IMPORTS = 5


@login_required
def customer_import(request: HttpRequest) -> HttpResponse:
    require_perm(request.user, "customers.import_customer")
    if request.method == "POST":
        return _import_upload(request)
    if "template" in request.GET:
        response = HttpResponse(import_template_xlsx(), content_type=XLSX_TYPE)
        response["Content-Disposition"] = 'attachment; filename="customer-import-template.xlsx"'
        return response
    return _render(request, form=CustomerImportForm())


def _import_upload(request: HttpRequest) -> HttpResponse:
    form = CustomerImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render(request, form=form)
    upload = form.cleaned_data["file"]
    try:
        job = customer_import_check_start(
            actor=request.user,
            upload=upload,
            filename=upload.name,
            ip=request.META.get("REMOTE_ADDR"),
            now=timezone.now(),
        )
    except DomainError as exc:
        if exc.is_access_error:
            raise
        form.add_error("file", exc.message)
        return _render(request, form=form)
    return job_started_response(request, job)


@login_required
@require_POST
def customer_import_confirm_view(request: HttpRequest, job_id: int) -> HttpResponse:
    """ "Import N valid rows" on a finished check: start (or find) its import job."""
    return _job_action(request, job_id, customer_import_confirm, "check_job_id")


@login_required
@require_POST
def customer_import_recheck_view(request: HttpRequest, job_id: int) -> HttpResponse:
    """Check the same upload again (after an import stopped because the archive changed)."""
    return _job_action(request, job_id, customer_import_recheck, "job_id")


def _job_action(request: HttpRequest, job_id: int, service, argument: str) -> HttpResponse:
    require_perm(request.user, "customers.import_customer")
    try:
        job = service(
            actor=request.user,
            **{argument: job_id},
            ip=request.META.get("REMOTE_ADDR"),
            now=timezone.now(),
        )
    except DomainError as exc:
        if exc.is_access_error:
            raise
        messages.error(request, exc.message)
        return redirect("jobs:job_detail", pk=job_id)
    return job_started_response(request, job)


def _render(request: HttpRequest, *, form: CustomerImportForm) -> HttpResponse:
    recent = job_list_visible_to(user=request.user).filter(kind__in=(CHECK, IMPORT))
    context: dict[str, Any] = {
        "form": form,
        "columns": COLUMNS,
        "max_mb": settings.IMPORT_MAX_BYTES // (1024 * 1024),
        "recent_jobs": list(recent[:RECENT_IMPORTS]),
        "active_nav": "import",
    }
    template = TEMPLATE + ("#import-panel" if request.htmx and not request.htmx.boosted else "")
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "POST"])
def customer_export(request: HttpRequest) -> HttpResponse:
    """GET: what an export of the list's filters (same query parameters) would hold, to
    confirm; POST: start it as a job and go to its page."""
    require_perm(request.user, "customers.export_customer")
    data = request.POST if request.method == "POST" else request.GET
    filters = {k: v for k, v in data.items() if k not in ("format", "csrfmiddlewaretoken")}
    fmt = "csv" if data.get("format") == "csv" else "xlsx"
    try:
        count, applied, full = customer_export_preview(actor=request.user, queryset_filters=filters)
    except ValidationFailed:
        messages.error(request, _("The filters are not valid, so nothing was exported."))
        return redirect(f"{reverse('customers:customer_list')}?{urlencode(filters)}")
    if request.method == "POST":
        job = customer_export_start(
            actor=request.user,
            queryset_filters=applied,
            fmt=fmt,
            ip=request.META.get("REMOTE_ADDR"),
            now=timezone.now(),
        )
        return job_started_response(request, job)
    context = {
        "count": count,
        "filters": applied,
        "filter_words": customer_filter_words(applied),
        "full_contacts": full,
        "format": fmt,
        "list_query": urlencode(applied),
        "active_nav": "customers",
    }
    return render(request, "customers/customer_export.html", context)
