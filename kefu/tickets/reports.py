"""Weekly and monthly complaint summaries (客诉周报 / 月报, seed 001 §六 职责三 1–2): the complaints
opened in a period, classified by category, root cause, store, resolution and severity, with
resolution times, SLA attainment, cost, the customers' acceptance and the change since the
previous period; and the same as an .xlsx workbook for the manager.

Periods are Asia/Shanghai calendar dates: a week runs Monday 00:00 to Sunday 24:00, a month
from the 1st. A complaint belongs to the period it was opened in. Its status figures (closed,
still open, SLA outcome, acceptance) are as of `now`, so a past week's summary shows how its
complaints stand today; "resolved" counts those resolved before the period ended.

Counting and grouping run in the database (values().annotate()); only the (opened, resolved)
pairs of the period's resolved complaints are loaded, for working hours on the work calendar.
"""

import datetime as dt
import io
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from kefu.accounts.models import Store, User
from kefu.audit.services import audit_record
from kefu.businesstime.clock import WorkCalendar
from kefu.businesstime.selectors import work_calendar_get
from kefu.core.exceptions import ValidationFailed
from kefu.core.permissions import require_perm
from kefu.tickets.models import Category, ExternalEscalation, RootCause, Ticket, TicketEvent

WEEK, MONTH = "week", "month"
PERIODS = (WEEK, MONTH)
EXPORT_ACTION = "tickets.report_exported"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- Periods ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """[start, end) in local calendar dates."""

    kind: str
    start: dt.date
    end: dt.date

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)

    @property
    def begins_at(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time.min, tzinfo=_tz())

    @property
    def ends_at(self) -> dt.datetime:
        return dt.datetime.combine(self.end, dt.time.min, tzinfo=_tz())

    @property
    def label(self) -> str:
        if self.kind == MONTH:
            return f"{self.start:%Y-%m}"
        return f"{self.start.isoformat()} – {self.last_day.isoformat()}"

    def previous(self) -> "Period":
        return period_of(self.kind, self.start - dt.timedelta(days=1))

    def next(self) -> "Period":
        return period_of(self.kind, self.end)

    def is_running(self, now: dt.datetime) -> bool:
        return self.begins_at <= now < self.ends_at


def _tz() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def period_of(kind: str, day: dt.date) -> Period:
    """The week (Monday to Sunday) or calendar month that contains `day`."""
    if kind == WEEK:
        start = day - dt.timedelta(days=day.weekday())
        return Period(WEEK, start, start + dt.timedelta(days=7))
    if kind == MONTH:
        start = day.replace(day=1)
        return Period(MONTH, start, (start + dt.timedelta(days=32)).replace(day=1))
    raise ValidationFailed({"period": [_("Choose a week or a month.")]})


def complaints_opened_in(period: Period) -> QuerySet[Ticket]:
    return Ticket.objects.complaints().filter(
        created_at__gte=period.begins_at, created_at__lt=period.ends_at
    )


# --- The summary ------------------------------------------------------------------------------


@dataclass
class Totals:
    opened: int = 0
    resolved: int = 0
    closed: int = 0
    still_open: int = 0
    reopened: int = 0
    major: int = 0
    escalated_externally: int = 0
    avg_hours: float | None = None
    median_hours: float | None = None
    sla_met: int = 0
    sla_missed: int = 0
    sla_met_percent: float | None = None
    cost: Decimal = Decimal("0.00")
    answers: int = 0
    accepted: int = 0
    acceptance_percent: float | None = None


# The totals the summary compares with the previous period, in the order the report shows them.
TOTAL_FIELDS = [
    f.name for f in fields(Totals) if f.name not in ("sla_met", "sla_missed", "answers", "accepted")
]


@dataclass
class BreakdownRow:
    key: Any
    label: str
    count: int = 0
    resolved: int = 0
    cost: Decimal = Decimal("0.00")
    share: float = 0.0  # of the period's complaints, %
    previous: int = 0

    @property
    def delta(self) -> int:
        return self.count - self.previous


