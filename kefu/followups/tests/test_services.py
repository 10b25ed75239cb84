"""Follow-ups: effectiveness per purpose, the next follow-up from the outcome, periodic plans
by level and the records officer's lists, all on a fixed clock."""

import datetime as dt

import pytest

from kefu.accounts.tests.factories import UserFactory
from kefu.core.exceptions import ValidationFailed
from kefu.customers.models import Customer
from kefu.customers.services import customer_touch
from kefu.customers.tests.factories import make_customer
from kefu.followups import services
from kefu.followups.models import CareList, FollowUp, FollowUpPlan, FollowUpRule
from kefu.tickets.tests.fixtures import at

pytestmark = pytest.mark.django_db
NOW = at(2026, 11, 30, 9)


def _followup(customer, purpose, assignee, **extra):
    return FollowUp.objects.create(
        customer=customer, purpose=purpose, due_at=NOW, assignee=assignee, **extra
    )


def test_not_reached_is_tried_again_until_the_rule_stops(agent):
    followup = _followup(make_customer(), FollowUp.Purpose.SATISFACTION, agent)
    done = services.followup_complete(
        actor=agent, followup_id=followup.pk, outcome="not_reached", now=NOW
    )
    assert done.is_effective is False
    retry = FollowUp.objects.open().get()
    assert (retry.attempt, retry.due_at, retry.previous) == (2, NOW + dt.timedelta(hours=24), done)
    # the second attempt is the last one for satisfaction calls
    services.followup_complete(actor=agent, followup_id=retry.pk, outcome="not_reached", now=NOW)
    assert not FollowUp.objects.open().exists()


def test_effective_outcomes_are_the_purposes_own(agent):
    FollowUpRule.objects.create(purpose="member_care", effective_outcomes=["reached"])
    care = _followup(make_customer(), FollowUp.Purpose.MEMBER_CARE, agent)
    done = services.followup_complete(actor=agent, followup_id=care.pk, outcome="done", now=NOW)
    assert done.is_effective is False
    callback = _followup(make_customer(), FollowUp.Purpose.PROMISED_CALLBACK, agent)
    done = services.followup_complete(actor=agent, followup_id=callback.pk, outcome="done", now=NOW)
    assert done.is_effective is True


def test_a_rescued_customer_gets_a_second_follow_up_a_month_later(agent):
    customer = make_customer()
    rescue = _followup(customer, FollowUp.Purpose.CHURN_RESCUE, agent)
    services.followup_complete(actor=agent, followup_id=rescue.pk, outcome="reached", now=NOW)
    following = FollowUp.objects.open().get()
    assert following.purpose == FollowUp.Purpose.SECOND_FOLLOWUP
    assert following.due_at == NOW + dt.timedelta(days=30)
    customer.refresh_from_db()
    assert customer.last_contact_on == dt.date(2026, 11, 30)


def test_next_follow_up_by_hand_must_be_ahead(agent):
    followup = _followup(make_customer(), FollowUp.Purpose.MEMBER_CARE, agent)
    with pytest.raises(ValidationFailed) as exc:
        services.followup_complete(
            actor=agent, followup_id=followup.pk, outcome="reached", now=NOW, next_due_at=NOW
        )
    assert "next_due_at" in exc.value.errors
    services.followup_complete(
        actor=agent,
        followup_id=followup.pk,
        outcome="reached",
        now=NOW,
        next_due_at=at(2026, 12, 4, 15),
    )
    assert FollowUp.objects.open().get().due_at == at(2026, 12, 4, 15)


def test_monthly_plan_for_key_accounts(db):
    vip_specialists = [UserFactory(username=f"vip{i}", role="vip_specialist") for i in range(2)]
    accounts = [make_customer(name=f"大客户{i}", level="key_account") for i in range(3)]
    make_customer(name="普通", level="normal")
    FollowUpPlan.objects.create(
        name="大客户月度回访", level="key_account", interval_days=30, assignee_role="vip_specialist"
    )
    # when: the plan runs, then again the same day
    assert services.followup_plans_run(now=NOW) == 3
    assert services.followup_plans_run(now=NOW) == 0
    created = FollowUp.objects.open().order_by("customer_id")
    assert [f.customer_id for f in created] == [c.pk for c in accounts]
    assert {f.assignee for f in created} == set(vip_specialists)
    # done now: not due again until the interval has passed
    for followup in created:
        services.followup_complete(actor=None, followup_id=followup.pk, outcome="reached", now=NOW)
    assert services.followup_plans_run(now=NOW + dt.timedelta(days=29)) == 0
    assert services.followup_plans_run(now=NOW + dt.timedelta(days=31)) == 3


