"""Every write to follow-ups: one transaction each, scheduled work kept in the database."""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from django.db import IntegrityError, models, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from kefu.accounts.models import User
from kefu.accounts.roles import Role
from kefu.businesstime.selectors import work_calendar_get
from kefu.core.exceptions import Conflict, NotFound, ValidationFailed
from kefu.core.permissions import require_perm
from kefu.customers.models import ContactPoint, Customer, CustomerEvent
from kefu.customers.services import customer_phone_reveal_for_call, customer_touch
from kefu.followups import scheduling
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
    FollowUp.Purpose.BIRTHDAY_GREETING: {
        "effective_outcomes": ["reached", "done"],
        "retry_after_hours": 4,
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
    the team takes it from its list).

    Outside a ticket a customer has at most one open follow-up per purpose: asking for another
    (a second missed call) returns the open one, due at the earlier of the two times, with the
    new note added."""
    if purpose not in FollowUp.Purpose.values:
        raise ValidationFailed({"purpose": [_("Unknown purpose.")]})
    if priority not in FollowUp.Priority.values:
        raise ValidationFailed({"priority": [_("Choose from the list.")]})
    followup, created = _followup_store(
        FollowUp(
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
    )
    if created and assignee is not None and assignee != actor:
        notify(
            [assignee],
            kind="followup_assigned",
            title=_("Follow-up for %(customer)s due %(due)s")
            % {"customer": customer.name, "due": _local(due_at)},
            body=note,
            url=followup_url(followup),
        )
    return followup


@transaction.atomic
def _followup_store(new: FollowUp) -> tuple[FollowUp, bool]:
    """Save a new follow-up, or fold it into the customer's open one of the same purpose (outside
    tickets; the database's unique constraint decides between two at the same moment)."""
    if new.ticket_id is None:
        existing = _open_of(new.customer_id, new.purpose)
        if existing is not None:
            return _followup_join(existing, new), False
    try:
        with transaction.atomic():
            new.save()
    except IntegrityError:
        existing = _open_of(new.customer_id, new.purpose) if new.ticket_id is None else None
        if existing is None:
            raise
        return _followup_join(existing, new), False
    return new, True


def _open_of(customer_id: int, purpose: str) -> FollowUp | None:
    return (
        FollowUp.objects.open()
        .select_for_update(of=("self",))
        .filter(customer_id=customer_id, purpose=purpose, ticket__isnull=True)
        .first()
    )