@dataclass
class ComplaintSummary:
    period: Period
    previous_period: Period
    now: dt.datetime
    totals: Totals
    previous_totals: Totals
    deltas: dict[str, Any] = field(default_factory=dict)
    by_top_category: list[BreakdownRow] = field(default_factory=list)
    by_category: list[BreakdownRow] = field(default_factory=list)
    by_root_cause: list[BreakdownRow] = field(default_factory=list)
    by_store: list[BreakdownRow] = field(default_factory=list)
    by_resolution_type: list[BreakdownRow] = field(default_factory=list)
    by_severity: list[BreakdownRow] = field(default_factory=list)

    @property
    def is_running(self) -> bool:
        return self.period.is_running(self.now)

    def total_rows(self) -> list[tuple[str, Any, Any, Any]]:
        """(name, this period, previous period, change) per total, for tables."""
        return [
            (
                name,
                getattr(self.totals, name),
                getattr(self.previous_totals, name),
                self.deltas[name],
            )
            for name in TOTAL_FIELDS
        ]


def complaint_summary(*, period: str, start: dt.date, now: dt.datetime) -> ComplaintSummary:
    """The complaints opened in the week or month containing `start`, against the one before."""
    current = period_of(period, start)
    previous = current.previous()
    calendar = work_calendar_get()
    cohort, before = complaints_opened_in(current), complaints_opened_in(previous)
    totals = _totals(cohort, current, now=now, calendar=calendar)
    previous_totals = _totals(before, previous, now=now, calendar=calendar)
    summary = ComplaintSummary(
        period=current,
        previous_period=previous,
        now=now,
        totals=totals,
        previous_totals=previous_totals,
        deltas={name: _delta(totals, previous_totals, name) for name in TOTAL_FIELDS},
    )
    opened = totals.opened
    resolved_q = _resolved_by(current.ends_at)

    categories = _category_tree()
    by_category = _grouped(cohort, "category_id", resolved_q)
    prev_category = _grouped(before, "category_id", None)
    summary.by_category = _rows(
        by_category, prev_category, opened, lambda k: categories.path(k) or _("No category")
    )
    summary.by_top_category = _rows(
        _fold(by_category, categories.top),
        _fold(prev_category, categories.top),
        opened,
        lambda k: categories.path(k) or _("No category"),
    )

    causes = dict(RootCause.objects.values_list("pk", "name"))
    summary.by_root_cause = _rows(
        _grouped(cohort, "root_cause_id", resolved_q),
        _grouped(before, "root_cause_id", None),
        opened,
        lambda k: causes.get(k) or _("Not determined yet"),
    )
    current_stores = _grouped(cohort, "store_id", resolved_q)
    previous_stores = _grouped(before, "store_id", None)
    stores = dict(
        Store.objects.filter(pk__in=set(current_stores) | set(previous_stores)).values_list(
            "pk", "name"
        )
    )
    summary.by_store = _rows(
        current_stores, previous_stores, opened, lambda k: stores.get(k) or _("No store")
    )
    resolution_labels = dict(Ticket.ResolutionType.choices)
    summary.by_resolution_type = _rows(
        _grouped(cohort, "resolution_type", resolved_q),
        _grouped(before, "resolution_type", None),
        opened,
        lambda k: resolution_labels.get(k) or _("Not resolved yet"),
    )
    severity_labels = dict(Ticket.Severity.choices)
    severity_rows = _rows(
        _grouped(cohort, "severity", resolved_q),
        _grouped(before, "severity", None),
        opened,
        lambda k: severity_labels.get(k, k),
    )
    order = list(Ticket.Severity.values)
    summary.by_severity = sorted(
        severity_rows, key=lambda r: order.index(r.key) if r.key in order else len(order)
    )
    return summary


def _resolved_by(moment: dt.datetime) -> Q:
    return Q(resolved_at__isnull=False, resolved_at__lt=moment)


