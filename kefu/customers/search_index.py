"""The database's own index over `Customer.search_text`.

SQLite: an FTS5 table over the column (external content), kept in step by triggers; terms are
matched as token prefixes, and `search_text` carries every suffix of Chinese tokens so part of a
name matches too. PostgreSQL: a pg_trgm GIN index that serves the LIKE search.

Django's SQLite schema editor rebuilds a table to alter it, which drops its triggers; so this runs
after every `migrate` (post_migrate) as well as in the migration, and rebuilds the index when a
trigger was missing.
"""

from django.db.backends.base.base import BaseDatabaseWrapper

FTS_TABLE = "customers_customer_fts"
_TRIGGERS = {
    f"{FTS_TABLE}_ai": f"""
        CREATE TRIGGER {FTS_TABLE}_ai AFTER INSERT ON customers_customer BEGIN
            INSERT INTO {FTS_TABLE}(rowid, search_text) VALUES (new.id, new.search_text);
        END""",
    f"{FTS_TABLE}_ad": f"""
        CREATE TRIGGER {FTS_TABLE}_ad AFTER DELETE ON customers_customer BEGIN
            INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, search_text)
            VALUES ('delete', old.id, old.search_text);
        END""",
    f"{FTS_TABLE}_au": f"""
        CREATE TRIGGER {FTS_TABLE}_au AFTER UPDATE OF search_text ON customers_customer BEGIN
            INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, search_text)
            VALUES ('delete', old.id, old.search_text);
            INSERT INTO {FTS_TABLE}(rowid, search_text) VALUES (new.id, new.search_text);
        END""",
}


def search_index_ensure(connection: BaseDatabaseWrapper) -> None:
    """Create the index and its triggers where missing; rebuild the index if anything was."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            cursor.execute(
                "CREATE INDEX IF NOT EXISTS customers_customer_search_trgm "
                "ON customers_customer USING gin (search_text gin_trgm_ops)"
            )
            return
        if connection.vendor != "sqlite":
            return
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') AND name LIKE %s",
            [f"{FTS_TABLE}%"],
        )
        present = {row[0] for row in cursor.fetchall()}
        missing = [name for name in (FTS_TABLE, *_TRIGGERS) if name not in present]
        if not missing:
            return
        if FTS_TABLE not in present:
            cursor.execute(
                f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(search_text, "
                "content='customers_customer', content_rowid='id', "
                "tokenize='unicode61', prefix='1 2 3')"
            )
        for name, sql in _TRIGGERS.items():
            if name not in present:
                cursor.execute(sql)
        cursor.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")


def search_index_ensure_after_migrate(sender=None, using: str = "default", **kwargs) -> None:
    from django.db import connections

    search_index_ensure(connections[using])