def test_records_officer_lists_on_a_fixed_clock(records_officer, agent):
    vip = UserFactory(username="vip", role="vip_specialist")
    key = make_customer(name="大客户", level="key_account")
    lapsed = make_customer(name="久未购买")
    customer_touch(customer_id=lapsed.pk, on=dt.date(2026, 7, 1), purchase=True)
    new_year = make_customer(name="元旦生", birthday=dt.date(1980, 1, 2))
    make_customer(name="夏天生", birthday=dt.date(1980, 7, 2))
    make_customer(name="销户", level="key_account", status=Customer.Status.CLOSED)
    # when
    keys = services.care_list_build(actor=records_officer, kind="key_accounts", now=NOW)
    churn = services.care_list_build(actor=records_officer, kind="churn_risk", now=NOW)
    births = services.care_list_build(
        actor=records_officer, kind="birthdays", now=at(2026, 12, 28, 9), days=7
    )
    # then
    assert [(f.customer, f.assignee) for f in keys.followups.all()] == [(key, vip)]
    assert [(f.customer, f.purpose) for f in churn.followups.all()] == [(lapsed, "churn_rescue")]
    birthday = births.followups.get()
    assert birthday.customer == new_year
    assert "01-02" in birthday.note
    assert (births.customers, births.handed_over) == (1, 1)
    # built again: nobody gets a second open follow-up
    again = services.care_list_build(actor=records_officer, kind="key_accounts", now=NOW)
    assert (again.customers, again.handed_over) == (1, 0)
    assert CareList.objects.count() == 4


def test_lists_are_for_the_records_officer(agent):
    from kefu.core.exceptions import Forbidden

    with pytest.raises(Forbidden):
        services.care_list_build(actor=agent, kind="key_accounts", now=NOW)


def test_team_follow_up_is_taken_once(agent):
    from kefu.accounts.models import Team
    from kefu.core.exceptions import Conflict, NotFound

    team = Team.objects.create(name="回访组")
    agent.team = team
    agent.save()
    colleague = UserFactory(username="colleague", role="agent", team=team)
    followup = FollowUp.objects.create(
        customer=make_customer(), purpose="member_care", due_at=NOW, team=team
    )
    services.followup_take(actor=agent, followup_id=followup.pk)
    with pytest.raises(Conflict):
        services.followup_take(actor=colleague, followup_id=followup.pk)
    outsider = UserFactory(username="outsider", role="agent")
    with pytest.raises(NotFound):
        services.followup_take(actor=outsider, followup_id=followup.pk)


def test_message_to_the_customer_goes_through_the_gateway_and_the_timeline(agent):
    from kefu.campaigns.models import OutboxMessage
    from kefu.customers.models import CustomerEvent

    customer = make_customer(phone="13812345678")
    followup = _followup(customer, FollowUp.Purpose.MEMBER_CARE, agent)
    with pytest.raises(ValidationFailed):
        services.followup_message_send(actor=agent, followup_id=followup.pk, body=" ", now=NOW)
    services.followup_message_send(
        actor=agent, followup_id=followup.pk, body="王女士您好，会员日活动提醒。", now=NOW
    )
    assert OutboxMessage.objects.get().to == "+8613812345678"
    assert CustomerEvent.objects.filter(customer=customer, kind="message_sent").exists()


# --- When the lists' calls fall due (issue 10) ---------------------------------------------------


def _local(moment: dt.datetime) -> tuple[dt.date, dt.time]:
    from django.utils import timezone

    local = timezone.localtime(moment)
    return local.date(), local.time()


def test_birthday_calls_fall_due_by_each_birthday_not_all_at_once(records_officer, agent):
    """A 30-day list built on Monday 30 November: each greeting is due by the close of business
    (18:00) on the birthday, or on the working day before when the birthday is a day off."""
    # given birthdays today, on Wednesday, on two Saturdays and at the end of the window
    days = {
        "今天": dt.date(1980, 11, 30),
        "周三": dt.date(1975, 12, 2),
        "周六": dt.date(1990, 12, 5),
        "圣诞后": dt.date(1988, 12, 26),
        "月底": dt.date(1970, 12, 29),
    }
    customers = {name: make_customer(name=name, birthday=day) for name, day in days.items()}
    # when
    births = services.care_list_build(actor=records_officer, kind="birthdays", now=NOW, days=30)
    # then
    due = {f.customer.name: _local(f.due_at) for f in births.followups.select_related("customer")}
    close = dt.time(18)
    assert due == {
        "今天": (dt.date(2026, 11, 30), close),
        "周三": (dt.date(2026, 12, 2), close),
        "周六": (dt.date(2026, 12, 4), close),
        "圣诞后": (dt.date(2026, 12, 25), close),
        "月底": (dt.date(2026, 12, 29), close),
    }
    assert set(births.followups.values_list("purpose", flat=True)) == {"birthday_greeting"}
    assert not births.followups.filter(due_at__lte=NOW).exists()
    assert "12-05" in births.followups.get(customer=customers["周六"]).note


