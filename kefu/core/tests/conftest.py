import sqlite3
from contextlib import closing

import pytest
from django.db import connection, connections


@pytest.fixture
def live_database(transactional_db, tmp_path):
    """The default database as Kefu runs it, for tests that copy the database file.

    pytest-django keeps the SQLite test database in memory; for the test this moves the
    connection to a WAL file holding the same schema and data (settings' init_command turns on
    WAL), and back to the untouched in-memory database afterwards. PostgreSQL needs nothing.
    """
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        yield
        return
    connection.ensure_connection()
    memory = connection.connection
    path = tmp_path / "kefu.sqlite3"
    with closing(sqlite3.connect(path)) as file:
        memory.backup(file)
    name = connection.settings_dict["NAME"]
    connection.connection = None  # Django never closes an in-memory database: keep it aside
    connection.settings_dict["NAME"] = str(path)
    try:
        yield
    finally:
        connections.close_all()
        connection.settings_dict["NAME"] = name
        connection.connection = memory
