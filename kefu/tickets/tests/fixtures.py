import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from kefu.accounts.tests.factories import UserFactory
from kefu.tickets.models import Department, RootCause, SlaPolicy

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(*args: int) -> dt.datetime:
    """A moment in Asia/Shanghai time: at(2026, 9, 30, 17) is 17:00 on 30 September 2026."""
    return dt.datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture
def complaint_specialist(db):
    return UserFactory(username="complaints", role="complaint_specialist", display_name="客诉专员")


@pytest.fixture
def supervisor(db):
    return UserFactory(username="supervisor", role="supervisor")


@pytest.fixture
def quality_department(db, handler):
    department = Department.objects.create(
        name="质量管理部",
        urge_interval_minutes=120,
        escalate_supervisor_after=2,
        escalate_manager_after=3,
    )
    department.handlers.add(handler)
    return department


@pytest.fixture
def root_cause(db):
    return RootCause.objects.create(name="产品质量")


@pytest.fixture
def sla_policies(db):
    """Complaints: answer within 2 working hours, resolve within 16 (two working days);
    major complaints resolve within 24 hours around the clock."""
    return [
        SlaPolicy.objects.create(
            name="投诉",
            ticket_type="complaint",
            first_response_minutes=120,
            next_response_minutes=240,
            resolution_minutes=16 * 60,
        ),
        SlaPolicy.objects.create(
            name="重大投诉",
            ticket_type="complaint",
            severity="major",
            first_response_minutes=30,
            resolution_minutes=24 * 60,
            business_hours=False,
        ),
        SlaPolicy.objects.create(
            name="默认",
            first_response_minutes=240,
            resolution_minutes=3 * 8 * 60,
        ),
    ]