def _totals(
    cohort: QuerySet[Ticket], period: Period, *, now: dt.datetime, calendar: WorkCalendar
) -> Totals:
    resolved_q = _resolved_by(period.ends_at)
    externally = Exists(ExternalEscalation.objects.filter(ticket=OuterRef("pk")))
    has_target = Q(resolution_due_at__isnull=False)
    row = cohort.order_by().aggregate(
        opened=Count("id"),
        resolved=Count("id", filter=resolved_q),
        closed=Count("id", filter=Q(status=Ticket.Status.CLOSED)),
        still_open=Count("id", filter=~Q(status__in=Ticket.DONE_STATUSES)),
        reopened=Count("id", filter=Q(reopened_count__gt=0)),
        major=Count("id", filter=Q(severity=Ticket.Severity.MAJOR)),
        escalated_externally=Count("id", filter=Q(externally)),
        sla_met=Count(
            "id",
            filter=has_target
            & Q(resolved_at__isnull=False, resolved_at__lte=F("resolution_due_at")),
        ),
        # Late: resolved after the target, or still open (and not on hold) past it.
        sla_missed=Count(
            "id",
            filter=has_target
            & (
                Q(resolved_at__gt=F("resolution_due_at"))
                | Q(
                    resolved_at__isnull=True,
                    resolution_due_at__lt=now,
                    sla_paused_at__isnull=True,
                )
            ),
        ),
        cost=Sum("resolution_cost"),
    )
    totals = Totals(**{k: v for k, v in row.items() if k != "cost"})
    totals.cost = row["cost"] or Decimal("0.00")
    totals.sla_met_percent = _percent(totals.sla_met, totals.sla_met + totals.sla_missed)

    answers = TicketEvent.objects.filter(
        ticket__in=cohort.values("pk"), kind=TicketEvent.Kind.ACCEPTANCE
    ).aggregate(answers=Count("id"), accepted=Count("id", filter=Q(data__accepted=True)))
    totals.answers, totals.accepted = answers["answers"], answers["accepted"]
    totals.acceptance_percent = _percent(totals.accepted, totals.answers)

    pairs = cohort.filter(resolved_q).values_list("created_at", "resolved_at")
    hours = [_working_hours(calendar, opened, resolved) for opened, resolved in pairs]
    if hours:
        totals.avg_hours = round(statistics.fmean(hours), 2)
        totals.median_hours = round(statistics.median(hours), 2)
    return totals


def _working_hours(calendar: WorkCalendar, start: dt.datetime, end: dt.datetime) -> float:
    return calendar.between(start, end).total_seconds() / 3600


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _delta(current: Totals, previous: Totals, name: str) -> Any:
    a, b = getattr(current, name), getattr(previous, name)
    if a is None or b is None:
        return None
    difference = a - b
    return round(difference, 2) if isinstance(difference, float) else difference


def _grouped(cohort: QuerySet[Ticket], column: str, resolved_q: Q | None) -> dict[Any, dict]:
    """{value of `column`: {count, resolved, cost}} for the cohort, grouped in the database."""
    aggregates: dict[str, Any] = {"count": Count("id")}
    if resolved_q is not None:
        aggregates["resolved"] = Count("id", filter=resolved_q)
        aggregates["cost"] = Sum("resolution_cost")
    rows = cohort.order_by().values(column).annotate(**aggregates)
    return {row.pop(column): row for row in rows}


def _fold(grouped: dict[Any, dict], key_of) -> dict[Any, dict]:
    """Groups merged under a coarser key (subcategories under their top-level category)."""
    folded: dict[Any, dict] = {}
    for key, values in grouped.items():
        target = folded.setdefault(key_of(key), {})
        for name, value in values.items():
            target[name] = (target.get(name) or 0) + (value or 0)
    return folded


def _rows(current: dict, previous: dict, opened: int, label_of) -> list[BreakdownRow]:
    rows = []
    for key in set(current) | set(previous):
        values = current.get(key, {})
        count = values.get("count", 0)
        rows.append(
            BreakdownRow(
                key=key,
                label=str(label_of(key)),
                count=count,
                resolved=values.get("resolved", 0),
                cost=values.get("cost") or Decimal("0.00"),
                share=_percent(count, opened) or 0.0,
                previous=previous.get(key, {}).get("count", 0),
            )
        )
    rows.sort(key=lambda r: (-r.count, -r.previous, r.key is None, r.label))
    return rows


class _CategoryTree:
    """The category table (small) in memory: paths and top-level ancestors by id."""

    def __init__(self, pairs: Iterable[tuple[int, int | None, str]]):
        self.parent: dict[int, int | None] = {}
        self.name: dict[int, str] = {}
        for pk, parent_id, name in pairs:
            self.parent[pk], self.name[pk] = parent_id, name

    def _chain(self, pk: int | None) -> list[int]:
        chain: list[int] = []
        while pk is not None and pk in self.name and pk not in chain:
            chain.append(pk)
            pk = self.parent.get(pk)
        return chain

    def top(self, pk: int | None) -> int | None:
        chain = self._chain(pk)
        return chain[-1] if chain else None

    def path(self, pk: int | None) -> str:
        return " › ".join(self.name[p] for p in reversed(self._chain(pk)))


def _category_tree() -> _CategoryTree:
    return _CategoryTree(Category.objects.values_list("pk", "parent_id", "name"))


# --- The detail rows ----------------------------------------------------------------------------


