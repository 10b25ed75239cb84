"""Weekly and monthly complaint summaries: exact figures on a fixed set of complaints opened
through the services across two weeks, the week and month boundaries in Asia/Shanghai, the
.xlsx export (audited) and who may see them."""

import datetime as dt
import io
import re
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook

from kefu.accounts.tests.factories import UserFactory
from kefu.audit.models import AuditEntry
from kefu.jobs.models import Job
from kefu.tickets import services
from kefu.tickets.models import Category, RootCause, Ticket
from kefu.tickets.reports import (
    DETAIL_HEADER,
    SHEETS,
    complaint_detail_rows,
    complaint_summary,
    complaint_summary_export,
    period_of,
)
from kefu.tickets.tests.fixtures import at

pytestmark = pytest.mark.django_db

# Week B (the one reported on) is Monday 23 to Sunday 29 November 2026; week A the one before.
WEEK_B = dt.date(2026, 11, 23)
WEEK_A = dt.date(2026, 11, 16)
NOW = at(2026, 11, 30, 12)  # Monday noon after week B


@pytest.fixture
def categories(db):
    quality = Category.objects.create(name="药品质量", position=1)
    return {
        "expired": Category.objects.create(name="过期药品", parent=quality),
        "package": Category.objects.create(name="包装破损", parent=quality),
        "attitude": Category.objects.create(name="服务态度", position=2),
    }


@pytest.fixture
def staff_cause(db):
    return RootCause.objects.create(name="员工服务")


def open_complaint(agent, customer, now, category, *, store=None, severity="normal", **extra):
    data = {
        "type": "complaint",
        "subject": f"客诉 {now:%m-%d %H:%M}",
        "customer": customer.pk,
        "category": category.pk,
        "severity": severity,
        **extra,
    }
    if store is not None:
        data["store"] = store.pk
    return services.ticket_create(actor=agent, data=data, now=now)


def resolve(specialist, ticket, now, kind, cost, cause):
    services.ticket_resolve(
        actor=specialist,
        ticket_id=ticket.pk,
        data={
            "resolution_type": kind,
            "resolution_summary": "已处理",
            "resolution_cost": cost,
            "root_cause": cause.pk,
        },
        now=now,
    )


@pytest.fixture
def complaints(
    agent,
    customer,
    complaint_specialist,
    store,
    other_store,
    categories,
    root_cause,
    staff_cause,
    sla_policies,
):
    """Week B: C1..C4 (C1 at Monday 00:00, C3 at Sunday 23:59); week A: P1 (Sunday 23:59) and
    P2; N1 opens at Monday 00:00 after week B; a consultation in week B is no complaint."""
    spec = complaint_specialist
    # C1: expired medicine at 人民路店, resolved Monday 11:00 (2 working hours), refund 50,
    # accepted on the status page, closed.
    c1 = open_complaint(agent, customer, at(2026, 11, 23, 0, 0), categories["expired"], store=store)
    services.ticket_start(actor=spec, ticket_id=c1.pk, now=at(2026, 11, 23, 9))
    resolve(spec, c1, at(2026, 11, 23, 11), "refund", "50", root_cause)
    services.ticket_record_acceptance(
        actor=None, ticket_id=c1.pk, accepted=True, via="status_page", now=at(2026, 11, 23, 12)
    )
    services.ticket_close(actor=spec, ticket_id=c1.pk, now=at(2026, 11, 23, 14))

    # C2: major, damaged package at 解放路店, taken to the consumer association; resolved
    # Wednesday 10:00, rejected and reopened, resolved again Thursday 12:00 (17 working hours,
    # past the 24-hour target restarted at the reopening), compensation 200.
    c2 = open_complaint(
        agent,
        customer,
        at(2026, 11, 24, 10),
        categories["package"],
        store=other_store,
        severity="major",
    )
    services.ticket_start(actor=spec, ticket_id=c2.pk, now=at(2026, 11, 24, 10, 5))
    services.ticket_escalate_external(
        actor=spec,
        ticket_id=c2.pk,
        body="consumer_association",
        reported_on="2026-11-24",
        now=at(2026, 11, 24, 15),
    )
    resolve(spec, c2, at(2026, 11, 25, 10), "compensation", "200", root_cause)
    services.ticket_record_acceptance(
        actor=None, ticket_id=c2.pk, accepted=False, note="赔偿太少", now=at(2026, 11, 25, 11)
    )
    resolve(spec, c2, at(2026, 11, 26, 12), "compensation", "200", root_cause)

    # C3: rude staff at 人民路店, opened Sunday 23:59, still open.
    c3 = open_complaint(
        agent, customer, at(2026, 11, 29, 23, 59), categories["attitude"], store=store
    )
    # C4: rude staff, no store, resolved Wednesday 14:00 → 17:00 (3 hours), accepted by phone.
    c4 = open_complaint(agent, customer, at(2026, 11, 25, 14), categories["attitude"])
    services.ticket_start(actor=spec, ticket_id=c4.pk, now=at(2026, 11, 25, 14))
    resolve(spec, c4, at(2026, 11, 25, 17), "explanation", "0", staff_cause)
    services.ticket_record_acceptance(
        actor=agent, ticket_id=c4.pk, accepted=True, now=at(2026, 11, 25, 17, 30)
    )

    # Week A: P1 at Sunday 23:59 at 人民路店, still open and past its target by NOW; P2
    # resolved in 3 working hours.
    p1 = open_complaint(
        agent, customer, at(2026, 11, 22, 23, 59), categories["expired"], store=store
    )
    p2 = open_complaint(agent, customer, at(2026, 11, 16, 9), categories["attitude"])
    services.ticket_start(actor=spec, ticket_id=p2.pk, now=at(2026, 11, 16, 9))
    resolve(spec, p2, at(2026, 11, 16, 12), "explanation", "0", staff_cause)

    # The week after, and a consultation that is no complaint.
    n1 = open_complaint(agent, customer, at(2026, 11, 30, 0, 0), categories["expired"])
    services.ticket_create(
        actor=agent,
        data={"type": "consultation", "subject": "营业时间", "customer": customer.pk},
        now=at(2026, 11, 24, 9),
    )
    return {"c1": c1, "c2": c2, "c3": c3, "c4": c4, "p1": p1, "p2": p2, "n1": n1}


