from django.utils.translation import gettext_lazy as _

from kefu.core.exceptions import Conflict, Forbidden, NotFound


class JobNotFound(NotFound):
    code = "job_not_found"

    def __init__(self, job_id: int | None = None):
        super().__init__(_("This job does not exist or was started by someone else."))


class JobNotFinished(Conflict):
    code = "job_not_finished"

    def __init__(self):
        super().__init__(_("This job has not finished yet."))


class JobResultGone(NotFound):
    code = "job_result_gone"

    def __init__(self):
        super().__init__(
            _("The file of this job is no longer kept; run the job again to get a new one.")
        )


class JobNotCancellable(Conflict):
    code = "job_not_cancellable"

    def __init__(self):
        super().__init__(_("Only a job that is waiting or running can be cancelled."))


class JobOwnerGone(Forbidden):
    code = "job_owner_gone"

    def __init__(self):
        super().__init__(_("The person who started this job no longer has an account."))


class JobCancelled(Exception):
    """Raised inside a run when its owner cancelled it: the run stops and writes nothing."""


class JobLost(Exception):
    """Raised inside a run that no longer holds its claim (the job was handed to another
    worker or finished meanwhile): the run stops and its transaction rolls back."""