@dataclass
class DetailRow:
    number: str
    opened_at: dt.datetime
    customer_name: str
    category: str
    severity: str
    status: str
    root_cause: str
    resolution_type: str
    cost: Decimal | None
    acceptance: str
    resolved_at: dt.datetime | None
    working_hours: float | None


def complaint_detail_rows(*, period: str, start: dt.date) -> list[DetailRow]:
    """One row per complaint opened in the period, oldest first; the customer by name only."""
    current = period_of(period, start)
    calendar = work_calendar_get()
    categories = _category_tree()
    rows = (
        complaints_opened_in(current)
        .order_by("created_at", "id")
        .values_list(
            "number",
            "created_at",
            "customer__name",
            "category_id",
            "severity",
            "status",
            "root_cause__name",
            "resolution_type",
            "resolution_cost",
            "acceptance",
            "resolved_at",
        )
    )
    result = []
    for (
        number,
        created_at,
        customer_name,
        category_id,
        severity,
        status,
        root_cause,
        resolution_type,
        cost,
        acceptance,
        resolved_at,
    ) in rows:
        hours = round(_working_hours(calendar, created_at, resolved_at), 2) if resolved_at else None
        result.append(
            DetailRow(
                number=number,
                opened_at=created_at,
                customer_name=customer_name,
                category=categories.path(category_id),
                severity=severity,
                status=status,
                root_cause=root_cause or "",
                resolution_type=resolution_type,
                cost=cost,
                acceptance=acceptance,
                resolved_at=resolved_at,
                working_hours=hours,
            )
        )
    return result


# --- The workbook ---------------------------------------------------------------------------------

# The workbook is the department's Chinese document (as the customer export is): fixed words.
WORDS: dict[str, dict[str, str]] = {
    "severity": {"normal": "一般", "urgent": "紧急", "major": "重大"},
    "status": {
        "new": "新建",
        "assigned": "已分派",
        "in_progress": "处理中",
        "waiting_department": "待部门处理",
        "waiting_customer": "待客户反馈",
        "resolved": "已解决",
        "closed": "已结案",
    },
    "resolution_type": {
        "repair": "维修",
        "exchange": "换货",
        "refund": "退款",
        "compensation": "赔偿",
        "explanation": "解释说明",
        "other": "其他",
        "": "未解决",
    },
    "acceptance": {"": "未答复", "accepted": "认可", "rejected": "不认可"},
}
TOTAL_WORDS = {
    "opened": "受理客诉(件)",
    "resolved": "期内解决(件)",
    "closed": "已结案(件)",
    "still_open": "未解决(件)",
    "reopened": "重新处理(件)",
    "major": "重大客诉(件)",
    "escalated_externally": "外部投诉(消协/媒体等)(件)",
    "avg_hours": "平均解决用时(工作小时)",
    "median_hours": "解决用时中位数(工作小时)",
    "sla_met_percent": "按时解决率(%)",
    "cost": "赔偿/处理费用合计(元)",
    "acceptance_percent": "客户认可率(%)",
}
BREAKDOWN_HEADER = ["件数", "占比(%)", "期内解决", "费用(元)", "上期件数", "增减"]
DETAIL_HEADER = [
    "工单号",
    "受理时间",
    "客户姓名",
    "类别",
    "严重程度",
    "状态",
    "客诉原因",
    "处理方式",
    "费用(元)",
    "客户认可",
    "解决时间",
    "解决用时(工作小时)",
]
DETAIL_WIDTHS = [13, 17, 12, 28, 9, 11, 14, 10, 10, 9, 17, 12]
SHEETS = ["总览", "按类别", "按原因", "按门店", "明细"]


