"""Every write to follow-ups: one transaction each, scheduled work kept in the database."""

import datetime as dt

from django.db import transaction
from django.utils.translation import gettext as _

from kefu.accounts.models import User
from kefu.accounts.roles import Role
from kefu.core.exceptions import Conflict, NotFound, ValidationFailed
from kefu.core.permissions import require_perm
from kefu.customers.models import Customer
from kefu.followups.models import FollowUp
from kefu.notifications.services import notify


def followup_create(
    *,
    actor: User | None,
    customer: Customer,
    purpose: str,
    due_at: dt.datetime,
    assignee: User | None = None,
    ticket=None,
    note: str = "",
) -> FollowUp:
    """Schedule a call or message owed to the customer; the assignee is told."""
    if purpose not in FollowUp.Purpose.values:
        raise ValidationFailed({"purpose": [_("Unknown purpose.")]})
    followup = FollowUp.objects.create(
        customer=customer,
        ticket=ticket,
        purpose=purpose,
        due_at=due_at,
        assignee=assignee,
        note=note,
        created_by=actor,
    )
    if assignee is not None and assignee != actor:
        notify(
            [assignee],
            kind="followup_assigned",
            title=_("Follow-up for %(customer)s due %(due)s")
            % {"customer": customer.name, "due": _local(due_at)},
            body=note,
            url=followup_url(followup),
        )
    return followup


def followup_url(followup: FollowUp) -> str:
    if followup.ticket_id:
        return f"/tickets/{followup.ticket_id}/"
    return f"/customers/{followup.customer_id}/"


def _local(moment: dt.datetime) -> str:
    from django.utils import timezone

    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


@transaction.atomic
def followup_complete(
    *,
    actor: User | None,
    followup_id: int,
    outcome: str,
    outcome_note: str = "",
    now: dt.datetime,
) -> FollowUp:
    """Record how the follow-up went; it is done whatever the outcome."""
    require_perm(actor, "followups.change_followup")
    followup = FollowUp.objects.select_for_update(of=("self",)).filter(pk=followup_id).first()
    if followup is None:
        raise NotFound(
            _("Follow-up %(id)s not found.") % {"id": followup_id}, code="followup_not_found"
        )
    if followup.status != FollowUp.Status.OPEN:
        raise Conflict(_("This follow-up is already done."), code="followup_not_open")
    if outcome not in FollowUp.Outcome.values:
        raise ValidationFailed({"outcome": [_("Choose an outcome.")]})
    followup.status = FollowUp.Status.DONE
    followup.outcome = outcome
    followup.outcome_note = outcome_note.strip()
    followup.completed_at = now
    followup.completed_by = actor
    followup.save()
    return followup


def followup_cancel_for_ticket(*, ticket, purposes: list[str] | None = None) -> int:
    """Withdraw the open follow-ups of a ticket (a reopened complaint starts its aftercare anew)."""
    followups = FollowUp.objects.open().filter(ticket=ticket)
    if purposes:
        followups = followups.filter(purpose__in=purposes)
    return followups.update(status=FollowUp.Status.CANCELLED)


@transaction.atomic
def followup_escalate_overdue(*, now: dt.datetime, grace: dt.timedelta) -> list[FollowUp]:
    """Promised callbacks still open `grace` after their due time go to the supervisors, once.

    Returns the follow-ups escalated now, so the ticket they belong to can record it.
    """
    overdue = list(
        FollowUp.objects.overdue(now=now - grace)
        .filter(purpose=FollowUp.Purpose.PROMISED_CALLBACK, escalated_at__isnull=True)
        .select_for_update(of=("self",))
        .select_related("customer", "assignee", "ticket")
    )
    supervisors = list(User.objects.filter(is_active=True, role=Role.SUPERVISOR))
    for followup in overdue:
        followup.escalated_at = now
        followup.save(update_fields=["escalated_at", "updated_at"])
        notify(
            [*supervisors, followup.assignee],
            kind="callback_overdue",
            title=_("Promised callback to %(customer)s is overdue (due %(due)s)")
            % {"customer": followup.customer.name, "due": _local(followup.due_at)},
            body=followup.note,
            url=followup_url(followup),
        )
    return overdue
