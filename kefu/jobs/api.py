"""Job endpoints under /api/v1/jobs: the caller's own jobs, their progress and result files."""

import datetime as dt
from typing import Any

from django.http import FileResponse, HttpRequest
from django.urls import reverse
from django.utils import timezone
from ninja import Field, Path, Query, Router, Schema

from kefu.core.bounds import ID_MAX, PageNumber
from kefu.core.permissions import has_perm
from kefu.jobs import services
from kefu.jobs.kinds import job_kind_get
from kefu.jobs.models import Job
from kefu.jobs.selectors import job_get_for_user, job_list_visible_to, job_progress

router = Router(tags=["jobs"])


class JobProgressOut(Schema):
    phase: str = Field(description="The current step (empty before the first and when done).")
    phase_label: str
    step: int = Field(description="1-based number of the current step; 0 before the first.")
    steps: int
    done: int = Field(description="Rows (or items) done in the current step.")
    total: int | None = Field(description="Rows in the current step, when known.")
    percent: int | None = Field(description="Share of the whole job done, when known.")
    seconds_left: int | None = Field(description="Estimated from the rate so far.")


class JobErrorOut(Schema):
    code: str
    message: str


class JobResultOut(Schema):
    name: str
    content_type: str
    size: int | None
    url: str = Field(description="Download it here (audited); only the job's owner may.")


class JobOut(Schema):
    id: int
    kind: str
    kind_label: str
    title: str
    status: str = Field(description="queued, running, succeeded, failed or cancelled")
    status_label: str
    owner: str | None = Field(description="Username of whoever started it; null: the system.")
    progress: JobProgressOut
    summary: dict[str, Any] = Field(description="What the job found or did (owner only).")
    error: JobErrorOut | None
    result: JobResultOut | None = Field(description="The file it produced (owner only).")
    attempts: int
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    cancel_requested: bool


class JobPage(Schema):
    count: int
    page: int
    page_size: int
    results: list[JobOut]


class JobFilters(Schema):
    status: Job.Status | None = None
    kind: str | None = Field(None, max_length=40)
    everyone: bool = Field(False, description="Everyone's jobs (needs jobs.view_all_jobs).")
    page: PageNumber = 1
    page_size: int = Field(25, ge=1, le=200)


def job_out(job: Job, *, user) -> JobOut:
    kind = job_kind_get(job.kind)
    progress = job_progress(job, now=timezone.now())
    is_owner = user is None or job.owner_id == getattr(user, "pk", None)
    result = None
    if is_owner and job.status == Job.Status.SUCCEEDED and job.has_result_file:
        result = JobResultOut(
            name=job.result_name,
            content_type=job.result_type,
            size=job.result_size,
            url=reverse("api:job_result_api", kwargs={"job_id": job.pk}),
        )
    return JobOut(
        id=job.pk,
        kind=job.kind,
        kind_label=str(kind.label) if kind else job.kind,
        title=job.title,
        status=job.status,
        status_label=str(job.get_status_display()),
        owner=job.owner.username if job.owner else None,
        progress=JobProgressOut(
            phase=progress.phase,
            phase_label=progress.phase_label,
            step=progress.step,
            steps=progress.steps,
            done=progress.done,
            total=progress.total,
            percent=progress.percent,
            seconds_left=progress.seconds_left,
        ),
        summary=job.summary if is_owner else {},
        error=(
            JobErrorOut(code=job.error_code or "failed", message=job.error_display)
            if job.status == Job.Status.FAILED
            else None
        ),
        result=result,
        attempts=job.attempts,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        cancel_requested=job.cancel_requested_at is not None,
    )


@router.get("", response=JobPage, summary="My background jobs, newest first")
def job_list_api(request: HttpRequest, filters: Query[JobFilters]):
    everyone = filters.everyone and has_perm(request.auth, "jobs.view_all_jobs")
    jobs = job_list_visible_to(user=request.auth, everyone=everyone)
    if filters.status:
        jobs = jobs.filter(status=filters.status)
    if filters.kind:
        jobs = jobs.filter(kind=filters.kind)
    page, size = filters.page, filters.page_size
    return JobPage(
        count=jobs.count(),
        page=page,
        page_size=size,
        results=[job_out(j, user=request.auth) for j in jobs[(page - 1) * size : page * size]],
    )


@router.get("/{job_id}", response=JobOut, summary="One job, with its progress")
def job_detail_api(request: HttpRequest, job_id: int = Path(..., ge=1, le=ID_MAX)):
    return job_out(job_get_for_user(user=request.auth, job_id=job_id), user=request.auth)


@router.post("/{job_id}/cancel", response=JobOut, summary="Cancel a waiting or running job")
def job_cancel_api(request: HttpRequest, job_id: int = Path(..., ge=1, le=ID_MAX)):
    job = services.job_cancel(actor=request.auth, job_id=job_id, now=timezone.now())
    return job_out(job, user=request.auth)


@router.get(
    "/{job_id}/result",
    response={200: None},
    url_name="job_result_api",
    summary="Download the file a job produced (audited)",
    openapi_extra={
        "responses": {
            200: {
                "description": "The file (an .xlsx, .csv...), as an attachment.",
                "content": {"application/octet-stream": {"schema": {"type": "string"}}},
            }
        }
    },
)
def job_result_api(request: HttpRequest, job_id: int = Path(..., ge=1, le=ID_MAX)):
    handle, job = services.job_result_open(
        actor=request.auth, job_id=job_id, ip=request.META.get("REMOTE_ADDR")
    )
    return FileResponse(
        handle, as_attachment=True, filename=job.result_name, content_type=job.result_type
    )
