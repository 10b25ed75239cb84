"""Every write to follow-ups: one transaction each, scheduled work kept in the database."""

import datetime as dt

from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kefu.accounts.models import User
from kefu.accounts.roles import Role
from kefu.core.exceptions import Conflict, NotFound, ValidationFailed
from kefu.core.permissions import require_perm
from kefu.customers.models import Customer, CustomerEvent
from kefu.customers.services import customer_touch
from kefu.followups.models import CareList, FollowUp, FollowUpPlan, FollowUpRule
from kefu.notifications.services import notify

# What makes a follow-up effective, and what follows it, until an administrator sets a rule.
DEFAULT_RULES: dict[str, dict] = {
    FollowUp.Purpose.PROMISED_CALLBACK: {
        "effective_outcomes": ["reached", "done"],
        "retry_after_hours": 2,
        "max_attempts": 3,
    },
    FollowUp.Purpose.COMPLAINT_AFTERCARE: {
        "effective_outcomes": ["reached"],
        "retry_after_hours": 24,
        "max_attempts": 3,
    },
    FollowUp.Purpose.IMPACT_WATCH: {
        "effective_outcomes": ["reached", "done"],
        "retry_after_hours": 24,
        "max_attempts": 2,
    },
    FollowUp.Purpose.SATISFACTION: {
        "effective_outcomes": ["reached"],
        "retry_after_hours": 24,
        "max_attempts": 2,
    },
    FollowUp.Purpose.SECOND_FOLLOWUP: {
        "effective_outcomes": ["reached"],
        "retry_after_hours": 48,
        "max_attempts": 2,
    },
    FollowUp.Purpose.CHURN_RESCUE: {
        "effective_outcomes": ["reached"],
        "retry_after_hours": 48,
        "max_attempts": 3,
        "next_purpose": FollowUp.Purpose.SECOND_FOLLOWUP,
        "next_after_days": 30,
    },
    FollowUp.Purpose.MEMBER_CARE: {
        "effective_outcomes": ["reached", "done"],
        "retry_after_hours": 24,
        "max_attempts": 2,
    },
}