def by_label(rows):
    return {row.label: row for row in rows}


# --- Periods --------------------------------------------------------------------------------


def test_periods_are_monday_to_sunday_and_calendar_months():
    assert period_of("week", dt.date(2026, 11, 29)).start == WEEK_B  # a Sunday
    assert period_of("week", WEEK_B).end == dt.date(2026, 11, 30)
    assert period_of("week", WEEK_B).begins_at == at(2026, 11, 23)
    assert period_of("week", WEEK_B).previous().start == WEEK_A
    month = period_of("month", dt.date(2026, 12, 31))
    assert (month.start, month.end) == (dt.date(2026, 12, 1), dt.date(2027, 1, 1))
    assert month.previous().start == dt.date(2026, 11, 1)


# --- The weekly summary -----------------------------------------------------------------------


def test_weekly_totals_are_exact(complaints):
    summary = complaint_summary(period="week", start=WEEK_B, now=NOW)
    t = summary.totals
    assert t.opened == 4  # C1 (Monday 00:00) … C3 (Sunday 23:59); not P1 nor N1
    assert t.resolved == 3
    assert t.closed == 1
    assert t.still_open == 1
    assert t.reopened == 1
    assert t.major == 1
    assert t.escalated_externally == 1
    assert t.avg_hours == pytest.approx(7.33)  # (2 + 17 + 3) / 3
    assert t.median_hours == 3
    assert (t.sla_met, t.sla_missed, t.sla_met_percent) == (2, 1, 66.7)
    assert t.cost == Decimal("250.00")
    assert (t.answers, t.accepted, t.acceptance_percent) == (3, 2, 66.7)

    p = summary.previous_totals
    assert (p.opened, p.resolved, p.still_open) == (2, 1, 1)
    assert (p.avg_hours, p.median_hours) == (3, 3)
    assert p.sla_met_percent == 50.0  # P2 on time; P1 open past its target
    assert p.acceptance_percent is None
    assert p.cost == Decimal("0.00")

    assert summary.deltas["opened"] == 2
    assert summary.deltas["resolved"] == 2
    assert summary.deltas["sla_met_percent"] == pytest.approx(16.7)
    assert summary.deltas["cost"] == Decimal("250.00")
    assert summary.deltas["acceptance_percent"] is None


