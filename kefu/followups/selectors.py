"""Reads of follow-ups and who may see which: the assignee their own, supervisors everyone's."""

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from kefu.accounts.models import User
from kefu.core.exceptions import Forbidden, NotFound
from kefu.core.permissions import has_perm, require_perm
from kefu.customers.models import ContactPoint
from kefu.customers.selectors import customer_phone_get
from kefu.followups.models import CareList, FollowUp

SCOPE_MINE, SCOPE_ALL = "mine", "all"


def _sees_everyone(user: User | None) -> bool:
    return has_perm(user, "tickets.assign_ticket")


def followup_list_for(*, user: User | None, scope: str = SCOPE_MINE) -> QuerySet[FollowUp]:
    """Open follow-ups, soonest due first: the user's own, or everyone's (scope "all", for
    supervisors and complaint specialists, who hold tickets.assign_ticket)."""
    require_perm(user, "followups.view_followup")
    followups = (
        FollowUp.objects.open()
        .select_related("customer", "ticket", "assignee")
        .order_by("due_at", "id")
    )
    if scope == SCOPE_ALL:
        if not _sees_everyone(user):
            raise Forbidden()
        return followups
    if user is None:
        return followups
    return followups.filter(assignee=user)


def followup_get_for_user(*, user: User | None, followup_id: int) -> FollowUp:
    """One follow-up on the user's behalf: their own, or any for supervisors; else not found."""
    require_perm(user, "followups.view_followup")
    followups = FollowUp.objects.select_related("customer", "ticket", "assignee")
    if not _sees_everyone(user):
        followups = followups.filter(assignee=user)
    try:
        return followups.get(pk=followup_id)
    except (FollowUp.DoesNotExist, ValueError, TypeError):
        raise NotFound(
            _("Follow-up %(id)s not found.") % {"id": followup_id}, code="followup_not_found"
        ) from None


def followup_phone(followup: FollowUp) -> ContactPoint | None:
    """The customer's phone to call or text: the primary one first."""
    return customer_phone_get(customer_id=followup.customer_id)


def followup_list_for_team(*, user: User) -> QuerySet[FollowUp]:
    """Open follow-ups handed to the user's team that nobody has taken yet."""
    require_perm(user, "followups.view_followup")
    if not user.team_id:
        return FollowUp.objects.none()
    return (
        FollowUp.objects.open()
        .filter(team_id=user.team_id, assignee__isnull=True)
        .select_related("customer", "ticket")
        .order_by("priority", "due_at", "id")
    )


def care_list_followups(*, user: User, care_list_id: int) -> tuple[CareList, QuerySet[FollowUp]]:
    """A records officer's list and the follow-ups it handed over, open first."""
    require_perm(user, "followups.view_carelist")
    care_list = CareList.objects.select_related("built_by").filter(pk=care_list_id).first()
    if care_list is None:
        raise NotFound(
            _("List %(id)s not found.") % {"id": care_list_id}, code="care_list_not_found"
        )
    followups = care_list.followups.select_related("customer", "assignee").order_by(
        "status", "due_at", "id"
    )
    return care_list, followups