def followup_create(
    *,
    actor: User | None,
    customer: Customer,
    purpose: str,
    due_at: dt.datetime,
    assignee: User | None = None,
    ticket=None,
    note: str = "",
    priority: int = FollowUp.Priority.NORMAL,
    team=None,
) -> FollowUp:
    """Schedule a call or message owed to the customer; the assignee is told (or, without one,
    the team takes it from its list)."""
    if purpose not in FollowUp.Purpose.values:
        raise ValidationFailed({"purpose": [_("Unknown purpose.")]})
    if priority not in FollowUp.Priority.values:
        raise ValidationFailed({"priority": [_("Choose from the list.")]})
    followup = FollowUp.objects.create(
        priority=priority,
        team=team,
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


def followup_rule(purpose: str) -> FollowUpRule:
    """The rule of a purpose: the administrator's, else the default."""
    rule = FollowUpRule.objects.filter(purpose=purpose).first()
    if rule is None:
        rule = FollowUpRule(purpose=purpose, **DEFAULT_RULES.get(purpose, {}))
        if not rule.effective_outcomes:
            rule.effective_outcomes = [FollowUp.Outcome.REACHED, FollowUp.Outcome.DONE]
    return rule


@transaction.atomic
def followup_complete(
    *,
    actor: User | None,
    followup_id: int,
    outcome: str,
    outcome_note: str = "",
    now: dt.datetime,
    next_due_at: dt.datetime | None = None,
) -> FollowUp:
    """Record how the follow-up went; it is done whatever the outcome. By the purpose's rule the
    outcome counts as effective or not, a customer not reached is tried again later (up to the
    rule's attempts), and a success may lead to the next follow-up. `next_due_at` schedules the
    next one by hand instead ("call me back on Friday")."""
    require_perm(actor, "followups.change_followup")
    followup = (
        FollowUp.objects.select_for_update(of=("self",))
        .select_related("customer")
        .filter(pk=followup_id)
        .first()
    )
    if followup is None:
        raise NotFound(
            _("Follow-up %(id)s not found.") % {"id": followup_id}, code="followup_not_found"
        )
    if followup.status != FollowUp.Status.OPEN:
        raise Conflict(_("This follow-up is already done."), code="followup_not_open")
    if outcome not in FollowUp.Outcome.values:
        raise ValidationFailed({"outcome": [_("Choose an outcome.")]})
    if next_due_at is not None and next_due_at <= now:
        raise ValidationFailed({"next_due_at": [_("Choose a time in the future.")]})
    rule = followup_rule(followup.purpose)
    followup.status = FollowUp.Status.DONE
    followup.outcome = outcome
    followup.outcome_note = outcome_note.strip()
    followup.completed_at = now
    followup.completed_by = actor
    followup.is_effective = outcome in rule.effective_outcomes
    followup.save()
    if outcome in (FollowUp.Outcome.REACHED, FollowUp.Outcome.DONE):
        customer_touch(customer_id=followup.customer_id, on=timezone.localdate(now))
    CustomerEvent.objects.create(
        customer_id=followup.customer_id,
        kind=CustomerEvent.Kind.FOLLOWUP_DONE,
        actor=actor,
        data={
            "followup": followup.pk,
            "purpose": followup.purpose,
            "outcome": outcome,
            "effective": followup.is_effective,
        },
    )
    _followup_next(followup, rule, actor=actor, now=now, next_due_at=next_due_at)
    return followup


def _followup_next(
    followup: FollowUp,
    rule: FollowUpRule,
    *,
    actor: User | None,
    now: dt.datetime,
    next_due_at: dt.datetime | None,
) -> FollowUp | None:
    purpose, attempt, due = None, 1, None
    if next_due_at is not None:
        purpose, due = followup.purpose, next_due_at
    elif followup.outcome == FollowUp.Outcome.NOT_REACHED and followup.attempt < rule.max_attempts:
        purpose, attempt = followup.purpose, followup.attempt + 1
        due = now + dt.timedelta(hours=rule.retry_after_hours)
    elif followup.is_effective and rule.next_purpose and rule.next_after_days:
        purpose, due = rule.next_purpose, now + dt.timedelta(days=rule.next_after_days)
    if purpose is None:
        return None
    following = FollowUp.objects.create(
        customer=followup.customer,
        ticket=followup.ticket,
        purpose=purpose,
        due_at=due,
        assignee=followup.assignee,
        team=followup.team,
        priority=followup.priority,
        attempt=attempt,
        previous=followup,
        note=followup.note,
        created_by=actor,
    )
    return following


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


# --- Periodic plans and the records officer's lists --------------------------------------------
def _round_robin(role: str):
    """Hand rows out in turn to the active users of a role (None when nobody has it)."""
    users = list(User.objects.filter(role=role, is_active=True).order_by("pk"))
    index = 0

    def next_user() -> User | None:
        nonlocal index
        if not users:
            return None
        user = users[index % len(users)]
        index += 1
        return user

    return next_user


def _hand_over(
    customer_ids: list[int],
    *,
    purpose: str,
    role: str,
    due_at: dt.datetime,
    actor: User | None,
    note: str | dict[int, str] = "",
    priority: int = FollowUp.Priority.NORMAL,
    care_list: CareList | None = None,
) -> int:
    """One open follow-up of the purpose per customer who has none yet, in turn to the role."""
    busy = set(
        FollowUp.objects.open()
        .filter(purpose=purpose, customer_id__in=customer_ids)
        .values_list("customer_id", flat=True)
    )
    assignee = _round_robin(role)
    rows = [
        FollowUp(
            customer_id=customer_id,
            purpose=purpose,
            due_at=due_at,
            assignee=assignee(),
            priority=priority,
            note=note.get(customer_id, "") if isinstance(note, dict) else note,
            care_list=care_list,
            created_by=actor,
        )
        for customer_id in customer_ids
        if customer_id not in busy
    ]
    FollowUp.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def followup_plans_run(*, now: dt.datetime) -> int:
    """Create the periodic follow-ups that are due: each plan's customers whose last follow-up of
    the plan's purpose is older than its interval (or who never had one)."""
    created = 0
    due_at = now.replace(second=0, microsecond=0)
    for plan in FollowUpPlan.objects.filter(is_active=True):
        since = now - dt.timedelta(days=plan.interval_days)
        recent = FollowUp.objects.filter(purpose=plan.purpose).filter(
            models.Q(status=FollowUp.Status.OPEN) | models.Q(completed_at__gte=since)
        )
        customers = (
            Customer.objects.live()
            .exclude(status=Customer.Status.CLOSED)
            .filter(level=plan.level)
            .exclude(pk__in=recent.values("customer_id"))
        )
        with transaction.atomic():
            created += _hand_over(
                list(customers.values_list("pk", flat=True)),
                purpose=plan.purpose,
                role=plan.assignee_role,
                due_at=due_at,
                actor=None,
                note=plan.name,
                priority=plan.priority,
            )
    return created


@transaction.atomic
def care_list_build(*, actor: User | None, kind: str, now: dt.datetime, days: int = 7) -> CareList:
    """Build one of the records officer's lists and hand it over as follow-ups: key accounts to
    the VIP specialists, customers at churn risk and the coming birthdays to the agents."""
    from kefu.customers.selectors import customers_at_churn_risk, customers_with_birthday

    require_perm(actor, "followups.add_carelist")
    if kind not in CareList.Kind.values:
        raise ValidationFailed({"kind": [_("Choose a list.")]})
    if not 1 <= days <= 60:
        raise ValidationFailed({"days": [_("Between 1 and 60 days.")]})
    today = timezone.localdate(now)
    live = Customer.objects.live().exclude(status=Customer.Status.CLOSED)
    care_list = CareList.objects.create(
        kind=kind,
        built_at=now,
        built_by=actor,
        days=days if kind == CareList.Kind.BIRTHDAYS else None,
    )
    due_at = now.replace(second=0, microsecond=0)
    notes: str | dict[int, str] = ""
    if kind == CareList.Kind.KEY_ACCOUNTS:
        customers = live.filter(level=Customer.Level.KEY_ACCOUNT)
        purpose, role = FollowUp.Purpose.MEMBER_CARE, Role.VIP_SPECIALIST
        notes = _("Key account: regular care call.")
    elif kind == CareList.Kind.CHURN_RISK:
        customers = customers_at_churn_risk(live, today=today)
        purpose, role = FollowUp.Purpose.CHURN_RESCUE, Role.AGENT
        notes = _("No purchase or contact for longer than usual: find out why, win them back.")
    else:
        customers = customers_with_birthday(live, start=today, days=days)
        purpose, role = FollowUp.Purpose.MEMBER_CARE, Role.AGENT
        notes = {
            pk: _("Birthday on %(day)s: greet and explain how to claim the gift.")
            % {"day": birthday.strftime("%m-%d")}
            for pk, birthday in customers.values_list("pk", "birthday")
        }
    ids = list(customers.order_by("pk").values_list("pk", flat=True))
    care_list.customers = len(ids)
    care_list.handed_over = _hand_over(
        ids,
        purpose=purpose,
        role=role,
        due_at=due_at,
        actor=actor,
        note=notes,
        care_list=care_list,
    )
    care_list.save(update_fields=["customers", "handed_over"])
    return care_list


@transaction.atomic
def followup_take(*, actor: User, followup_id: int) -> FollowUp:
    """Take a team follow-up nobody has yet (the user's own team's)."""
    require_perm(actor, "followups.change_followup")
    followup = FollowUp.objects.select_for_update(of=("self",)).filter(pk=followup_id).first()
    if followup is None or followup.team_id is None or followup.team_id != actor.team_id:
        raise NotFound(
            _("Follow-up %(id)s not found.") % {"id": followup_id}, code="followup_not_found"
        )
    if followup.status != FollowUp.Status.OPEN:
        raise Conflict(_("This follow-up is already done."), code="followup_not_open")
    if followup.assignee_id is not None and followup.assignee_id != actor.pk:
        raise Conflict(_("A colleague has taken it already."), code="followup_taken")
    followup.assignee = actor
    followup.save(update_fields=["assignee", "updated_at"])
    return followup


MESSAGE_MAX = 500


def followup_message_send(*, actor: User, followup_id: int, body: str, now: dt.datetime) -> str:
    """Text the customer of an open follow-up ("tried to call you, please call back") by SMS
    through the gateway, and keep it on their timeline; returns the gateway's id. Only who may
    work the follow-up (its assignee, or a supervisor) may send."""
    from kefu.campaigns.gateways import GatewayError, gateway_for
    from kefu.followups.selectors import followup_get_for_user, followup_phone

    require_perm(actor, "followups.change_followup")
    followup = followup_get_for_user(user=actor, followup_id=followup_id)
    text = (body or "").strip()
    if not text:
        raise ValidationFailed({"body": [_("Write the message.")]})
    if len(text) > MESSAGE_MAX:
        raise ValidationFailed(
            {"body": [_("At most %(count)s characters.") % {"count": MESSAGE_MAX}]}
        )
    if followup.status != FollowUp.Status.OPEN:
        raise Conflict(_("This follow-up is already done."), code="followup_not_open")
    phone = followup_phone(followup)
    if phone is None:
        raise Conflict(_("The customer has no phone number."), code="no_phone")
    sent = CustomerEvent.objects.filter(
        customer_id=followup.customer_id, kind=CustomerEvent.Kind.MESSAGE_SENT
    ).count()
    try:
        provider_id = gateway_for("sms").send(
            to=phone.value,
            subject="",
            body=text,
            reference=f"followup-{followup.pk}-{sent + 1}",
            customer=followup.customer,
        )
    except GatewayError as exc:
        raise Conflict(
            _("The message could not be sent: %(error)s") % {"error": exc}, code="gateway_failed"
        ) from exc
    with transaction.atomic():
        CustomerEvent.objects.create(
            customer_id=followup.customer_id,
            kind=CustomerEvent.Kind.MESSAGE_SENT,
            actor=actor,
            data={
                "followup": followup.pk,
                "gateway": "sms",
                "masked_to": phone.masked,
                "body": text[:200],
            },
        )
        customer_touch(customer_id=followup.customer_id, on=timezone.localdate(now))
    return provider_id
