"""The SLA clocks on their own: pure functions over an unsaved ticket, an unsaved policy and a
work calendar built here (no database, no ticket services, `now` always given)."""

import datetime as dt

from kefu.businesstime.clock import WorkCalendar
from kefu.tickets import sla
from kefu.tickets.models import SlaPolicy, Ticket
from kefu.tickets.tests.fixtures import SHANGHAI, at

# 09:00-12:00 and 13:30-18:00, Monday to Friday (7.5 working hours a day); National Day 2026 is
# 1-7 October, and Saturday 10 October is worked in exchange (调休).
CALENDAR = WorkCalendar(
    periods=((dt.time(9), dt.time(12)), (dt.time(13, 30), dt.time(18))),
    weekdays=frozenset(range(5)),
    holidays=frozenset(dt.date(2026, 10, d) for d in range(1, 8)),
    workdays=frozenset({dt.date(2026, 10, 10)}),
    tz=SHANGHAI,
)
HOUR = dt.timedelta(hours=1)


def policy(**fields) -> SlaPolicy:
    values = {
        "name": "投诉",
        "first_response_minutes": 120,
        "next_response_minutes": 240,
        "resolution_minutes": 16 * 60,
    }
    return SlaPolicy(**{**values, **fields})


def ticket(sla_policy: SlaPolicy | None = None, **fields) -> Ticket:
    return Ticket(
        type=Ticket.Type.COMPLAINT,
        status=Ticket.Status.IN_PROGRESS,
        sla_policy=sla_policy,
        **fields,
    )


def opened(now: dt.datetime, *, clock: sla.Clock = CALENDAR, **policy_fields) -> Ticket:
    """A ticket whose first response and resolution clocks start at `now`."""
    t = ticket(policy(**policy_fields))
    for metric in (sla.FIRST_RESPONSE, sla.RESOLUTION):
        sla.start(t, metric, clock=clock, now=now)
    return t


# --- Working time on the calendar -------------------------------------------------------------


def test_working_time_skips_the_lunch_break():
    """Two working hours from 11:00 are one before lunch and one after 13:30."""
    assert CALENDAR.add(at(2026, 11, 24, 11), 2 * HOUR) == at(2026, 11, 24, 14, 30)
    assert CALENDAR.between(at(2026, 11, 24, 11), at(2026, 11, 24, 14, 30)) == 2 * HOUR


def test_working_time_starts_at_opening_and_skips_the_weekend():
    """Counted from 09:00 when started before opening; Saturday and Sunday do not count."""
    assert CALENDAR.add(at(2026, 11, 24, 7), HOUR) == at(2026, 11, 24, 10)
    assert CALENDAR.add(at(2026, 11, 27, 17), 2 * HOUR) == at(2026, 11, 30, 10)  # Fri → Mon
    assert CALENDAR.between(at(2026, 11, 27, 18), at(2026, 11, 30, 9)) == dt.timedelta()


def test_working_time_skips_a_public_holiday_and_counts_a_make_up_workday():
    """Eight working hours from 17:00 on 30 September: one that day, none from 1 to 7 October,
    seven on the 8th. From Friday 9 October 17:00, two hours end on the worked Saturday; an
    ordinary Saturday (17 October) does not count."""
    assert CALENDAR.add(at(2026, 9, 30, 17), 8 * HOUR) == at(2026, 10, 8, 17, 30)
    assert CALENDAR.add(at(2026, 10, 9, 17), 2 * HOUR) == at(2026, 10, 10, 10)
    assert CALENDAR.add(at(2026, 10, 16, 17), 2 * HOUR) == at(2026, 10, 19, 10)
    assert CALENDAR.between(at(2026, 10, 1, 9), at(2026, 10, 7, 18)) == dt.timedelta()


def test_between_is_zero_when_the_end_is_not_after_the_start():
    """Working or wall-clock time from a later moment to an earlier one is zero, never negative."""
    assert CALENDAR.between(at(2026, 11, 24, 15), at(2026, 11, 24, 10)) == dt.timedelta()
    assert sla.WallClock().between(at(2026, 11, 24, 15), at(2026, 11, 24, 10)) == dt.timedelta()


# --- Starting the clocks ----------------------------------------------------------------------


