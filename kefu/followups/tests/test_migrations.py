"""The migrations that make "at most one open follow-up per purpose" hold on a database that
already has duplicates: they are merged, not refused."""

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from kefu.accounts.tests.factories import UserFactory
from kefu.customers.tests.factories import make_customer
from kefu.followups.models import FollowUp

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("followups", "0002_followupplan_followuprule_followup_attempt_and_more")
AFTER = ("followups", "0004_one_open_followup_per_purpose")
DUE = dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    executor.loader.build_graph()
    return executor.loader.project_state([target]).apps


def test_open_duplicates_are_merged_and_birthday_calls_get_their_purpose():
    # given a database from before the constraint, with the duplicates the old lists made
    agent = UserFactory(username="agent", role="agent")
    other = UserFactory(username="other", role="agent")
    wang, li = make_customer(name="王女士"), make_customer(name="李先生")
    old = _migrate(BEFORE)
    OldFollowUp = old.get_model("followups", "FollowUp")
    OldCareList = old.get_model("followups", "CareList")
    births = OldCareList.objects.create(kind="birthdays", built_at=DUE)

    def make(customer, purpose, hours, **extra):
        return OldFollowUp.objects.create(
            customer_id=customer.pk,
            purpose=purpose,
            due_at=DUE + dt.timedelta(hours=hours),
            **extra,
        )

    first = make(wang, "member_care", 1, note="大客户回访", assignee_id=agent.pk)
    second = make(wang, "member_care", 0, note="会员关怀", priority=1, assignee_id=other.pk)
    third = make(wang, "member_care", 2, note="会员关怀")
    birthday = make(wang, "member_care", 5, note="12-02 生日", care_list=births)
    retry = make(wang, "member_care", 9, note="12-02 生日", previous=birthday)
    done = make(li, "churn_rescue", -5, status="done")
    still_open = make(li, "churn_rescue", 3)
    # when
    _migrate(AFTER)
    # then: the one due first is kept, with the others' notes and the higher priority
    rows = {f.pk: f for f in FollowUp.objects.all()}
    kept = rows[second.pk]
    assert (kept.status, kept.priority, kept.assignee_id) == ("open", 1, other.pk)
    assert kept.note == "会员关怀\n大客户回访"
    assert rows[first.pk].status == rows[third.pk].status == "cancelled"
    # the birthday list's call and its retry are birthday greetings; only one stays open
    assert rows[birthday.pk].purpose == rows[retry.pk].purpose == "birthday_greeting"
    assert [rows[birthday.pk].status, rows[retry.pk].status] == ["open", "cancelled"]
    # a customer without duplicates keeps her follow-ups as they were
    assert (rows[done.pk].status, rows[still_open.pk].status) == ("done", "open")
    assert FollowUp.objects.open().filter(customer=wang).count() == 2
