"""Complaint summaries (客诉周报 / 月报): the page, and its .xlsx built as a background job.

parse (period and start from the query) → gate (tickets.view_ticket_report) → reports → render.
"""

import datetime as dt
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from kefu.core.forms import FilterDateField
from kefu.core.permissions import require_perm
from kefu.jobs.views import job_started_response
from kefu.tickets import reports
from kefu.tickets.jobs import complaint_summary_export_start
from kefu.tickets.reports import MONTH, WEEK, Period

TEMPLATE = "tickets/report_complaints.html"

TOTAL_LABELS = {
    "opened": _("Complaints opened"),
    "resolved": _("Resolved within the period"),
    "closed": pgettext_lazy("ticket status", "Closed"),
    "still_open": _("Still open"),
    "reopened": _("Reopened"),
    "major": _("Major complaints"),
    "escalated_externally": _("Taken outside (consumer association, media…)"),
    "avg_hours": _("Average time to resolve (working hours)"),
    "median_hours": _("Median time to resolve (working hours)"),
    "sla_met_percent": _("Resolved on time (%)"),
    "cost": _("Cost of resolutions (yuan)"),
    "acceptance_percent": _("Accepted by the customer (%)"),
}
# For these a rise is good news; for the others it is bad news (or neither).
RISE_IS_GOOD = {"resolved", "closed", "sla_met_percent", "acceptance_percent"}
NEUTRAL = {"opened"}


class ReportPeriodForm(forms.Form):
    period = forms.ChoiceField(
        label=_("Period"), choices=[(WEEK, _("Week")), (MONTH, _("Month"))], required=False
    )
    start = FilterDateField(
        label=_("Starting"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}),
    )


def _period_from(data: QueryDict, now: dt.datetime) -> tuple[ReportPeriodForm, Period]:
    """The period asked for; this week when nothing (or nothing valid) is asked."""
    form = ReportPeriodForm(data)
    kind, day = WEEK, timezone.localdate(now)
    if form.is_valid():
        kind = form.cleaned_data["period"] or WEEK
        day = form.cleaned_data["start"] or day
    return form, reports.period_of(kind, day)


def _query(period: Period) -> str:
    return urlencode({"period": period.kind, "start": period.start.isoformat()})


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    return f"{value:,}"


def _change(name: str, delta: Any) -> tuple[str, str]:
    """The change as text (+3, −1.5) and how to colour it (better / worse / "")."""
    if delta is None:
        return "—", ""
    if not delta:
        return "0", ""
    text = _number(abs(delta))
    sign = "+" if delta > 0 else "−"
    if name in NEUTRAL:
        tone = ""
    elif (delta > 0) == (name in RISE_IS_GOOD):
        tone = "better"
    else:
        tone = "worse"
    return f"{sign}{text}", tone


@login_required
@require_GET
def complaint_summary_page(request: HttpRequest) -> HttpResponse:
    require_perm(request.user, "tickets.view_ticket_report")
    now = timezone.now()
    form, period = _period_from(request.GET, now)
    summary = reports.complaint_summary(period=period.kind, start=period.start, now=now)
    totals = []
    for name, current, previous, delta in summary.total_rows():
        change, tone = _change(name, delta)
        totals.append(
            {
                "name": name,
                "label": TOTAL_LABELS[name],
                "current": _number(current),
                "previous": _number(previous),
                "change": change,
                "tone": tone,
            }
        )
    following = period.next()
    today = timezone.localdate(now)
    other_kind = MONTH if period.kind == WEEK else WEEK
    context = {
        "form": form,
        "summary": summary,
        "totals": totals,
        "breakdowns": [
            (_("By category"), summary.by_top_category, "top-category"),
            (_("By category (full path)"), summary.by_category, "category"),
            (_("By root cause"), summary.by_root_cause, "root-cause"),
            (_("By store"), summary.by_store, "store"),
            (_("By resolution"), summary.by_resolution_type, "resolution-type"),
            (_("By severity"), summary.by_severity, "severity"),
        ],
        "previous_query": _query(period.previous()),
        "next_query": _query(following) if following.start <= today else "",
        "switch_query": _query(reports.period_of(other_kind, period.start)),
        "current_query": _query(reports.period_of(period.kind, today)),
        "active_nav": "reports",
    }
    return render(request, TEMPLATE, context)


@login_required
@require_http_methods(["GET", "POST"])
def complaint_summary_export(request: HttpRequest) -> HttpResponse:
    """POST: build the period's workbook in the background and go to the job's page, where it
    is downloaded. GET (an old link): the summary page of that period."""
    require_perm(request.user, "tickets.view_ticket_report")
    summary_url = reverse("ticket_reports:complaint_summary")
    if request.method == "GET":
        return redirect(f"{summary_url}?{request.GET.urlencode()}")
    now = timezone.now()
    form, period = _period_from(request.POST, now)
    if form.errors:
        # The page says what is wrong; nothing other than what was asked is exported.
        return redirect(f"{summary_url}?{request.POST.urlencode()}")
    job = complaint_summary_export_start(
        actor=request.user,
        period=period.kind,
        start=period.start,
        ip=request.META.get("REMOTE_ADDR"),
        now=now,
    )
    return job_started_response(request, job)
