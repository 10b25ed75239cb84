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