def test_a_customer_greeted_for_her_birthday_is_not_called_again(records_officer, agent):
    """The greeting done, the list built again before the birthday hands her over no second
    call; next year's birthday gets its own."""
    customer = make_customer(name="王女士", birthday=dt.date(1970, 12, 2))
    first = services.care_list_build(actor=records_officer, kind="birthdays", now=NOW, days=7)
    greeting = first.followups.get()
    services.followup_complete(
        actor=agent, followup_id=greeting.pk, outcome="reached", now=at(2026, 12, 1, 10)
    )
    # when: the list is built again, the day before and on the birthday
    again = services.care_list_build(
        actor=records_officer, kind="birthdays", now=at(2026, 12, 1, 11), days=7
    )
    on_the_day = services.care_list_build(
        actor=records_officer, kind="birthdays", now=at(2026, 12, 2, 8), days=1
    )
    # then
    assert (again.customers, again.handed_over) == (1, 0)
    assert (on_the_day.customers, on_the_day.handed_over) == (1, 0)
    assert not FollowUp.objects.open().filter(customer=customer).exists()
    next_year = services.care_list_build(
        actor=records_officer, kind="birthdays", now=at(2027, 11, 29, 9), days=7
    )
    assert next_year.handed_over == 1
    assert _local(next_year.followups.get().due_at) == (dt.date(2027, 12, 2), dt.time(18))


def test_a_birthday_greeting_and_a_key_account_call_are_two_purposes(records_officer, agent):
    """A key account with an open care call still gets her birthday greeting."""
    UserFactory(username="vip", role="vip_specialist")
    key = make_customer(name="大客户", level="key_account", birthday=dt.date(1966, 12, 3))
    services.care_list_build(actor=records_officer, kind="key_accounts", now=NOW)
    births = services.care_list_build(actor=records_officer, kind="birthdays", now=NOW, days=7)
    assert births.handed_over == 1
    assert set(FollowUp.objects.open().filter(customer=key).values_list("purpose", flat=True)) == {
        "member_care",
        "birthday_greeting",
    }


def _per_day(followups) -> dict[tuple[int | None, dt.date], int]:
    counts: dict[tuple[int | None, dt.date], int] = {}
    for f in followups:
        key = (f.assignee_id, _local(f.due_at)[0])
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_key_account_calls_spread_over_the_plans_period_within_capacity(records_officer):
    """40 key accounts, two VIP specialists who make at most 2 such calls a day, a monthly
    plan: the calls are spread evenly over the working days of the next 30 days, each due by
    the close of its day, nobody over capacity, nothing due at once."""
    from kefu.businesstime.selectors import work_calendar_get

    # given
    FollowUpRule.objects.create(
        purpose="member_care", effective_outcomes=["reached"], calls_per_day=2
    )
    FollowUpPlan.objects.create(
        name="大客户月度回访", level="key_account", interval_days=30, assignee_role="vip_specialist"
    )
    specialists = {UserFactory(username=f"vip{i}", role="vip_specialist").pk for i in range(2)}
    for i in range(40):
        make_customer(name=f"大客户{i}", level="key_account")
    # when
    keys = services.care_list_build(actor=records_officer, kind="key_accounts", now=NOW)
    # then
    followups = list(keys.followups.all())
    assert (keys.customers, keys.handed_over, len(followups)) == (40, 40, 40)
    assert {f.assignee_id for f in followups} == specialists
    calendar = work_calendar_get()
    for f in followups:
        day, time = _local(f.due_at)
        assert NOW < f.due_at < at(2026, 12, 30, 0)
        assert calendar.is_workday(day)
        assert time == dt.time(18)
    per_person = _per_day(followups)
    assert max(per_person.values()) <= 2
    per_day: dict[dt.date, int] = {}
    for (_person, day), n in per_person.items():
        per_day[day] = per_day.get(day, 0) + n
    assert len(per_day) >= 18  # 22 working days in the period, 40 calls: about two a day
    assert max(per_day.values()) - min(per_day.values()) <= 1
    assert per_day[dt.date(2026, 11, 30)] == 2  # today's share, due by 18:00


