import pytest

pytest_plugins = [
    "kefu.accounts.tests.fixtures",
    "kefu.customers.tests.fixtures",
    "kefu.jobs.tests.fixtures",
    "kefu.notifications.tests.fixtures",
    "kefu.tickets.tests.fixtures",
    "kefu.conversations.tests.fixtures",
    "kefu.conversations.tests.live_server",
]


@pytest.fixture(autouse=True)
def _fresh_work_calendar():
    """Each test reads the work calendar from its own database state (the cache outlives the
    rollback between tests otherwise)."""
    from kefu.businesstime.selectors import work_calendar_forget

    work_calendar_forget()
    yield
    work_calendar_forget()
