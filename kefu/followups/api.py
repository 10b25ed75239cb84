"""Follow-up endpoints under /api/v1/followups: the caller's calls owed to customers, recording
how one went (and when the next one is due), texting the customer, and the records officer's
lists."""

import datetime as dt

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from kefu.core.bounds import DateTimeIn, Id, Offset
from kefu.core.exceptions import ValidationFailed
from kefu.core.permissions import require_perm
from kefu.core.schemas import InputSchema, Ref
from kefu.customers.api import CustomerRef
from kefu.followups import services
from kefu.followups.models import CareList, FollowUp
from kefu.followups.selectors import SCOPE_ALL, SCOPE_MINE, followup_get_for_user, followup_list_for

router = Router(tags=["followups"])


class FollowUpTicketRef(Schema):
    id: int
    number: str
    subject: str


class FollowUpOut(Schema):
    id: int
    purpose: str
    status: str = Field(description="open, done or cancelled")
    due_at: dt.datetime
    priority: int = Field(description="1 high, 2 normal, 3 low")
    attempt: int
    is_overdue: bool
    customer: CustomerRef
    ticket: FollowUpTicketRef | None
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
    assignee: Id | None = Field(None, description="With scope `all`: one assignee's.")
    purpose: str | None = Field(None, description="promised_callback, complaint_aftercare ...")
    overdue: bool | None = Field(None, description="true: only those past their due time.")
    offset: Offset = 0
    limit: int = Field(50, ge=1, le=200)


class FollowUpCompleteIn(InputSchema):
    outcome: str = Field(description="reached, not_reached, wrong_number, refused or done")
    outcome_note: str = Field("", max_length=2000)
    next_due_at: DateTimeIn | None = Field(
        None, description="Schedule the next follow-up by hand instead of by the rule."
    )


class FollowUpNextRef(Schema):
    id: int
    purpose: str
    due_at: dt.datetime
    attempt: int


class FollowUpCompleteOut(FollowUpOut):
    following: FollowUpNextRef | None = Field(
        description="The follow-up scheduled after this one (a retry, the next step, or the "
        "time asked for), if any."
    )


class FollowUpMessageIn(InputSchema):
    body: str = Field(min_length=1, max_length=services.MESSAGE_MAX)


class FollowUpMessageOut(Schema):
    message_id: str = Field(description="The gateway's id of the message.")


class FollowUpCallOut(Schema):
    followup_id: int
    phone: str = Field(description="The customer's full number (E.164), for this call only.")
    display: str = Field(description="The number as people write it.")
    tel: str = Field(description="A tel: link to dial it.")


class CareListOut(Schema):
    id: int
    kind: str = Field(description="key_accounts, churn_risk or birthdays")
    built_at: dt.datetime
    built_by: Ref | None
    days: int | None
    customers: int
    handed_over: int = Field(description="Follow-ups created.")


class CareListPage(Schema):
    results: list[CareListOut]
    next: int | None
    has_more: bool
    limit: int


class CareListQuery(Schema):
    offset: Offset = 0
    limit: int = Field(50, ge=1, le=200)


class CareListBuildIn(InputSchema):
    kind: str = Field(description="key_accounts, churn_risk or birthdays")
    days: int = Field(7, description="Birthdays: how many days ahead (1 to 60).")


def _out(f: FollowUp, now: dt.datetime) -> dict:
    """A plain dict: the response schema validates it once."""
    return {
        "id": f.pk,
        "purpose": f.purpose,
        "status": f.status,
        "due_at": f.due_at,
        "priority": f.priority,
        "attempt": f.attempt,
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
    if filters.assignee is not None and filters.scope == SCOPE_ALL:
        followups = followups.filter(assignee_id=filters.assignee)
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
    "/{followup_id}/complete",
    response=FollowUpCompleteOut,
    summary="Record how the follow-up went",
)
def followup_complete_api(request: HttpRequest, followup_id: int, payload: FollowUpCompleteIn):
    """The assignee (or a supervisor) records the outcome; the follow-up is then done. By the
    purpose's rule a customer not reached is tried again later; `next_due_at` asks for the next
    one at that time instead. `following` is the follow-up so scheduled."""
    now = timezone.now()
    followup_get_for_user(user=request.auth, followup_id=followup_id)
    followup = services.followup_complete(
        actor=request.auth,
        followup_id=followup_id,
        outcome=payload.outcome,
        outcome_note=payload.outcome_note,
        now=now,
        next_due_at=payload.next_due_at,
    )
    body = _out(followup_get_for_user(user=request.auth, followup_id=followup.pk), now)
    following = FollowUp.objects.filter(previous=followup).order_by("due_at", "id").first()
    body["following"] = (
        {
            "id": following.pk,
            "purpose": following.purpose,
            "due_at": following.due_at,
            "attempt": following.attempt,
        }
        if following
        else None
    )
    return body


@router.post(
    "/{followup_id}/message",
    response={201: FollowUpMessageOut},
    summary="Text the customer of the follow-up",
)
def followup_message_api(request: HttpRequest, followup_id: int, payload: FollowUpMessageIn):
    """An SMS to the customer's phone through the SMS gateway (the assignee or a supervisor).
    409 `no_phone` when the customer has none, `gateway_failed` when the gateway refuses."""
    message_id = services.followup_message_send(
        actor=request.auth, followup_id=followup_id, body=payload.body, now=timezone.now()
    )
    return Status(201, {"message_id": message_id})


@router.post(
    "/{followup_id}/call",
    response=FollowUpCallOut,
    summary="The customer's number for this follow-up's call (audited)",
)
def followup_call_api(request: HttpRequest, followup_id: int):
    """The assignee (or a supervisor) gets the customer's full phone number to make the call
    the open follow-up asks for; the reveal is audited with the follow-up it was for. Lists keep
    numbers masked. 409 `no_phone` when the customer has none, `followup_not_open` when done."""
    phone = services.followup_call(
        actor=request.auth, followup_id=followup_id, ip=request.META.get("REMOTE_ADDR")
    )
    return {
        "followup_id": followup_id,
        "phone": phone.value,
        "display": phone.display,
        "tel": f"tel:{phone.value}",
    }


def _care_list(care_list: CareList) -> dict:
    return {
        "id": care_list.pk,
        "kind": care_list.kind,
        "built_at": care_list.built_at,
        "built_by": {"id": care_list.built_by.pk, "name": str(care_list.built_by)}
        if care_list.built_by_id
        else None,
        "days": care_list.days,
        "customers": care_list.customers,
        "handed_over": care_list.handed_over,
    }


@router.get("/lists", response=CareListPage, summary="The customer lists built, newest first")
def care_list_list_api(request: HttpRequest, filters: Query[CareListQuery]):
    require_perm(request.auth, "followups.view_carelist")
    start, limit = filters.offset, filters.limit
    rows = list(CareList.objects.select_related("built_by")[start : start + limit + 1])
    has_more = len(rows) > limit
    return {
        "results": [_care_list(c) for c in rows[:limit]],
        "next": start + limit if has_more else None,
        "has_more": has_more,
        "limit": limit,
    }


@router.post("/lists", response={201: CareListOut}, summary="Build a customer list now")
def care_list_build_api(request: HttpRequest, payload: CareListBuildIn):
    """Build the list and hand it over as follow-ups: key accounts to the VIP specialists,
    customers at churn risk and the birthdays of the next `days` days to the agents."""
    care_list = services.care_list_build(
        actor=request.auth, kind=payload.kind, now=timezone.now(), days=payload.days
    )
    return Status(201, _care_list(CareList.objects.select_related("built_by").get(pk=care_list.pk)))
