"""Job pages: my jobs, one job with its progress bar (polled by HTMX), download, cancel."""

import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from kefu.core.exceptions import DomainError
from kefu.core.permissions import has_perm
from kefu.jobs import services
from kefu.jobs.kinds import job_kind_get
from kefu.jobs.models import Job
from kefu.jobs.selectors import job_get_for_user, job_list_visible_to, job_progress

PAGE_SIZE = 25
# How often an open page asks for news of a job, in seconds.
POLL_DETAIL = 1
POLL_LIST = 3
WAIT_NOTICE = dt.timedelta(seconds=30)


def _partial(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.boosted


@login_required
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    may_see_all = has_perm(request.user, "jobs.view_all_jobs")
    everyone = may_see_all and request.GET.get("all") == "1"
    jobs = job_list_visible_to(user=request.user, everyone=everyone)
    kind = request.GET.get("kind", "")
    if kind:
        jobs = jobs.filter(kind=kind)
    page = Paginator(jobs, PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = [
        {
            "job": job,
            "kind": job_kind_get(job.kind),
            "progress": job_progress(job, now=now),
            "is_owner": job.owner_id == request.user.pk,
            "outcome": _outcome(job),
        }
        for job in page
    ]
    query = "&".join(
        part for part in ("all=1" if everyone else "", f"kind={kind}" if kind else "") if part
    )
    context = {
        "page": page,
        "rows": rows,
        "everyone": everyone,
        "may_see_all": may_see_all,
        "query": query,
        "any_active": any(row["job"].is_active for row in rows),
        "poll_seconds": POLL_LIST,
        "keep_days": settings.JOB_KEEP_DAYS,
        "active_nav": "jobs",
    }
    template = "jobs/job_list.html" + ("#job-table" if _partial(request) else "")
    return render(request, template, context)


def _outcome(job: Job) -> str:
    kind = job_kind_get(job.kind)
    if job.status != Job.Status.SUCCEEDED or kind is None or kind.outcome is None:
        return ""
    return kind.outcome(job)


@login_required
@require_GET
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = job_get_for_user(user=request.user, job_id=pk)
    template = "jobs/job_detail.html" + ("#job-panel" if _partial(request) else "")
    return render(request, template, job_context(request, job))


def job_context(request: HttpRequest, job: Job) -> dict:
    kind = job_kind_get(job.kind)
    is_owner = job.owner_id == request.user.pk
    now = timezone.now()
    context = {
        "job": job,
        "kind": kind,
        "progress": job_progress(job, now=now),
        # No worker has taken it for a while: perhaps none is running.
        "waiting_long": job.status == Job.Status.QUEUED and now - job.created_at > WAIT_NOTICE,
        "is_owner": is_owner,
        "poll_seconds": POLL_DETAIL,
        "kind_template": kind.template if kind and is_owner else "",
        "active_nav": "jobs",
    }
    if kind and kind.context and is_owner:
        context.update(kind.context(job, request.user))
    return context


@login_required
@require_GET
def job_download(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        handle, job = services.job_result_open(
            actor=request.user, job_id=pk, ip=request.META.get("REMOTE_ADDR")
        )
    except DomainError as exc:
        if exc.is_access_error:
            raise
        messages.error(request, exc.message)
        return redirect("jobs:job_detail", pk=pk)
    return FileResponse(
        handle, as_attachment=True, filename=job.result_name, content_type=job.result_type
    )


@login_required
@require_POST
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        job = services.job_cancel(actor=request.user, job_id=pk, now=timezone.now())
    except DomainError as exc:
        if exc.is_access_error:
            raise
        messages.error(request, exc.message)
        job = job_get_for_user(user=request.user, job_id=pk)
    if _partial(request):
        return render(request, "jobs/job_detail.html#job-panel", job_context(request, job))
    return redirect(job)


def job_started_response(request: HttpRequest, job: Job) -> HttpResponse:
    """Where a page that started a job sends the browser: the job's page."""
    if _partial(request):
        return HttpResponseClientRedirect(job.get_absolute_url())
    return redirect(job)