def test_weekly_breakdowns_by_category_cause_store_resolution_and_severity(complaints):
    summary = complaint_summary(period="week", start=WEEK_B, now=NOW)

    top = by_label(summary.by_top_category)
    assert set(top) == {"药品质量", "服务态度"}
    assert (top["药品质量"].count, top["药品质量"].previous, top["药品质量"].delta) == (2, 1, 1)
    assert top["药品质量"].cost == Decimal("250.00")
    assert top["药品质量"].share == 50.0
    assert (top["服务态度"].count, top["服务态度"].resolved) == (2, 1)

    paths = by_label(summary.by_category)
    assert paths["药品质量 › 过期药品"].count == 1
    assert paths["药品质量 › 过期药品"].previous == 1
    assert paths["药品质量 › 包装破损"].count == 1
    assert paths["药品质量 › 包装破损"].previous == 0
    assert paths["服务态度"].count == 2

    causes = {row.key: row for row in summary.by_root_cause}
    quality = RootCause.objects.get(name="产品质量").pk
    staff = RootCause.objects.get(name="员工服务").pk
    assert (causes[quality].count, causes[quality].cost) == (2, Decimal("250.00"))
    assert (causes[staff].count, causes[staff].previous) == (1, 1)
    assert causes[None].count == 1  # C3, not resolved yet
    assert summary.by_root_cause[0].key == quality  # most complaints first

    stores = by_label(summary.by_store)
    assert (stores["人民路店"].count, stores["人民路店"].previous) == (2, 1)
    assert stores["解放路店"].count == 1
    assert sum(r.count for r in summary.by_store) == 4

    kinds = {row.key: row.count for row in summary.by_resolution_type}
    assert kinds == {"refund": 1, "compensation": 1, "explanation": 1, "": 1}
    assert [(r.key, r.count) for r in summary.by_severity] == [("normal", 3), ("major", 1)]


def test_the_week_boundary_is_midnight_in_shanghai(complaints):
    """Sunday 23:59 belongs to the week it ends; Monday 00:00 starts the next one."""
    numbers = {r.number for r in complaint_detail_rows(period="week", start=WEEK_B)}
    assert complaints["c1"].number in numbers  # Monday 00:00
    assert complaints["c3"].number in numbers  # Sunday 23:59
    assert complaints["p1"].number not in numbers  # the Sunday before, 23:59
    assert complaints["n1"].number not in numbers  # the Monday after, 00:00
    week_a = {r.number for r in complaint_detail_rows(period="week", start=WEEK_A)}
    assert week_a == {complaints["p1"].number, complaints["p2"].number}
    week_c = complaint_summary(period="week", start=dt.date(2026, 11, 30), now=NOW)
    assert week_c.totals.opened == 1


def test_monthly_summary_covers_the_calendar_month(complaints):
    summary = complaint_summary(period="month", start=dt.date(2026, 11, 15), now=NOW)
    assert summary.period.start == dt.date(2026, 11, 1)
    assert summary.totals.opened == 7  # both weeks and Monday 30 November
    assert summary.previous_totals.opened == 0
    assert summary.deltas["opened"] == 7
    top = by_label(summary.by_top_category)
    assert (top["药品质量"].count, top["服务态度"].count) == (4, 3)
    assert complaint_summary(period="month", start=dt.date(2026, 12, 1), now=NOW).totals.opened == 0


def test_detail_rows_name_the_customer_and_the_working_hours(complaints):
    rows = {r.number: r for r in complaint_detail_rows(period="week", start=WEEK_B)}
    c2 = rows[complaints["c2"].number]
    assert c2.customer_name == "张三"
    assert c2.category == "药品质量 › 包装破损"
    assert c2.working_hours == 17
    assert c2.cost == Decimal("200.00")
    assert rows[complaints["c3"].number].working_hours is None


def test_the_summary_counts_in_the_database(complaints, agent, customer, categories):
    """The number of queries does not grow with the number of complaints."""
    with CaptureQueriesContext(connection) as before:
        complaint_summary(period="week", start=WEEK_B, now=NOW)
    for hour in (10, 11, 15):
        open_complaint(agent, customer, at(2026, 11, 27, hour), categories["package"])
    with CaptureQueriesContext(connection) as after:
        summary = complaint_summary(period="week", start=WEEK_B, now=NOW)
    assert summary.totals.opened == 7
    assert len(after.captured_queries) == len(before.captured_queries)


