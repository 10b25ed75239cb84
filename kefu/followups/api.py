"""Follow-up endpoints under /api/v1/followups: the caller's calls owed to customers, and
recording how one went."""

import datetime as dt

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema

from kefu.core.exceptions import ValidationFailed
from kefu.followups import services
from kefu.followups.models import FollowUp
from kefu.followups.selectors import SCOPE_ALL, SCOPE_MINE, followup_get_for_user, followup_list_for

router = Router(tags=["followups"])


class Ref(Schema):
    id: int
    name: str


class CustomerRef(Schema):
    id: int
    number: str
    name: str


class TicketRef(Schema):
    id: int
    number: str
    subject: str


class FollowUpOut(Schema):
    id: int
    purpose: str
    status: str = Field(description="open, done or cancelled")
    due_at: dt.datetime
    is_overdue: bool
    customer: CustomerRef
    ticket: TicketRef | None
    assignee: Ref | None
    note: str
    outcome: str
    outcome_note: str
    completed_at: dt.datetime | None
    escalated_at: dt.datetime | None = Field(description="When an overdue callback escalated.")
    created_at: dt.datetime


class FollowUpPage(Schema):
    results: list[FollowUpOut]
    next: int | None = Field(description="Pass as `offset` for the following page.")
    has_more: bool
    limit: int


class FollowUpFilters(Schema):
    scope: str = Field(
        "mine",
        pattern=f"^({SCOPE_MINE}|{SCOPE_ALL})$",
        description="`mine` (default) or `all`, for those who assign tickets.",
    )
    purpose: str | None = Field(None, description="promised_callback, complaint_aftercare ...")
    overdue: bool | None = Field(None, description="true: only those past their due time.")
    offset: int = Field(0, ge=0)
    limit: int = Field(50, ge=1, le=200)


class FollowUpCompleteIn(Schema):
    outcome: str = Field(description="reached, not_reached, wrong_number, refused or done")
    outcome_note: str = Field("", max_length=2000)


def _out(f: FollowUp, now: dt.datetime) -> dict:
    """A plain dict: the response schema validates it once."""
    return {
        "id": f.pk,
        "purpose": f.purpose,
        "status": f.status,
        "due_at": f.due_at,
        "is_overdue": f.status == FollowUp.Status.OPEN and f.due_at < now,
        "customer": {"id": f.customer.pk, "number": f.customer.number, "name": f.customer.name},
        "ticket": {"id": f.ticket.pk, "number": f.ticket.number, "subject": f.ticket.subject}
        if f.ticket_id
        else None,
        "assignee": {"id": f.assignee.pk, "name": str(f.assignee)} if f.assignee_id else None,
        "note": f.note,
        "outcome": f.outcome,
        "outcome_note": f.outcome_note,
        "completed_at": f.completed_at,
        "escalated_at": f.escalated_at,
        "created_at": f.created_at,
    }


@router.get("", response=FollowUpPage, summary="My open follow-ups, the one due first on top")
def followup_list_api(request: HttpRequest, filters: Query[FollowUpFilters]):
    """Open follow-ups ordered by due time. `scope=all` lists everyone's (holders of
    tickets.assign_ticket). Page with `offset`/`limit`; no total is counted."""
    now = timezone.now()
    followups = followup_list_for(user=request.auth, scope=filters.scope)
    if filters.purpose:
        if filters.purpose not in FollowUp.Purpose.values:
            raise ValidationFailed({"purpose": [_("Unknown purpose.")]})
        followups = followups.filter(purpose=filters.purpose)
    if filters.overdue is True:
        followups = followups.filter(due_at__lt=now)
    elif filters.overdue is False:
        followups = followups.filter(due_at__gte=now)
    start, limit = filters.offset, filters.limit
    rows = list(followups[start : start + limit + 1])
    has_more = len(rows) > limit
    return {
        "results": [_out(f, now) for f in rows[:limit]],
        "next": start + limit if has_more else None,
        "has_more": has_more,
        "limit": limit,
    }


@router.post(
    "/{followup_id}/complete", response=FollowUpOut, summary="Record how the follow-up went"
)
def followup_complete_api(request: HttpRequest, followup_id: int, payload: FollowUpCompleteIn):
    """The assignee (or a supervisor) records the outcome; the follow-up is then done."""
    now = timezone.now()
    followup_get_for_user(user=request.auth, followup_id=followup_id)
    followup = services.followup_complete(
        actor=request.auth,
        followup_id=followup_id,
        outcome=payload.outcome,
        outcome_note=payload.outcome_note,
        now=now,
    )
    return _out(followup_get_for_user(user=request.auth, followup_id=followup.pk), now)