def test_start_sets_due_and_warning_moments_in_working_time():
    """Opened Tuesday 11:00: the first response (2 working hours) is due at 14:30 and warns at
    80 %, 96 minutes in (14:06); the resolution (16 working hours) is due Thursday 12:00."""
    # given / when
    t = opened(at(2026, 11, 24, 11))
    # then
    assert t.first_response_due_at == at(2026, 11, 24, 14, 30)
    assert t.resolution_due_at == at(2026, 11, 26, 12)
    mark = t.sla_marks[sla.FIRST_RESPONSE]
    assert mark["started_at"] == at(2026, 11, 24, 11).isoformat()
    assert dt.datetime.fromisoformat(mark["warn_at"]) == at(2026, 11, 24, 14, 6)
    # the scan looks again at the earliest unfired moment: the first response warning
    assert t.sla_next_check_at == at(2026, 11, 24, 14, 6)


def test_start_across_national_day_with_a_make_up_workday():
    """24 working hours from 17:00 on 30 September: 1 on the 30th, 7.5 each on 8 and 9 October
    and on the worked Saturday 10 October, the last half hour on Monday 12 October."""
    t = opened(at(2026, 9, 30, 17), resolution_minutes=24 * 60)
    assert t.resolution_due_at == at(2026, 10, 12, 9, 30)
    assert t.first_response_due_at == at(2026, 10, 8, 10)


def test_a_wall_clock_policy_counts_nights_weekends_and_holidays():
    """A major complaint resolves within 24 hours around the clock, holiday or not."""
    t = opened(at(2026, 9, 30, 17), clock=sla.WallClock(), resolution_minutes=24 * 60)
    assert t.resolution_due_at == at(2026, 10, 1, 17)
    assert t.first_response_due_at == at(2026, 9, 30, 19)
    assert dt.datetime.fromisoformat(t.sla_marks[sla.RESOLUTION]["warn_at"]) == at(
        2026, 10, 1, 12, 12
    )


def test_a_metric_without_a_target_has_no_clock():
    """A policy with no next-response target starts no such clock and clears an old one."""
    t = ticket(policy(next_response_minutes=None))
    t.next_response_due_at = at(2026, 11, 24, 12)
    t.sla_marks = {sla.NEXT_RESPONSE: {"warn_at": at(2026, 11, 24, 11).isoformat()}}
    sla.start(t, sla.NEXT_RESPONSE, clock=CALENDAR, now=at(2026, 11, 24, 10))
    assert t.next_response_due_at is None
    assert sla.NEXT_RESPONSE not in t.sla_marks
    assert t.sla_next_check_at is None


def test_stop_ends_the_next_response_clock_and_keeps_the_others():
    """Stopping ends the next-response clock and its marks; the resolution due time is kept."""
    t = opened(at(2026, 11, 24, 10))
    sla.start(t, sla.NEXT_RESPONSE, clock=CALENDAR, now=at(2026, 11, 24, 10))
    sla.stop(t, sla.NEXT_RESPONSE)
    assert t.next_response_due_at is None
    assert sla.NEXT_RESPONSE not in t.sla_marks
    sla.stop(t, sla.RESOLUTION)
    assert t.resolution_due_at == at(2026, 11, 26, 11)


def test_is_pending_until_answered_or_resolved():
    """The first response clock runs until the first reply; every clock ends with resolution."""
    t = opened(at(2026, 11, 24, 10))
    assert sla.is_pending(t, sla.FIRST_RESPONSE)
    assert not sla.is_pending(t, sla.NEXT_RESPONSE)  # never started
    t.first_responded_at = at(2026, 11, 24, 11)
    assert not sla.is_pending(t, sla.FIRST_RESPONSE)
    assert sla.is_pending(t, sla.RESOLUTION)
    t.status = Ticket.Status.RESOLVED
    assert not sla.is_pending(t, sla.RESOLUTION)


# --- The state machine: ok → warning → breached, paused, met / missed -------------------------