def test_key_accounts_beyond_the_teams_capacity_wait_for_the_next_working_days(records_officer):
    """One specialist, one call a day, a weekly plan, eight key accounts and a call already due
    on Tuesday: one a day, Tuesday skipped, the rest after the week, on working days."""
    FollowUpRule.objects.create(
        purpose="member_care", effective_outcomes=["reached"], calls_per_day=1
    )
    FollowUpPlan.objects.create(
        name="大客户周回访", level="key_account", interval_days=7, assignee_role="vip_specialist"
    )
    vip = UserFactory(username="vip", role="vip_specialist")
    already = _followup(make_customer(name="老客户"), FollowUp.Purpose.MEMBER_CARE, vip)
    FollowUp.objects.filter(pk=already.pk).update(due_at=at(2026, 12, 1, 15))
    for i in range(8):
        make_customer(name=f"大客户{i}", level="key_account")
    keys = services.care_list_build(actor=records_officer, kind="key_accounts", now=NOW)
    days = sorted(_local(f.due_at)[0] for f in keys.followups.all())
    assert days == [
        dt.date(2026, 11, 30),
        dt.date(2026, 12, 2),
        dt.date(2026, 12, 3),
        dt.date(2026, 12, 4),
        dt.date(2026, 12, 7),
        dt.date(2026, 12, 8),
        dt.date(2026, 12, 9),
        dt.date(2026, 12, 10),
    ]


def test_a_list_built_after_hours_starts_the_next_working_day(records_officer):
    UserFactory(username="vip", role="vip_specialist")
    make_customer(name="大客户", level="key_account")
    friday_evening = at(2026, 12, 4, 19)
    keys = services.care_list_build(actor=records_officer, kind="key_accounts", now=friday_evening)
    assert _local(keys.followups.get().due_at) == (dt.date(2026, 12, 7), dt.time(18))


def test_churn_risk_calls_spread_over_the_week(records_officer, agent):
    FollowUpRule.objects.create(
        purpose="churn_rescue", effective_outcomes=["reached"], calls_per_day=3
    )
    for i in range(10):
        lapsed = make_customer(name=f"久未购买{i}")
        customer_touch(customer_id=lapsed.pk, on=dt.date(2026, 7, 1), purchase=True)
    churn = services.care_list_build(actor=records_officer, kind="churn_risk", now=NOW)
    per_day = _per_day(churn.followups.all())
    assert churn.handed_over == 10
    assert max(per_day.values()) <= 3
    assert {day for _person, day in per_day} <= {
        dt.date(2026, 11, 30) + dt.timedelta(d) for d in range(5)
    }


def test_plan_spreads_its_first_round_and_calls_again_after_the_interval(db):
    """The first round of a monthly plan spreads over the month; a customer called comes up
    again when the interval has passed, first in line."""
    vip = UserFactory(username="vip", role="vip_specialist")
    for i in range(44):
        make_customer(name=f"大客户{i}", level="key_account")
    FollowUpPlan.objects.create(
        name="大客户月度回访", level="key_account", interval_days=30, assignee_role="vip_specialist"
    )
    assert services.followup_plans_run(now=NOW) == 44
    first = FollowUp.objects.open()
    assert not first.filter(due_at__lte=NOW).exists()
    assert first.filter(due_at__lt=at(2026, 12, 1, 0)).count() == 2  # 44 calls, 22 days
    assert {f.assignee for f in first} == {vip}
    # when: each call is made on its day, and the plan runs a month after the first day's
    for followup in first:
        FollowUp.objects.filter(pk=followup.pk).update(
            status="done", outcome="reached", completed_at=followup.due_at
        )
    todays = set(
        FollowUp.objects.filter(due_at__lt=at(2026, 12, 1, 0)).values_list("customer", flat=True)
    )
    later = NOW + dt.timedelta(days=31)
    # then: those called on the first day are due again, on the day the plan runs
    assert services.followup_plans_run(now=later) == 2
    again = FollowUp.objects.open()
    assert {f.customer_id for f in again} == todays
    assert {_local(f.due_at) for f in again} == {(dt.date(2026, 12, 31), dt.time(18))}


# --- At most one open follow-up per purpose ----------------------------------------------------