def test_an_unknown_period_is_refused():
    from kefu.core.exceptions import ValidationFailed

    with pytest.raises(ValidationFailed) as refused:
        complaint_summary(period="year", start=WEEK_B, now=NOW)
    assert "period" in refused.value.errors


# --- The workbook ---------------------------------------------------------------------------


def test_the_export_is_a_workbook_with_chinese_sheets_and_an_audit_entry(
    complaints, complaint_specialist
):
    content, filename = complaint_summary_export(
        actor=complaint_specialist,
        period="week",
        start=dt.date(2026, 11, 25),
        now=NOW,
        ip="10.0.0.9",
    )
    assert filename == "客诉周报_2026-11-23.xlsx"
    book = load_workbook(io.BytesIO(content))
    assert book.sheetnames == SHEETS == ["总览", "按类别", "按原因", "按门店", "明细"]

    detail = book["明细"]
    header = [cell.value for cell in detail[1]]
    assert header == DETAIL_HEADER
    assert all(cell.font.bold for cell in detail[1])
    assert detail.column_dimensions["A"].width == 13
    rows = {row[0]: row for row in detail.iter_rows(min_row=2, values_only=True)}
    assert len(rows) == 4
    c2 = rows[complaints["c2"].number]
    assert c2[1] == at(2026, 11, 24, 10).replace(tzinfo=None)  # Shanghai wall-clock time
    assert c2[2:8] == ("张三", "药品质量 › 包装破损", "重大", "已解决", "产品质量", "赔偿")
    assert c2[8] == 200
    assert c2[11] == 17
    assert "13812341234" not in {str(v) for row in rows.values() for v in row}

    overview = {row[0]: row[1:] for row in book["总览"].iter_rows(values_only=True) if row[0]}
    assert overview["受理客诉(件)"] == (4, 2, 2)
    assert overview["统计周期"][0] == "2026-11-23 至 2026-11-29"
    assert overview["赔偿/处理费用合计(元)"][0] == 250
    assert all(cell.font.bold for cell in book["总览"][1])

    by_category = {row[0]: row for row in book["按类别"].iter_rows(values_only=True)}
    assert by_category["一级类别"][1] == "件数"  # the header
    assert by_category["药品质量"][1:3] == (2, 50.0)
    assert by_category["药品质量 › 包装破损"][1] == 1
    causes = {row[0]: row[1] for row in book["按原因"].iter_rows(values_only=True)}
    assert causes["产品质量"] == 2
    stores = {row[0]: row[1] for row in book["按门店"].iter_rows(values_only=True)}
    assert stores["人民路店"] == 2

    entry = AuditEntry.objects.get(action="tickets.report_exported")
    assert entry.actor == complaint_specialist
    assert (entry.target_type, entry.target_id) == ("complaint_summary", "week:2026-11-23")
    assert entry.changes["complaints"] == 4
    assert entry.ip == "10.0.0.9"


def test_a_formula_in_a_name_stays_text(agent, complaint_specialist, categories):
    from kefu.customers.tests.factories import make_customer

    sly = make_customer(name="=HYPERLINK(1)")
    open_complaint(agent, sly, at(2026, 11, 24, 10), categories["expired"])
    content, _name = complaint_summary_export(
        actor=complaint_specialist, period="month", start=WEEK_B, now=NOW
    )
    cell = load_workbook(io.BytesIO(content))["明细"]["C2"]
    assert cell.value == "=HYPERLINK(1)"
    assert cell.data_type == "s"