def test_a_running_clock_goes_ok_warning_breached():
    """First response due 12:00 (opened 10:00), warning at 11:36."""
    t = opened(at(2026, 11, 24, 10))
    states = [
        sla.metric_state(t, sla.FIRST_RESPONSE, now=at(2026, 11, 24, h, m))
        for h, m in ((10, 0), (11, 35), (11, 36), (11, 59), (12, 0), (17, 0))
    ]
    assert states == [sla.OK, sla.OK, sla.WARNING, sla.WARNING, sla.BREACHED, sla.BREACHED]


def test_a_paused_clock_is_paused_even_past_its_due_time():
    """While paused a clock shows paused, not breached, even past its due time."""
    t = opened(at(2026, 11, 24, 10))
    sla.pause(t, now=at(2026, 11, 24, 11))
    assert sla.metric_state(t, sla.FIRST_RESPONSE, now=at(2026, 11, 25, 17)) == sla.PAUSED
    state = sla.state(t, now=at(2026, 11, 25, 17))
    assert (state.state, state.metric) == (sla.PAUSED, sla.FIRST_RESPONSE)


def test_answered_in_time_is_met_and_late_is_missed():
    """A first reply at or before the due moment meets the target; a minute later misses it."""
    t = opened(at(2026, 11, 24, 10))
    t.first_responded_at = at(2026, 11, 24, 12)  # on the due moment itself
    assert sla.metric_state(t, sla.FIRST_RESPONSE, now=at(2026, 11, 25, 9)) == sla.MET
    t.first_responded_at = at(2026, 11, 24, 12, 1)
    assert sla.metric_state(t, sla.FIRST_RESPONSE, now=at(2026, 11, 25, 9)) == sla.MISSED


def test_resolution_met_or_missed_is_what_a_done_ticket_shows():
    """A resolved ticket shows whether its resolution target was met or missed."""
    t = opened(at(2026, 11, 24, 10))  # resolution due Thursday 11:00
    t.first_responded_at = at(2026, 11, 24, 10, 30)
    t.status, t.resolved_at = Ticket.Status.RESOLVED, at(2026, 11, 26, 11)
    assert sla.state(t, now=at(2026, 11, 30, 9)) == sla.SlaState(
        sla.MET, sla.RESOLUTION, at(2026, 11, 26, 11)
    )
    t.resolved_at = at(2026, 11, 26, 11, 1)
    assert sla.state(t, now=at(2026, 11, 30, 9)).state == sla.MISSED
    assert str(sla.state(t, now=at(2026, 11, 30, 9))) == "missed"


def test_a_breached_clock_that_ends_unanswered_is_missed():
    """The first response breached, then the ticket was resolved without a reply on record."""
    t = opened(at(2026, 11, 24, 10))
    sla.fire_due(t, now=at(2026, 11, 24, 12))
    t.status, t.resolved_at = Ticket.Status.RESOLVED, at(2026, 11, 24, 15)
    assert sla.metric_state(t, sla.FIRST_RESPONSE, now=at(2026, 11, 24, 16)) == sla.MISSED


def test_no_policy_means_no_clock():
    """Without a policy there is no clock to show."""
    t = ticket(None)
    assert sla.state(t, now=at(2026, 11, 24, 10)) == sla.SlaState(sla.NONE)
    assert sla.metric_state(t, sla.RESOLUTION, now=at(2026, 11, 24, 10)) == sla.NONE


def test_the_list_shows_the_most_pressing_running_clock():
    """A reply due 10:30 comes before a resolution due on Thursday."""
    t = opened(at(2026, 11, 24, 9, 30), next_response_minutes=60)
    t.first_responded_at = at(2026, 11, 24, 9, 35)
    sla.start(t, sla.NEXT_RESPONSE, clock=CALENDAR, now=at(2026, 11, 24, 9, 30))
    state = sla.state(t, now=at(2026, 11, 24, 10, 20))
    assert (state.state, state.metric, state.due_at) == (
        sla.WARNING,
        sla.NEXT_RESPONSE,
        at(2026, 11, 24, 10, 30),
    )
    assert sla.state(t, now=at(2026, 11, 24, 10, 30)).state == sla.BREACHED
    assert sla.state(t, now=at(2026, 11, 24, 9, 40)).state == sla.OK


# --- Firing warnings and breaches -------------------------------------------------------------


