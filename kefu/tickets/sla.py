"""SLA clocks of a ticket: due and warning moments per metric, pause and resume, and the state a
list shows. Pure functions over a ticket and a clock; `now` always comes from the caller.

Metrics: first response (until the first reply to the customer), next response (from each
message of the customer until the reply) and resolution (from opening, or reopening, until
resolved). Time counts on the work calendar (working hours, public holidays, make-up workdays)
unless the policy counts wall-clock time; waiting on the customer stops every clock.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from kefu.tickets.models import SlaPolicy, Ticket

FIRST_RESPONSE, NEXT_RESPONSE, RESOLUTION = "first_response", "next_response", "resolution"
METRICS = (FIRST_RESPONSE, NEXT_RESPONSE, RESOLUTION)

OK, WARNING, BREACHED, PAUSED, MET, MISSED, NONE = (
    "ok",
    "warning",
    "breached",
    "paused",
    "met",
    "missed",
    "none",
)


class Clock(Protocol):
    def add(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime: ...

    def between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta: ...


class WallClock:
    """Calendar time, for policies that run around the clock (major complaints)."""

    def add(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        return start + duration

    def between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        return max(end - start, dt.timedelta())


def policy_pick(
    policies: Iterable[SlaPolicy], *, ticket_type: str, severity: str, customer_level: str
) -> SlaPolicy | None:
    """The most specific active policy matching the ticket, then the lowest position."""
    matching = [
        p
        for p in policies
        if p.is_active
        and p.matches(ticket_type=ticket_type, severity=severity, customer_level=customer_level)
    ]
    if not matching:
        return None
    return min(matching, key=lambda p: (-p.specificity, p.position, p.pk or 0))


def _due_field(metric: str) -> str:
    return f"{metric}_due_at"


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def is_pending(ticket: Ticket, metric: str) -> bool:
    """Whether the metric's clock is still running (or paused) for this ticket."""
    if getattr(ticket, _due_field(metric)) is None or not ticket.is_open:
        return False
    if metric == FIRST_RESPONSE:
        return ticket.first_responded_at is None
    return True


def start(ticket: Ticket, metric: str, *, clock: Clock, now: dt.datetime) -> None:
    """Start (or restart) one metric's clock from `now` under the ticket's policy."""
    policy = ticket.sla_policy
    minutes = policy.minutes_for(metric) if policy else None
    marks = dict(ticket.sla_marks)
    if not minutes:
        setattr(ticket, _due_field(metric), None)
        marks.pop(metric, None)
    else:
        total = dt.timedelta(minutes=minutes)
        origin = now
        if ticket.sla_paused_at is not None and ticket.sla_paused_at < now:
            # A clock started while paused runs from the moment the pause ends (resume counts
            # from the pause). One restarted from before the pause (a new policy counted from
            # the opening) keeps the time it ran until the pause.
            origin = ticket.sla_paused_at
        setattr(ticket, _due_field(metric), clock.add(origin, total))
        warn = clock.add(origin, total * policy.warning_percent / 100)
        marks[metric] = {"started_at": _iso(now), "warn_at": _iso(warn)}
    ticket.sla_marks = marks
    refresh_next_check(ticket)


def stop(ticket: Ticket, metric: str) -> None:
    """The next-response clock stops when the customer is answered (the others are kept as data)."""
    if metric == NEXT_RESPONSE:
        ticket.next_response_due_at = None
        marks = dict(ticket.sla_marks)
        marks.pop(NEXT_RESPONSE, None)
        ticket.sla_marks = marks
    refresh_next_check(ticket)


def refresh_next_check(ticket: Ticket) -> None:
    """When the scan must look at this ticket again: its next unfired warning or breach."""
    moments: list[dt.datetime] = []
    if ticket.sla_paused_at is None:
        for metric in METRICS:
            if not is_pending(ticket, metric):
                continue
            mark = ticket.sla_marks.get(metric, {})
            if not mark.get("warned_at") and mark.get("warn_at"):
                moments.append(_parse(mark["warn_at"]))
            elif not mark.get("breached_at"):
                moments.append(getattr(ticket, _due_field(metric)))
    ticket.sla_next_check_at = min(moments) if moments else None