def complaint_summary_xlsx(summary: ComplaintSummary, rows: list[DetailRow]) -> bytes:
    workbook = Workbook()
    overview = workbook.active
    overview.title = SHEETS[0]
    _overview_write(overview, summary)

    by_category = workbook.create_sheet(SHEETS[1])
    line = _breakdown_write(by_category, "一级类别", summary.by_top_category, start=1)
    _breakdown_write(by_category, "类别(完整路径)", summary.by_category, start=line + 2)
    _breakdown_write(workbook.create_sheet(SHEETS[2]), "客诉原因", summary.by_root_cause, start=1)
    _breakdown_write(workbook.create_sheet(SHEETS[3]), "门店", summary.by_store, start=1)

    detail = workbook.create_sheet(SHEETS[4])
    _header(detail, 1, DETAIL_HEADER)
    _widths(detail, DETAIL_WIDTHS)
    detail.freeze_panes = "A2"
    for index, row in enumerate(rows, start=2):
        values = [
            row.number,
            _local(row.opened_at),
            row.customer_name,
            row.category,
            WORDS["severity"].get(row.severity, row.severity),
            WORDS["status"].get(row.status, row.status),
            row.root_cause,
            WORDS["resolution_type"].get(row.resolution_type, row.resolution_type),
            row.cost,
            WORDS["acceptance"].get(row.acceptance, row.acceptance),
            _local(row.resolved_at),
            row.working_hours,
        ]
        _line(detail, index, values)
        detail.cell(row=index, column=2).number_format = "yyyy-mm-dd hh:mm"
        detail.cell(row=index, column=11).number_format = "yyyy-mm-dd hh:mm"
        detail.cell(row=index, column=9).number_format = "0.00"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _overview_write(sheet, summary: ComplaintSummary) -> None:
    _header(sheet, 1, ["指标", "本期", "上期", "增减"])
    _widths(sheet, [30, 24, 24, 10])
    _line(
        sheet,
        2,
        ["统计周期", _period_words(summary.period), _period_words(summary.previous_period), ""],
    )
    line = 3
    for name, current, previous, delta in summary.total_rows():
        _line(sheet, line, [TOTAL_WORDS[name], current, previous, delta])
        line += 1
    line += 1
    for title, key, breakdown in (
        ("处理方式", "resolution_type", summary.by_resolution_type),
        ("严重程度", "severity", summary.by_severity),
    ):
        _header(sheet, line, [title, "件数", "占比(%)", "上期件数"])
        line += 1
        for row in breakdown:
            word = WORDS[key].get(row.key or "", row.label)
            _line(sheet, line, [word, row.count, row.share, row.previous])
            line += 1
        line += 1


def _breakdown_write(sheet, title: str, rows: list[BreakdownRow], *, start: int) -> int:
    """A table with its bold header at row `start`; returns its last row."""
    _header(sheet, start, [title, *BREAKDOWN_HEADER])
    _widths(sheet, [30, 8, 9, 9, 11, 9, 7])
    line = start
    for row in rows:
        line += 1
        _line(
            sheet,
            line,
            [row.label, row.count, row.share, row.resolved, row.cost, row.previous, row.delta],
        )
        sheet.cell(row=line, column=5).number_format = "0.00"
    return line


def _period_words(period: Period) -> str:
    if period.kind == MONTH:
        return f"{period.start.year}年{period.start.month}月"
    return f"{period.start.isoformat()} 至 {period.last_day.isoformat()}"


def _header(sheet, row: int, titles: list[str]) -> None:
    bold = Font(bold=True)
    for column, title in enumerate(titles, start=1):
        sheet.cell(row=row, column=column, value=title).font = bold


def _widths(sheet, widths: list[int]) -> None:
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width


def _line(sheet, row: int, values: list[Any]) -> None:
    for column, value in enumerate(values, start=1):
        cell = sheet.cell(row=row, column=column, value=value)
        if isinstance(value, str) and value.startswith("="):
            cell.data_type = "s"  # text, never a formula the spreadsheet would run


def _local(moment: dt.datetime | None) -> dt.datetime | None:
    """Excel has no time zones: the Shanghai wall-clock time, naive."""
    return moment.astimezone(_tz()).replace(tzinfo=None) if moment else None


def complaint_summary_filename(period: Period) -> str:
    if period.kind == MONTH:
        return f"客诉月报_{period.start:%Y-%m}.xlsx"
    return f"客诉周报_{period.start.isoformat()}.xlsx"


def complaint_summary_export(
    *, actor: User | None, period: str, start: dt.date, now: dt.datetime, ip: str | None = None
) -> tuple[bytes, str]:
    """The summary and its detail rows as an .xlsx and its file name; exports are audited."""
    require_perm(actor, "tickets.view_ticket_report")
    summary = complaint_summary(period=period, start=start, now=now)
    rows = complaint_detail_rows(period=period, start=summary.period.start)
    content = complaint_summary_xlsx(summary, rows)
    audit_record(
        actor=actor,
        action=EXPORT_ACTION,
        target_type="complaint_summary",
        target_id=f"{summary.period.kind}:{summary.period.start.isoformat()}",
        changes={
            "period": summary.period.kind,
            "start": summary.period.start.isoformat(),
            "end": summary.period.last_day.isoformat(),
            "complaints": len(rows),
            "format": "xlsx",
        },
        ip=ip,
    )
    return content, complaint_summary_filename(summary.period)