def test_fire_due_warns_once_then_breaches_once():
    """The warning fires once at 80 %, the breach once at the due moment; then the scan looks at
    the next clock."""
    t = opened(at(2026, 11, 24, 10))
    assert sla.fire_due(t, now=at(2026, 11, 24, 11, 35)) == []
    assert sla.fire_due(t, now=at(2026, 11, 24, 11, 36)) == [(sla.FIRST_RESPONSE, sla.WARNING)]
    assert sla.fire_due(t, now=at(2026, 11, 24, 11, 50)) == []
    assert t.sla_next_check_at == at(2026, 11, 24, 12)  # the breach is next
    assert sla.fire_due(t, now=at(2026, 11, 24, 12)) == [(sla.FIRST_RESPONSE, sla.BREACHED)]
    assert sla.fire_due(t, now=at(2026, 11, 24, 12, 30)) == []
    # then the resolution warning is next: 80 % of 16 working hours is 12.8, Wednesday 16:48
    assert t.sla_next_check_at == at(2026, 11, 25, 16, 48)


def test_a_breach_found_late_fires_alone_and_counts_as_warned():
    """A scan that first looks after the due moment fires only the breach and marks the warning as
    given."""
    t = opened(at(2026, 11, 24, 10))
    assert sla.fire_due(t, now=at(2026, 11, 24, 13)) == [(sla.FIRST_RESPONSE, sla.BREACHED)]
    mark = t.sla_marks[sla.FIRST_RESPONSE]
    assert mark["warned_at"] == mark["breached_at"] == at(2026, 11, 24, 13).isoformat()


def test_nothing_fires_while_paused():
    """Nothing fires while the clocks are paused, and the scan has nothing to look at."""
    t = opened(at(2026, 11, 24, 10))
    sla.pause(t, now=at(2026, 11, 24, 11))
    assert t.sla_next_check_at is None
    assert sla.fire_due(t, now=at(2026, 11, 26, 17)) == []
    assert t.sla_next_check_at is None


# --- Pause and resume -------------------------------------------------------------------------


def test_resume_pushes_due_times_back_by_the_working_time_spent_paused():
    """Opened Monday 09:00 with 16 working hours (due Wednesday 10:00); on hold from Monday
    11:00 to Tuesday 11:00: 14 working hours were left, so it is due Thursday 10:00. The first
    response (due 11:00, 2 hours) had 0 left and stays; its warning already fired."""
    # given
    t = opened(at(2026, 11, 23, 9))
    assert t.resolution_due_at == at(2026, 11, 25, 10)
    sla.fire_due(t, now=at(2026, 11, 23, 10, 36))  # first response warning
    # when
    sla.pause(t, now=at(2026, 11, 23, 11))
    sla.pause(t, now=at(2026, 11, 23, 15))  # a second pause keeps the first moment
    sla.resume(t, clock=CALENDAR, now=at(2026, 11, 24, 11))
    # then
    assert t.sla_paused_at is None
    assert t.resolution_due_at == at(2026, 11, 26, 10)
    assert t.first_response_due_at == at(2026, 11, 23, 11)
    # the resolution warning (80 %, Tuesday 15:48) moves by the same working day
    warn = dt.datetime.fromisoformat(t.sla_marks[sla.RESOLUTION]["warn_at"])
    assert warn == at(2026, 11, 25, 15, 48)
    assert t.sla_marks[sla.FIRST_RESPONSE]["warn_at"] == at(2026, 11, 23, 10, 36).isoformat()
    assert sla.state(t, now=at(2026, 11, 24, 11)).state == sla.BREACHED  # first response


def test_a_pause_outside_working_hours_costs_no_working_time():
    """Paused Friday 18:00, resumed Monday 09:00: the due time does not move."""
    t = opened(at(2026, 11, 27, 17))  # first response due Monday 10:00
    assert t.first_response_due_at == at(2026, 11, 30, 10)
    sla.pause(t, now=at(2026, 11, 27, 18))
    sla.resume(t, clock=CALENDAR, now=at(2026, 11, 30, 9))
    assert t.first_response_due_at == at(2026, 11, 30, 10)


