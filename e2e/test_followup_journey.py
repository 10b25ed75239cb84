"""An agent's day of follow-ups in a real browser against a real server: the overdue callback
logged as not reached (the retry the rule schedules shows up), a member-care call logged as
reached, a store visit booked for a customer from the follow-up list, and what is left.

Elements are found by stable attributes (name, id, data-testid, data-group), never by visible
text: the UI is Chinese by default and its wording may change.
"""

import datetime as dt
import os
import re
import time

import pytest
from django.utils import timezone

from kefu.accounts.tests.factories import StoreFactory, UserFactory
from kefu.appointments.models import Appointment, OpeningHours, StoreSchedule
from kefu.customers.tests.factories import make_customer
from kefu.followups.models import FollowUp
from kefu.followups.services import followup_create

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the e2e fixtures say why
    if os.environ.get("KEFU_E2E_REQUIRED") == "1":
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=10_000)


def _end_of_today() -> dt.datetime:
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    return dt.datetime.combine(tomorrow, dt.time.min, tzinfo=timezone.get_current_timezone())


def _not_at_midnight() -> None:
    """The journey needs a little of today left for a call due today: close to local midnight,
    wait for the new day (at most fifteen minutes, on a rare run)."""
    left = _end_of_today() - timezone.now()
    if left < dt.timedelta(minutes=15):
        time.sleep(left.total_seconds() + 1)


def _log_call(page, followup: FollowUp, outcome: str, notes: str = "") -> None:
    """Open the row's "log the call" form, fill it and submit it (htmx posts it)."""
    panel = page.locator(f"#followup-{followup.pk} [data-testid=log-call]")
    panel.locator("summary").click()
    panel.locator("select[name=outcome]").select_option(outcome)
    if notes:
        panel.locator("textarea[name=outcome_note]").fill(notes)
    with page.expect_response(lambda r: f"/followups/{followup.pk}/complete/" in r.url) as info:
        panel.locator("button[type=submit]").click()
    assert info.value.ok


