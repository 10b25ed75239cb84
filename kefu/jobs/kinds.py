"""The kinds of background job, declared by the apps that run them.

The jobs app knows nothing about customers or tickets: each app registers its kinds (in its
`jobs.py`, imported by its AppConfig.ready) with the function that does the work, the permission
needed to start one and to download its result, and its phases for the progress bar.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils.functional import Promise

if TYPE_CHECKING:
    from kefu.accounts.models import User
    from kefu.jobs.models import Job
    from kefu.jobs.runs import JobRun


@dataclass(frozen=True)
class Phase:
    """A step of a job. `weight` is its share of the job's time, for one bar over all steps."""

    key: str
    label: Promise | str
    weight: float = 1.0


@dataclass(frozen=True)
class JobKind:
    name: str
    label: Promise | str
    # Needed to start a job of this kind and to download its result.
    permission: str
    run: "Callable[[JobRun], None]"
    phases: tuple[Phase, ...]
    # Shown on the job page under the progress (the summary, the next step...).
    template: str = ""
    context: "Callable[[Job, User], dict[str, Any]] | None" = None
    # One line on the list of jobs for a finished job ("99,000 customers imported").
    outcome: "Callable[[Job], str] | None" = None
    # Its template offers the result file itself (the generic download button is left out).
    own_download: bool = False
    # After its worker died, run it again from the start (False: end it as failed).
    retry: bool = True

    def phase(self, key: str) -> Phase | None:
        return next((p for p in self.phases if p.key == key), None)


_KINDS: dict[str, JobKind] = {}


def job_kind_register(kind: JobKind) -> JobKind:
    if kind.name in _KINDS and _KINDS[kind.name] != kind:
        raise ValueError(f"A job kind named {kind.name!r} is already registered.")
    _KINDS[kind.name] = kind
    return kind


def job_kind_get(name: str) -> JobKind | None:
    return _KINDS.get(name)


def job_kinds() -> list[JobKind]:
    return list(_KINDS.values())