def _followup_join(existing: FollowUp, new: FollowUp) -> FollowUp:
    """The open follow-up takes on what a second one asked for: the earlier due time, the higher
    priority, its note, an assignee if it had none."""
    existing.due_at = min(existing.due_at, new.due_at)
    existing.priority = min(existing.priority, new.priority)
    note = new.note.strip()
    if note and note not in existing.note:
        existing.note = f"{existing.note}\n{note}".strip()
    if existing.assignee_id is None and existing.team_id is None:
        existing.assignee_id, existing.team_id = new.assignee_id, new.team_id
    existing.save(update_fields=["due_at", "priority", "note", "assignee", "team", "updated_at"])
    return existing


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
    following, _created = _followup_store(
        FollowUp(
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
# The records officer's key-account list follows the key-account plan's period; without a plan,
# monthly. The churn-risk list is weekly (built every Monday): its calls spread over that week.
KEY_ACCOUNT_PERIOD_DAYS = 30
CHURN_PERIOD_DAYS = 7
# A birthday greeting due up to this many days before a birthday is that birthday's (the lists
# look at most 60 days ahead): the customer greeted for it is not called again.
BIRTHDAY_OCCASION_DAYS = 60


def _round_robin(role: str):
    """Hand rows out in turn to the active users of a role (None when nobody has it)."""
    users = list(_role_users(role))
    index = 0

    def next_user() -> User | None:
        nonlocal index
        if not users:
            return None
        user = users[index % len(users)]
        index += 1
        return user

    return next_user


def _role_users(role: str):
    return User.objects.filter(role=role, is_active=True).order_by("pk")


def _hand_over(rows: list[FollowUp]) -> int:
    """Store the follow-ups; one the customer already has open for the purpose (a list built by
    two people at once) is skipped by the database's constraint. Returns how many were stored:
    exactly for a list (its own rows), else as the change in open follow-ups."""
    if not rows:
        return 0
    if rows[0].care_list is not None:
        mine = FollowUp.objects.filter(care_list=rows[0].care_list)
    else:
        mine = FollowUp.objects.open().filter(
            purpose=rows[0].purpose,
            customer_id__in=[row.customer_id for row in rows],
            ticket__isnull=True,
        )
    before = mine.count()
    FollowUp.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    return mine.count() - before


def _busy(customer_ids: list[int], purpose: str) -> set[int]:
    """Customers with an open follow-up of the purpose (outside tickets)."""
    return set(
        FollowUp.objects.open()
        .filter(purpose=purpose, customer_id__in=customer_ids, ticket__isnull=True)
        .values_list("customer_id", flat=True)
    )


def _spread(
    customer_ids: list[int],
    *,
    purpose: str,
    role: str,
    now: dt.datetime,
    period_days: int,
    due_now: Iterable[int] = (),
) -> list[tuple[int, int | None, dt.datetime]]:
    """Due times and assignees for periodic calls: over the period's working days, within each
    person's calls a day for the purpose, counting the open calls they already have."""
    calendar = work_calendar_get()
    people: list[int | None] = list(_role_users(role).values_list("pk", flat=True))
    today = scheduling.local_day(calendar, now)
    load: dict[tuple[int | None, dt.date], int] = defaultdict(int)
    open_ones = FollowUp.objects.open().filter(purpose=purpose)
    open_ones = (
        open_ones.filter(assignee_id__in=people) if people else open_ones.filter(assignee=None)
    )
    for assignee_id, due_at in open_ones.values_list("assignee_id", "due_at").iterator():
        load[(assignee_id, max(scheduling.local_day(calendar, due_at), today))] += 1
    return scheduling.spread_over_working_days(
        customer_ids,
        assignees=list(people),
        calendar=calendar,
        now=now,
        period_days=period_days,
        per_day=followup_rule(purpose).calls_per_day,
        load=load,
        due_now=due_now,
    )


def _periodic(
    customers: QuerySet[Customer],
    *,
    purpose: str,
    role: str,
    period_days: int,
    now: dt.datetime,
    actor: User | None,
    note: str,
    priority: int = FollowUp.Priority.NORMAL,
    care_list: CareList | None = None,
) -> int:
    """Periodic calls for the customers not called for the purpose within the period and with
    none open: those called before (due again) first, the others spread over the period."""
    since = now - dt.timedelta(days=period_days)
    recent = FollowUp.objects.filter(purpose=purpose).filter(
        models.Q(status=FollowUp.Status.OPEN, ticket__isnull=True)
        | models.Q(status=FollowUp.Status.DONE, completed_at__gte=since)
    )
    ids = list(
        customers.exclude(pk__in=recent.values("customer_id"))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    called_before = set(
        FollowUp.objects.filter(
            purpose=purpose, status=FollowUp.Status.DONE, customer_id__in=ids
        ).values_list("customer_id", flat=True)
    )
    plan = _spread(
        ids, purpose=purpose, role=role, now=now, period_days=period_days, due_now=called_before
    )
    return _hand_over(
        [
            FollowUp(
                customer_id=customer_id,
                purpose=purpose,
                due_at=due_at,
                assignee_id=assignee_id,
                priority=priority,
                note=note,
                care_list=care_list,
                created_by=actor,
            )
            for customer_id, assignee_id, due_at in plan
        ]
    )


def followup_plans_run(*, now: dt.datetime) -> int:
    """Create the periodic follow-ups that are due: each plan's customers whose last follow-up of
    the plan's purpose is older than its interval (or who never had one), spread over the
    interval's working days within the purpose's calls a day."""
    created = 0
    for plan in FollowUpPlan.objects.filter(is_active=True):
        customers = (
            Customer.objects.live().exclude(status=Customer.Status.CLOSED).filter(level=plan.level)
        )
        with transaction.atomic():
            created += _periodic(
                customers,
                purpose=plan.purpose,
                role=plan.assignee_role,
                period_days=plan.interval_days,
                now=now,
                actor=None,
                note=plan.name,
                priority=plan.priority,
            )
    return created


def _key_account_plan() -> FollowUpPlan | None:
    return (
        FollowUpPlan.objects.filter(is_active=True, level=Customer.Level.KEY_ACCOUNT)
        .order_by("interval_days", "pk")
        .first()
    )


def _birthdays(
    customers: QuerySet[Customer],
    *,
    today: dt.date,
    days: int,
    now: dt.datetime,
    actor: User | None,
    care_list: CareList,
) -> int:
    """A greeting for each birthday of the window, due by its occasion; not for a customer whose
    birthday is already greeted or scheduled (a greeting due within the occasion's days)."""
    from kefu.customers.selectors import celebrated_on

    window = [today + dt.timedelta(days=offset) for offset in range(days)]
    occasion: dict[int, dt.date] = {}
    for pk, birthday in customers.values_list("pk", "birthday"):
        for day in window:
            if celebrated_on(birthday, day.year) == day:
                occasion[pk] = day
                break
    if not occasion:
        return 0
    purpose = FollowUp.Purpose.BIRTHDAY_GREETING
    calendar = work_calendar_get()
    earliest = min(occasion.values()) - dt.timedelta(days=BIRTHDAY_OCCASION_DAYS)
    greetings = (
        FollowUp.objects.filter(purpose=purpose, customer_id__in=list(occasion))
        .exclude(status=FollowUp.Status.CANCELLED)
        .filter(due_at__gte=dt.datetime.combine(earliest, dt.time.min, tzinfo=calendar.tz))
        .values_list("customer_id", "due_at")
    )
    taken = set()
    for customer_id, due_at in greetings:
        since = occasion[customer_id] - dt.timedelta(days=BIRTHDAY_OCCASION_DAYS)
        if scheduling.local_day(calendar, due_at) >= since:
            taken.add(customer_id)
    # A greeting still open from an earlier birthday is past its occasion: withdrawn.
    FollowUp.objects.open().filter(
        purpose=purpose, customer_id__in=[pk for pk in occasion if pk not in taken]
    ).update(status=FollowUp.Status.CANCELLED, updated_at=now)
    assignee = _round_robin(Role.AGENT)
    rows = []
    for customer_id, day in sorted(occasion.items(), key=lambda item: (item[1], item[0])):
        if customer_id in taken:
            continue
        rows.append(
            FollowUp(
                customer_id=customer_id,
                purpose=purpose,
                due_at=scheduling.birthday_due_at(calendar, day, now=now),
                assignee=assignee(),
                note=_("Birthday on %(day)s: greet and explain how to claim the gift.")
                % {"day": day.strftime("%m-%d")},
                care_list=care_list,
                created_by=actor,
            )
        )
    return _hand_over(rows)


@transaction.atomic
def care_list_build(*, actor: User | None, kind: str, now: dt.datetime, days: int = 7) -> CareList:
    """Build one of the records officer's lists and hand it over as follow-ups: key accounts to
    the VIP specialists (spread over the key-account plan's period), customers at churn risk to
    the agents (over the week) and the coming birthdays to the agents (each due by its
    birthday). Nobody gets a second open follow-up for the same purpose, nor a second call for
    the same birthday."""
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
    if kind == CareList.Kind.KEY_ACCOUNTS:
        customers = live.filter(level=Customer.Level.KEY_ACCOUNT)
        plan = _key_account_plan()
        handed_over = _periodic(
            customers,
            purpose=plan.purpose if plan else FollowUp.Purpose.MEMBER_CARE,
            role=plan.assignee_role if plan else Role.VIP_SPECIALIST,
            period_days=plan.interval_days if plan else KEY_ACCOUNT_PERIOD_DAYS,
            now=now,
            actor=actor,
            note=_("Key account: regular care call."),
            priority=plan.priority if plan else FollowUp.Priority.NORMAL,
            care_list=care_list,
        )
    elif kind == CareList.Kind.CHURN_RISK:
        customers = customers_at_churn_risk(live, today=today)
        purpose = FollowUp.Purpose.CHURN_RESCUE
        ids = list(customers.order_by("churn_due_on", "pk").values_list("pk", flat=True))
        busy = _busy(ids, purpose)
        ids = [pk for pk in ids if pk not in busy]
        handed_over = _hand_over(
            [
                FollowUp(
                    customer_id=customer_id,
                    purpose=purpose,
                    due_at=due_at,
                    assignee_id=assignee_id,
                    note=_(
                        "No purchase or contact for longer than usual: find out why, win them back."
                    ),
                    care_list=care_list,
                    created_by=actor,
                )
                for customer_id, assignee_id, due_at in _spread(
                    ids, purpose=purpose, role=Role.AGENT, now=now, period_days=CHURN_PERIOD_DAYS
                )
            ]
        )
    else:
        customers = customers_with_birthday(live, start=today, days=days)
        handed_over = _birthdays(
            customers, today=today, days=days, now=now, actor=actor, care_list=care_list
        )
    care_list.customers = customers.count()
    care_list.handed_over = handed_over
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


@transaction.atomic
def followup_call(*, actor: User, followup_id: int, ip: str | None = None) -> ContactPoint:
    """The customer's full number for the call the follow-up asks for: only to whom may work it
    (its assignee, or a supervisor), only while it is open; audited as a reveal for this
    follow-up. The outcome is then logged as usual."""
    from kefu.followups.selectors import followup_get_for_user

    require_perm(actor, "followups.change_followup")
    followup = followup_get_for_user(user=actor, followup_id=followup_id)
    if followup.status != FollowUp.Status.OPEN:
        raise Conflict(_("This follow-up is already done."), code="followup_not_open")
    return customer_phone_reveal_for_call(
        actor=actor,
        customer_id=followup.customer_id,
        call_for={"type": "followup", "id": followup.pk},
        ip=ip,
    )


MESSAGE_MAX = 500


def followup_message_send(*, actor: User, followup_id: int, body: str, now: dt.datetime) -> str:
    """Text the customer of an open follow-up ("tried to call you, please call back") by SMS
    through the gateway, and keep it on their timeline; returns the gateway's id. Only who may
    work the follow-up (its assignee, or a supervisor) may send."""
    from kefu.campaigns.gateways import GatewayError, gateway_for
    from kefu.campaigns.sms import sms_compose
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
            body=sms_compose(text, marketing=False),  # 【签名】; a callback note: no footer
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
