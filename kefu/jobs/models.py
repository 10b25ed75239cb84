"""Background jobs: long work (imports, exports) that runs in the worker, not in a page request.

A `Job` row is the durable record of one piece of such work: who started it, what it is doing
(phase, rows done of total), and how it ended (summary, result file, error). A worker claims a
queued job by writing its claim into the row; the claim carries the worker's host and process,
so a job whose worker died is found and run again (or failed) by `jobs_recover`.
"""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from kefu.core.models import TimeStampedModel

# Endings whose words Kefu writes itself: shown in the reader's language, not the job's.
ERROR_MESSAGES = {
    "worker_lost": _(
        "The worker running this job stopped several times before it finished. Nothing was "
        "saved; start the job again."
    ),
    "interrupted": _("This job was stopped before it finished. Nothing was saved; start it again."),
    "internal": _(
        "An unexpected error stopped this job and nothing was saved. The administrators can find "
        "the details in the worker's log."
    ),
    "unknown_kind": _("This kind of job is no longer known to Kefu."),
}


class JobQuerySet(models.QuerySet["Job"]):
    def active(self) -> "JobQuerySet":
        return self.filter(status__in=Job.ACTIVE)

    def finished(self) -> "JobQuerySet":
        return self.exclude(status__in=Job.ACTIVE)


class Job(TimeStampedModel):
    """One import, export or other long piece of work, run by the worker for the user who
    started it; its files live in MEDIA_ROOT/jobs/<id>/."""

    class Status(models.TextChoices):
        QUEUED = "queued", pgettext_lazy("job status", "Waiting")
        RUNNING = "running", pgettext_lazy("job status", "Running")
        SUCCEEDED = "succeeded", pgettext_lazy("job status", "Done")
        FAILED = "failed", pgettext_lazy("job status", "Failed")
        CANCELLED = "cancelled", pgettext_lazy("job status", "Cancelled")

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    kind = models.CharField(_("kind"), max_length=40, db_index=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="jobs",
        verbose_name=_("started by"),
        help_text=_("Empty: started by the system (a command)."),
    )
    title = models.CharField(_("title"), max_length=200)
    # Messages and files are written in the language of the person who started the job.
    language = models.CharField(_("language"), max_length=10, default=settings.LANGUAGE_CODE)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    source = models.ForeignKey(
        "self",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="followers",
        verbose_name=_("source job"),
        help_text=_("The job whose result this one works on (the check an import confirms)."),
    )
    # Started by `kefu import` and run in that process: never handed to a worker.
    in_process = models.BooleanField(_("run by a command"), default=False)

    phase = models.CharField(_("phase"), max_length=30, blank=True)
    done = models.PositiveIntegerField(_("done"), default=0)
    total = models.PositiveIntegerField(_("total"), null=True, blank=True)

    summary = models.JSONField(_("summary"), default=dict, blank=True)
    result_file = models.CharField(_("result file"), max_length=100, blank=True)
    result_name = models.CharField(_("result file name"), max_length=200, blank=True)
    result_type = models.CharField(_("result content type"), max_length=100, blank=True)
    result_size = models.PositiveBigIntegerField(_("result size"), null=True, blank=True)
    error_code = models.CharField(_("error code"), max_length=40, blank=True)
    error_message = models.TextField(_("error"), blank=True)

    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    claimed_by = models.CharField(_("claimed by"), max_length=120, blank=True)
    enqueued_at = models.DateTimeField(_("handed to the worker at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    phase_started_at = models.DateTimeField(_("phase started at"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(_("last sign of life"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True, db_index=True)
    cancel_requested_at = models.DateTimeField(_("cancel requested at"), null=True, blank=True)
    files_deleted_at = models.DateTimeField(_("files deleted at"), null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="jobs_owner_recent")]
        constraints = [
            # An import confirms its check once: a second click finds the first import.
            models.UniqueConstraint(
                fields=["source"],
                condition=models.Q(source__isnull=False),
                name="jobs_one_follower_per_source",
            )
        ]
        permissions = [("view_all_jobs", _("See everyone's background jobs"))]
        verbose_name = _("background job")
        verbose_name_plural = _("background jobs")

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("jobs:job_detail", kwargs={"pk": self.pk})

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def error_display(self) -> str:
        """Why the job failed, for people."""
        known = ERROR_MESSAGES.get(self.error_code)
        return str(known) if known is not None else self.error_message

    @property
    def has_result_file(self) -> bool:
        return bool(self.result_file) and self.files_deleted_at is None