def pause(ticket: Ticket, *, now: dt.datetime) -> None:
    if ticket.sla_paused_at is None:
        ticket.sla_paused_at = now
    refresh_next_check(ticket)


def resume(ticket: Ticket, *, clock: Clock, now: dt.datetime) -> None:
    """Push every running due moment back by the working time spent paused."""
    paused_at = ticket.sla_paused_at
    if paused_at is None:
        return
    marks = {k: dict(v) for k, v in ticket.sla_marks.items()}
    for metric in METRICS:
        if not is_pending(ticket, metric):
            continue
        due = getattr(ticket, _due_field(metric))
        if due > paused_at:
            setattr(ticket, _due_field(metric), clock.add(now, clock.between(paused_at, due)))
        mark = marks.get(metric, {})
        warn = _parse(mark.get("warn_at"))
        if warn and not mark.get("warned_at") and warn > paused_at:
            mark["warn_at"] = _iso(clock.add(now, clock.between(paused_at, warn)))
    ticket.sla_marks = marks
    ticket.sla_paused_at = None
    refresh_next_check(ticket)


def fire_due(ticket: Ticket, *, now: dt.datetime) -> list[tuple[str, str]]:
    """Mark the warnings and breaches that are due; returns [(metric, WARNING|BREACHED)] fired."""
    fired: list[tuple[str, str]] = []
    if ticket.sla_paused_at is not None:
        refresh_next_check(ticket)
        return fired
    marks = {k: dict(v) for k, v in ticket.sla_marks.items()}
    for metric in METRICS:
        if not is_pending(ticket, metric):
            continue
        mark = marks.setdefault(metric, {})
        due = getattr(ticket, _due_field(metric))
        if now >= due and not mark.get("breached_at"):
            mark["breached_at"] = _iso(now)
            mark.setdefault("warned_at", _iso(now))
            fired.append((metric, BREACHED))
        elif (warn := _parse(mark.get("warn_at"))) and now >= warn and not mark.get("warned_at"):
            mark["warned_at"] = _iso(now)
            fired.append((metric, WARNING))
    ticket.sla_marks = marks
    refresh_next_check(ticket)
    return fired


def metric_state(ticket: Ticket, metric: str, *, now: dt.datetime) -> str:
    """One clock of the ticket: running (ok / warning / breached / paused), or how it ended
    (met / missed), or none."""
    due = getattr(ticket, _due_field(metric))
    mark = ticket.sla_marks.get(metric, {})
    if is_pending(ticket, metric):
        if ticket.sla_paused_at is not None:
            return PAUSED
        if now >= due:
            return BREACHED
        warn = _parse(mark.get("warn_at"))
        if warn and now >= warn:
            return WARNING
        return OK
    finished = {FIRST_RESPONSE: ticket.first_responded_at, RESOLUTION: ticket.resolved_at}.get(
        metric
    )
    if due is not None and finished is not None:
        return MET if finished <= due else MISSED
    if mark.get("breached_at"):
        return MISSED
    return NONE


@dataclass(frozen=True)
class SlaState:
    state: str
    metric: str | None = None
    due_at: dt.datetime | None = None

    def __str__(self) -> str:
        return self.state


def state(ticket: Ticket, *, now: dt.datetime) -> SlaState:
    """What a list shows: the most pressing running clock, or how the resolution target ended."""
    pending = [(getattr(ticket, _due_field(m)), m) for m in METRICS if is_pending(ticket, m)]
    if pending:
        due, metric = min(pending)
        if ticket.sla_paused_at is not None:
            return SlaState(PAUSED, metric, due)
        if now >= due:
            return SlaState(BREACHED, metric, due)
        warn = _parse(ticket.sla_marks.get(metric, {}).get("warn_at"))
        if warn and now >= warn:
            return SlaState(WARNING, metric, due)
        return SlaState(OK, metric, due)
    if ticket.resolution_due_at and ticket.resolved_at:
        met = ticket.resolved_at <= ticket.resolution_due_at
        return SlaState(MET if met else MISSED, RESOLUTION, ticket.resolution_due_at)
    return SlaState(NONE)