def test_a_wall_clock_resume_moves_due_times_by_the_calendar_time_paused():
    """Around the clock, a twelve-hour hold moves the due time twelve hours."""
    t = opened(at(2026, 9, 30, 17), clock=sla.WallClock(), resolution_minutes=24 * 60)
    sla.pause(t, now=at(2026, 9, 30, 20))
    sla.resume(t, clock=sla.WallClock(), now=at(2026, 10, 1, 8))
    assert t.resolution_due_at == at(2026, 10, 2, 5)


def test_resume_without_a_pause_changes_nothing():
    """Resuming clocks that are not paused changes nothing."""
    t = opened(at(2026, 11, 24, 10))
    before = (t.first_response_due_at, t.resolution_due_at, dict(t.sla_marks))
    sla.resume(t, clock=CALENDAR, now=at(2026, 11, 25, 10))
    assert (t.first_response_due_at, t.resolution_due_at, t.sla_marks) == before


def test_a_clock_started_while_paused_runs_from_the_resume():
    """The customer writes while the ticket waits on them: the reply is due four working hours
    after work resumes, not after the message."""
    t = opened(at(2026, 11, 23, 9))
    sla.pause(t, now=at(2026, 11, 23, 11))
    sla.start(t, sla.NEXT_RESPONSE, clock=CALENDAR, now=at(2026, 11, 23, 16))
    sla.resume(t, clock=CALENDAR, now=at(2026, 11, 24, 10))
    assert t.next_response_due_at == at(2026, 11, 24, 15, 30)


def test_a_clock_restarted_from_before_the_pause_keeps_the_time_it_ran():
    """A new policy restarts the resolution clock from when the ticket opened (09:00), while it
    waits on the customer since 11:00: the two hours before the pause count, so on resuming at
    Monday 15:00 under a 24-hour wall-clock target it is due Tuesday 13:00."""
    # given
    t = opened(at(2026, 11, 23, 9))
    sla.pause(t, now=at(2026, 11, 23, 11))
    # when: the ticket becomes a major complaint (24 hours around the clock)
    t.sla_policy = policy(resolution_minutes=24 * 60, business_hours=False)
    sla.start(t, sla.RESOLUTION, clock=sla.WallClock(), now=at(2026, 11, 23, 9))
    sla.resume(t, clock=sla.WallClock(), now=at(2026, 11, 23, 15))
    # then
    assert t.resolution_due_at == at(2026, 11, 24, 13)


# --- Which policy applies ---------------------------------------------------------------------


def _pick(policies, ticket_type="complaint", severity="normal", customer_level="regular"):
    return sla.policy_pick(
        policies, ticket_type=ticket_type, severity=severity, customer_level=customer_level
    )


def test_the_most_specific_policy_wins_whatever_its_position():
    """The policy matching the most criteria wins, whatever its position."""
    default = SlaPolicy(name="默认", position=0)
    complaints = SlaPolicy(name="投诉", ticket_type="complaint", position=5)
    major = SlaPolicy(name="重大投诉", ticket_type="complaint", severity="major", position=9)
    vip_major = SlaPolicy(
        name="会员重大投诉",
        ticket_type="complaint",
        severity="major",
        customer_level="vip",
        position=20,
    )
    policies = [default, complaints, major, vip_major]
    assert _pick(policies) == complaints
    assert _pick(policies, severity="major") == major
    assert _pick(policies, severity="major", customer_level="vip") == vip_major
    assert _pick(policies, ticket_type="consultation", severity="major") == default


def test_among_equally_specific_policies_the_lowest_position_wins():
    """Among policies matching as many criteria, the lowest position wins."""
    late = SlaPolicy(name="投诉B", ticket_type="complaint", position=2)
    early = SlaPolicy(name="投诉A", ticket_type="complaint", position=1)
    by_level = SlaPolicy(name="金卡", customer_level="gold", position=0)
    assert _pick([late, early]) == early
    assert _pick([late, early, by_level], customer_level="gold") == by_level  # position 0


def test_inactive_or_unmatched_policies_are_never_picked():
    """An inactive policy or one for another type is never picked: no policy at all."""
    retired = SlaPolicy(name="旧投诉", ticket_type="complaint", is_active=False)
    consultation = SlaPolicy(name="咨询", ticket_type="consultation")
    assert _pick([retired, consultation]) is None
