import pytest
from django.db import connection

from kefu.customers.search_index import FTS_TABLE, search_index_ensure
from kefu.customers.selectors import customer_list_visible_to, customer_search
from kefu.customers.tests.factories import make_customer

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the FTS5 index is SQLite's")
def test_lost_triggers_are_recreated_and_the_index_rebuilt(agent):
    """A later migration that rebuilds the customers table drops the triggers; migrate heals it."""
    before = make_customer(actor=agent, name="张三")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER {FTS_TABLE}_ai")
    during = make_customer(actor=agent, name="张四")  # not indexed while the trigger is missing
    search = lambda q: set(customer_search(customer_list_visible_to(user=agent), q))  # noqa: E731
    assert search("zs") == {before}
    # when
    search_index_ensure(connection)
    # then
    assert search("zs") == {before, during}
    after = make_customer(actor=agent, name="张五")
    assert search("zw") == {after}


def test_search_index_exists_after_migrate():
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT count(*) FROM sqlite_master WHERE name LIKE %s", [f"{FTS_TABLE}%"]
            )
        else:
            cursor.execute(
                "SELECT count(*) FROM pg_indexes WHERE indexname = 'customers_customer_search_trgm'"
            )
        assert cursor.fetchone()[0] >= 1