# --- Pages ----------------------------------------------------------------------------------


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def run_jobs(django_capture_on_commit_callbacks):
    """Jobs started inside the block run (in-process, as the worker would) when it ends."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def job_of(response) -> Job:
    match = re.fullmatch(r"/jobs/(\d+)/", response["Location"])
    assert match, response["Location"]
    return Job.objects.get(pk=int(match[1]))


def client_for(user) -> Client:
    client = Client(headers={"accept-language": "en"})
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("agent", 403),
        ("department_handler", 403),
        ("store_manager", 403),
        ("complaint_specialist", 200),
        ("supervisor", 200),
        ("manager", 200),
    ],
)
def test_who_sees_and_exports_the_summary(frozen, store, media, run_jobs, role, expected):
    user = UserFactory(role=role, store=store if role == "store_manager" else None)
    client = client_for(user)
    query = {"period": "week", "start": "2026-11-23"}
    page = client.get(reverse("ticket_reports:complaint_summary"), query)
    with run_jobs():
        export = client.post(reverse("ticket_reports:complaint_export"), query)
    assert page.status_code == expected
    assert export.status_code == (302 if expected == 200 else expected)
    if expected == 200:
        assert job_of(export).status == "succeeded"
    assert AuditEntry.objects.filter(action="tickets.report_exported").exists() == (expected == 200)


def test_anonymous_users_are_sent_to_log_in():
    response = Client().get(reverse("ticket_reports:complaint_summary"))
    assert response.status_code == 302
    assert "/accounts/" in response["Location"]


def test_the_page_shows_the_week_with_links_to_its_neighbours(frozen, complaints, supervisor):
    response = client_for(supervisor).get(
        reverse("ticket_reports:complaint_summary"), {"period": "week", "start": "2026-11-25"}
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "2026-11-23 – 2026-11-29" in page
    assert "?period=week&amp;start=2026-11-16" in page  # previous
    assert "?period=week&amp;start=2026-11-30" in page  # next (it has begun)
    assert "?period=month&amp;start=2026-11-01" in page  # the month view
    assert 'data-total="opened"><td>Complaints opened</td><td>4</td><td>2</td>' in page
    assert "药品质量 › 包装破损" in page
    assert "员工服务" in page
    assert "人民路店" in page


def test_the_page_hides_next_for_a_period_not_begun(frozen, supervisor):
    page = (
        client_for(supervisor)
        .get(reverse("ticket_reports:complaint_summary"), {"period": "week", "start": "2026-11-30"})
        .content.decode()
    )
    assert "start=2026-12-07" not in page
    assert "This period is not over yet" in page


def test_bad_parameters_show_an_error_and_this_week(frozen, supervisor):
    response = client_for(supervisor).get(
        reverse("ticket_reports:complaint_summary"), {"period": "year", "start": "30/11/2026"}
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert 'role="alert"' in page
    assert "2026-11-30 – 2026-12-06" in page  # the week of NOW
    export = client_for(supervisor).post(
        reverse("ticket_reports:complaint_export"), {"period": "year"}
    )
    assert export.status_code == 302
    assert export["Location"].startswith(reverse("ticket_reports:complaint_summary"))
    assert not AuditEntry.objects.filter(action="tickets.report_exported").exists()
    assert not Job.objects.exists()


def test_an_old_export_link_shows_the_summary(frozen, supervisor):
    response = client_for(supervisor).get(
        reverse("ticket_reports:complaint_export"), {"period": "month", "start": "2026-11-23"}
    )
    assert response.status_code == 302
    assert response["Location"] == (
        reverse("ticket_reports:complaint_summary") + "?period=month&start=2026-11-23"
    )
    assert not Job.objects.exists()


def test_the_download_is_an_attachment_with_a_utf8_filename(
    frozen, complaints, manager, media, run_jobs
):
    client = client_for(manager)
    page = client.get(
        reverse("ticket_reports:complaint_summary"), {"period": "month", "start": "2026-11-23"}
    ).content.decode()
    assert '<input type="hidden" name="start" value="2026-11-01">' in page
    with run_jobs():
        started = client.post(
            reverse("ticket_reports:complaint_export"), {"period": "month", "start": "2026-11-23"}
        )
    job = job_of(started)
    assert job.title == "客诉月报_2026-11"
    response = client.get(reverse("jobs:job_download", args=[job.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=utf-8''{quote('客诉月报_2026-11.xlsx')}" in disposition
    book = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    assert book["明细"].max_row == 1 + 7
    entry = AuditEntry.objects.get(action="tickets.report_exported")
    assert entry.target_id == "month:2026-11-01"
    assert entry.actor == manager


def test_complaints_of_other_types_are_left_out(complaints):
    assert Ticket.objects.filter(created_at__gte=at(2026, 11, 23)).count() == 6
    assert complaint_summary(period="week", start=WEEK_B, now=NOW).totals.opened == 4