def test_agent_works_through_the_days_follow_ups(page, log_in, shot):
    # given an agent, a store taking appointments and three follow-ups relative to now
    _not_at_midnight()
    agent = UserFactory(username="xiaoli", role="agent", display_name="小李")
    store = StoreFactory(code="S001", name="人民路店")
    StoreSchedule.objects.create(store=store, slot_minutes=60, capacity=3)
    for weekday in range(7):
        OpeningHours.objects.create(
            store=store, weekday=weekday, opens_at=dt.time(9), closes_at=dt.time(18)
        )
    zhang = make_customer(name="张三", phone="13812341234")
    li = make_customer(name="李四", phone="13900005678", level="vip")
    wang = make_customer(name="王五", phone="13700002222")
    now = timezone.now()
    overdue = followup_create(
        actor=None,
        customer=zhang,
        purpose=FollowUp.Purpose.PROMISED_CALLBACK,
        due_at=now - dt.timedelta(hours=2),
        assignee=agent,
        note="答应下午两点前回电，告知退款进度",
    )
    FollowUp.objects.filter(pk=overdue.pk).update(priority=FollowUp.Priority.HIGH)
    care = followup_create(
        actor=None,
        customer=li,
        purpose=FollowUp.Purpose.MEMBER_CARE,
        due_at=now + min(dt.timedelta(hours=1), (_end_of_today() - now) / 2),
        assignee=agent,
        note="会员生日关怀，告知生日礼领取方式",
    )
    upcoming = followup_create(
        actor=None,
        customer=wang,
        purpose=FollowUp.Purpose.SATISFACTION,
        due_at=now + dt.timedelta(days=3),
        assignee=agent,
        note="满意度回访",
    )

    # 1. the agent opens the day: each follow-up in its group, the phone masked
    log_in(page, "xiaoli")
    page.goto("/followups/")
    expect(page.locator(f"[data-group=overdue] #followup-{overdue.pk}")).to_be_visible()
    expect(page.locator(f"[data-group=overdue] #followup-{overdue.pk}")).to_have_attribute(
        "data-priority", "1"
    )
    expect(page.locator(f"[data-group=today] #followup-{care.pk}")).to_be_visible()
    expect(page.locator(f"[data-group=upcoming] #followup-{upcoming.pk}")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("13812341234")
    expect(page.locator(f"#followup-{overdue.pk}")).to_contain_text("138****1234")
    shot(page, "followups-1-the-day")

    # 2. the overdue callback: not reached; the rule schedules a retry, the row says when
    _log_call(page, overdue, "not_reached")
    done = page.locator(f"#followup-{overdue.pk}[data-testid=followup-done]")
    expect(done).to_be_visible()
    retry = FollowUp.objects.get(previous=overdue)
    assert (retry.status, retry.attempt, retry.assignee) == ("open", 2, agent)
    expect(done).to_have_attribute("data-next", str(retry.pk))
    retry_group = "today" if retry.due_at < _end_of_today() else "upcoming"

    # 3. the member-care call: reached, with notes; the row goes
    _log_call(page, care, "reached", "已告知生日礼可在门店领取，顾客表示本周末到店")
    expect(page.locator(f"#followup-{care.pk}")).to_have_count(0)
    care.refresh_from_db()
    assert care.status == FollowUp.Status.DONE
    assert care.outcome == FollowUp.Outcome.REACHED
    assert care.outcome_note == "已告知生日礼可在门店领取，顾客表示本周末到店"
    assert not FollowUp.objects.filter(previous=care).exists()

    # the retry is on the list, where its due time puts it
    page.reload()
    expect(page.locator(f"[data-group={retry_group}] #followup-{retry.pk}")).to_be_visible()
    shot(page, "followups-2-after-the-calls")

    # 4. from the retry's row, a store visit is booked for the customer
    page.locator(f"#followup-{retry.pk} [data-testid=book-visit]").click()
    page.wait_for_url(re.compile(r"/appointments/book/\?customer="))
    expect(page.get_by_test_id("customer-chosen")).to_contain_text("张三")
    with page.expect_response(lambda r: "/appointments/book/?" in r.url and "store=" in r.url):
        page.select_option("select[name=store]", str(store.pk))
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    with page.expect_response(lambda r: f"day={tomorrow.isoformat()}" in r.url):
        page.locator("input[name=day]").fill(tomorrow.isoformat())  # fires input and change
    slot = page.locator("#slot-picker [data-slot='10:00'] input[name=starts_at]")
    expect(slot).to_be_enabled()
    slot.check()
    page.fill("input[name=purpose]", "到店领取生日礼并验光")
    shot(page, "followups-3-booking")
    with page.expect_navigation(url=re.compile(r"/followups/$")):
        page.click("#book-form button[type=submit]")
    appointment = Appointment.objects.get()
    assert appointment.customer == zhang
    assert appointment.store == store
    assert appointment.source == Appointment.Source.PHONE
    assert timezone.localtime(appointment.starts_at).hour == 10
    assert timezone.localdate(appointment.starts_at) == tomorrow
    assert appointment.booked_by == agent

    # then the list shows what is left: the retry and the upcoming call
    expect(page.locator(f"[data-group={retry_group}] #followup-{retry.pk}")).to_be_visible()
    expect(page.locator(f"[data-group=upcoming] #followup-{upcoming.pk}")).to_be_visible()
    expect(page.locator(f"#followup-{overdue.pk}")).to_have_count(0)
    expect(page.locator(f"#followup-{care.pk}")).to_have_count(0)
    expect(page.locator("[data-group=overdue] tbody tr")).to_have_count(0)
    shot(page, "followups-4-what-is-left")


def test_agent_calls_a_customer_back_from_the_day_page(page, log_in, shot):
    """The day page shows the phone masked; the agent presses Call on her overdue callback: the
    number comes up for that call as a tel: link, the "log the call" form opens, the reveal is in
    the audit log with the follow-up it was for; logged, the row goes and the list stays masked."""
    from kefu.audit.models import AuditEntry

    # given an agent with an overdue promised callback and another customer's call later
    agent = UserFactory(username="xiaoli", role="agent", display_name="小李")
    zhang = make_customer(name="张三", phone="13812341234")
    li = make_customer(name="李四", phone="13900005678")
    now = timezone.now()
    callback = followup_create(
        actor=None,
        customer=zhang,
        purpose=FollowUp.Purpose.PROMISED_CALLBACK,
        due_at=now - dt.timedelta(hours=1),
        assignee=agent,
        note="答应回电告知退款进度",
    )
    later = followup_create(
        actor=None,
        customer=li,
        purpose=FollowUp.Purpose.SATISFACTION,
        due_at=now + dt.timedelta(days=2),
        assignee=agent,
        note="满意度回访",
    )

    # 1. the day: both rows, numbers masked, no tel: link anywhere
    log_in(page, "xiaoli")
    page.goto("/followups/")
    row = page.locator(f"#followup-{callback.pk}")
    expect(row).to_contain_text("138****1234")
    expect(page.locator("body")).not_to_contain_text("13812341234")
    assert page.locator("a[href^='tel:']").count() == 0
    assert not AuditEntry.objects.filter(action="customer.contact_revealed").exists()

    # 2. Call: the number for this call, the log form open, the reveal audited
    with page.expect_response(lambda r: f"/followups/{callback.pk}/call/" in r.url) as info:
        row.get_by_test_id("call").click()
    assert info.value.ok
    link = page.locator(f"#followup-{callback.pk} [data-testid=call-link]")
    expect(link).to_have_attribute("href", "tel:+8613812341234")
    expect(link).to_contain_text("1234")
    expect(page.locator(f"#followup-{callback.pk} [data-testid=log-call]")).to_have_attribute(
        "open", ""
    )
    expect(page.locator(f"#followup-{later.pk}")).to_contain_text("139****5678")
    expect(page.locator("body")).not_to_contain_text("13900005678")
    shot(page, "followups-call-1-number-shown")
    entry = AuditEntry.objects.get(action="customer.contact_revealed")
    assert (entry.actor, entry.target_id) == (agent, str(zhang.pk))
    assert entry.changes["call_for"] == {"type": "followup", "id": callback.pk}
    assert entry.ip == "127.0.0.1"

    # 3. the call is logged from the form already open; the row goes
    panel = page.locator(f"#followup-{callback.pk} [data-testid=log-call]")
    panel.locator("select[name=outcome]").select_option("reached")
    panel.locator("textarea[name=outcome_note]").fill("已回电，退款三个工作日内到账")
    with page.expect_response(lambda r: f"/followups/{callback.pk}/complete/" in r.url) as done:
        panel.locator("button[type=submit]").click()
    assert done.value.ok
    expect(page.locator(f"#followup-{callback.pk}")).to_have_count(0)
    callback.refresh_from_db()
    assert (callback.status, callback.outcome) == ("done", "reached")

    # then the list, reloaded, shows no full number again
    page.reload()
    expect(page.locator(f"#followup-{later.pk}")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("13812341234")
    assert page.locator("a[href^='tel:']").count() == 0
    shot(page, "followups-call-2-after-the-call")