def test_the_database_refuses_a_second_open_follow_up_of_a_purpose(agent):
    from django.db import IntegrityError, transaction

    customer = make_customer()
    _followup(customer, FollowUp.Purpose.CHURN_RESCUE, agent)
    with pytest.raises(IntegrityError), transaction.atomic():
        _followup(customer, FollowUp.Purpose.CHURN_RESCUE, agent)
    # another purpose, or the first one done, leaves room
    _followup(customer, FollowUp.Purpose.MEMBER_CARE, agent)
    FollowUp.objects.filter(purpose="churn_rescue").update(status="done")
    _followup(customer, FollowUp.Purpose.CHURN_RESCUE, agent)


def test_a_second_missed_call_joins_the_open_callback(agent):
    """followup_create for a purpose the customer has open returns that one, due at the earlier
    time, with the new note; a ticket's own follow-ups are the ticket's."""
    customer = make_customer()
    first = services.followup_create(
        actor=None,
        customer=customer,
        purpose="promised_callback",
        due_at=NOW + dt.timedelta(hours=2),
        assignee=agent,
        note="未接来电",
    )
    second = services.followup_create(
        actor=None,
        customer=customer,
        purpose="promised_callback",
        due_at=NOW,
        assignee=None,
        note="通话中断",
        priority=FollowUp.Priority.HIGH,
    )
    assert second.pk == first.pk
    second.refresh_from_db()
    assert (second.due_at, second.priority, second.assignee) == (NOW, 1, agent)
    assert second.note == "未接来电\n通话中断"
    assert FollowUp.objects.open().count() == 1


def test_a_retry_joins_an_open_follow_up_of_the_same_purpose(agent):
    """Not reached: the retry the rule asks for is the customer's one open call of the purpose."""
    customer = make_customer()
    other = _followup(customer, FollowUp.Purpose.SECOND_FOLLOWUP, agent)
    rescue = _followup(customer, FollowUp.Purpose.CHURN_RESCUE, agent)
    services.followup_complete(actor=agent, followup_id=rescue.pk, outcome="reached", now=NOW)
    assert list(FollowUp.objects.open()) == [other]


@pytest.mark.django_db(transaction=True)
def test_two_lists_built_at_once_give_each_customer_one_call():
    """Two records officers build the key-account list at the same moment (two connections):
    the database's constraint lets one open call per customer through."""
    import threading

    from django.db import connections

    officers = [UserFactory(username=f"records{i}", role="records_officer") for i in range(2)]
    UserFactory(username="vip", role="vip_specialist")
    accounts = [make_customer(name=f"大客户{i}", level="key_account") for i in range(30)]
    start = threading.Barrier(2)
    built, errors = [], []

    def build(officer):
        try:
            start.wait(timeout=10)
            built.append(services.care_list_build(actor=officer, kind="key_accounts", now=NOW))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=build, args=(officer,)) for officer in officers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(built) == 2
    assert sum(c.handed_over for c in built) == 30
    open_calls = FollowUp.objects.open().filter(purpose="member_care")
    assert sorted(open_calls.values_list("customer_id", flat=True)) == [c.pk for c in accounts]


# --- Calling the customer of a follow-up (issue 10 point 11) -----------------------------------


def test_followup_call_reveals_the_number_for_that_call_only(agent, supervisor):
    from kefu.audit.models import AuditEntry
    from kefu.core.exceptions import Conflict, NotFound

    customer = make_customer(phone="13812345678")
    followup = _followup(customer, FollowUp.Purpose.PROMISED_CALLBACK, agent)
    # the assignee and a supervisor may; the reveal is audited for this follow-up
    assert services.followup_call(actor=agent, followup_id=followup.pk).value == "+8613812345678"
    services.followup_call(actor=supervisor, followup_id=followup.pk, ip="10.0.0.8")
    entries = AuditEntry.objects.filter(action="customer.contact_revealed").order_by("id")
    assert [(e.actor, e.changes["call_for"], e.ip) for e in entries] == [
        (agent, {"type": "followup", "id": followup.pk}, None),
        (supervisor, {"type": "followup", "id": followup.pk}, "10.0.0.8"),
    ]
    # another agent does not see it; a done follow-up is no reason to call
    with pytest.raises(NotFound):
        services.followup_call(
            actor=UserFactory(username="x", role="agent"), followup_id=followup.pk
        )
    FollowUp.objects.filter(pk=followup.pk).update(status="done")
    with pytest.raises(Conflict):
        services.followup_call(actor=agent, followup_id=followup.pk)
    assert entries.count() == 2
