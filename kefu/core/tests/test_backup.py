"""Backup and restore, on SQLite by default and on PostgreSQL with KEFU_TEST_DATABASE_URL."""

import datetime as dt
import io
import json
import re
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from kefu.audit.models import AuditEntry
from kefu.core.backup import (
    BackupError,
    backup_create,
    backup_prune,
    backup_restore,
    backup_verify,
)
from kefu.core.models import Sequence
from kefu.customers import services
from kefu.customers.models import Tag
from kefu.customers.tests.factories import make_customer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("live_database")]

SEQUENCES = {
    "sqlite": "SELECT name, seq FROM sqlite_sequence",
    "postgresql": "SELECT sequencename, last_value FROM pg_sequences",
}
NOON = dt.datetime(2025, 3, 1, 4, 0, tzinfo=dt.UTC)


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    (settings.MEDIA_ROOT / "attachments").mkdir(parents=True)
    (settings.MEDIA_ROOT / "attachments" / "发票.pdf").write_bytes(b"%PDF-1.4 invoice")
    (settings.MEDIA_ROOT / "avatar.png").write_bytes(bytes(range(256)))
    return settings.MEDIA_ROOT


def database_rows() -> dict[str, object]:
    """Every row of every table, with its columns, and the counters that hand out ids."""
    rows: dict[str, object] = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names()):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            columns = [column[0] for column in cursor.description]
            rows[table] = (columns, sorted(cursor.fetchall(), key=repr))
        cursor.execute(SEQUENCES[connection.vendor])
        rows["(sequences)"] = sorted(cursor.fetchall(), key=repr)
    return rows


def file_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def database_file() -> str:
    return {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}[connection.vendor]


def test_restore_brings_back_every_row_of_every_table_and_the_media(agent, media_root, tmp_path):
    # given
    li = make_customer(actor=agent, name="李四", phone="13900000001", tags=["VIP"])
    make_customer(actor=agent, name="王五", tags=["慢病"])
    services.customer_update(actor=agent, customer_id=li.pk, data={"notes": "常客"})
    assert AuditEntry.objects.filter(action__startswith="customer.").count() == 3
    backup = backup_create(tmp_path / "backups")
    rows, files = database_rows(), file_tree(media_root)

    # when
    services.customer_update(actor=agent, customer_id=li.pk, data={"name": "李四四"})
    services.customer_remove_contact(
        actor=agent, customer_id=li.pk, contact_id=li.contacts.get().pk
    )
    make_customer(actor=agent, name="赵六")
    Tag.objects.filter(name="慢病").delete()
    with connection.cursor() as cursor:  # a table from a later migration, pointing at kept ones
        cursor.execute(
            "CREATE TABLE later_feature (id INTEGER PRIMARY KEY,"
            " customer_id BIGINT REFERENCES customers_customer (id))"
        )
        cursor.execute(f"INSERT INTO later_feature VALUES (1, {li.pk})")
    (media_root / "attachments" / "发票.pdf").write_bytes(b"edited")
    (media_root / "avatar.png").unlink()
    (media_root / "later" / "new.txt").parent.mkdir()
    (media_root / "later" / "new.txt").write_text("uploaded after the backup")
    assert database_rows() != rows
    backup_restore(backup)

    # then
    assert database_rows() == rows
    assert file_tree(media_root) == files
    assert not (media_root / "later").exists()
    assert make_customer(actor=agent, name="钱七").number == "KH00000003"


def test_backup_holds_a_manifest_of_every_file(agent, media_root, tmp_path, settings):
    settings.BACKUP_DIR = tmp_path / "backups"
    make_customer(actor=agent)

    backup = backup_create(now=NOON)

    assert backup == settings.BACKUP_DIR / "kefu-backup-20250301-120000"
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["format"] == 1
    assert manifest["created_at"] == "2025-03-01T12:00:00+08:00"
    assert manifest["database"] == {"engine": connection.vendor, "file": database_file()}
    applied = MigrationRecorder(connection).applied_migrations()
    latest_customers = max(name for app, name in applied if app == "customers")
    assert manifest["migrations"]["customers"] == latest_customers
    paths = [entry["path"] for entry in manifest["files"]]
    assert paths == sorted([database_file(), "media/attachments/发票.pdf", "media/avatar.png"])
    assert backup_verify(backup) == manifest
    assert not list(settings.BACKUP_DIR.glob(".*"))  # no partial folder left behind


@pytest.mark.parametrize("damage", ["database", "media", "missing media"])
def test_restore_refuses_a_damaged_backup_and_changes_nothing(agent, media_root, tmp_path, damage):
    # given
    make_customer(actor=agent)
    backup = backup_create(tmp_path)
    make_customer(actor=agent, name="后来的")
    (media_root / "avatar.png").write_bytes(b"after the backup")
    rows, files = database_rows(), file_tree(media_root)
    damaged = backup / (database_file() if damage == "database" else "media/attachments/发票.pdf")
    if damage == "missing media":
        damaged.unlink()
    else:
        data = bytearray(damaged.read_bytes())
        data[len(data) // 2] ^= 0x01
        damaged.write_bytes(data)

    # when
    with pytest.raises(BackupError, match=re.escape(str(damaged))):
        backup_restore(backup)

    # then
    assert database_rows() == rows
    assert file_tree(media_root) == files


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"database": "other engine"}, "backup; this Kefu runs on"),
        ({"migrations": {"customers": "0999_future"}}, "made by a newer version"),
        ({"format": 2}, "backup format 2"),
        ({"files": None}, "manifest.json is damaged"),
    ],
)
def test_restore_refuses_a_backup_this_installation_cannot_take(
    agent, media_root, tmp_path, change, message
):
    # given
    backup = backup_create(tmp_path)
    manifest_path = backup / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    if "database" in change:
        other = "postgresql" if connection.vendor == "sqlite" else "sqlite"
        change = {"database": {**manifest["database"], "engine": other}}
    manifest_path.write_text(json.dumps({**manifest, **change}))
    make_customer(actor=agent)
    rows = database_rows()

    # when
    with pytest.raises(BackupError, match=message):
        backup_restore(backup)

    # then
    assert database_rows() == rows


def test_restore_refuses_a_folder_that_is_not_a_backup(tmp_path):
    with pytest.raises(BackupError, match=r"manifest\.json is missing"):
        backup_restore(tmp_path)


def test_backup_while_another_connection_writes_is_consistent(tmp_path):
    """Each copy holds the writer's transactions whole: the two counters always add up to 0."""
    if connection.vendor != "sqlite":
        pytest.skip("pg_dump's snapshot consistency is PostgreSQL's own guarantee")
    # given
    Sequence.objects.bulk_create([Sequence(name="debit"), Sequence(name="credit")])
    started, stop = threading.Event(), threading.Event()

    def write() -> None:
        with closing(sqlite3.connect(connection.settings_dict["NAME"], timeout=30)) as db:
            while not stop.is_set():
                with db:
                    db.execute("UPDATE core_sequence SET value = value + 1 WHERE name = 'debit'")
                    db.execute("INSERT INTO core_sequence VALUES (hex(randomblob(16)), 0)")
                    db.execute("UPDATE core_sequence SET value = value - 1 WHERE name = 'credit'")
                started.set()

    writer = threading.Thread(target=write)
    writer.start()

    # when
    try:
        assert started.wait(10)
        backups = [backup_create(tmp_path, now=NOON + dt.timedelta(seconds=i)) for i in range(5)]
    finally:
        stop.set()
        writer.join()

    # then
    debits = []
    for backup in backups:
        with closing(sqlite3.connect(backup / "database.sqlite3")) as db:
            counters = dict(db.execute("SELECT name, value FROM core_sequence"))
        assert counters["debit"] + counters["credit"] == 0
        assert len(counters) == counters["debit"] + 2
        debits.append(counters["debit"])
    assert debits == sorted(debits)
    assert debits[0] > 0


def test_backup_prune_keeps_the_newest_backups(media_root, tmp_path):
    folder = tmp_path / "backups"
    backups = [backup_create(folder, now=NOON + dt.timedelta(days=i)) for i in range(4)]
    (folder / "notes").mkdir()

    removed = backup_prune(folder, keep=2)

    assert removed == backups[:2]
    assert sorted(p.name for p in folder.iterdir()) == [
        "kefu-backup-20250303-120000",
        "kefu-backup-20250304-120000",
        "notes",
    ]


def test_backup_command_prints_the_folder_and_applies_keep(media_root, tmp_path):
    older = backup_create(tmp_path, now=NOON)
    out = io.StringIO()

    call_command("backup", str(tmp_path), "--keep", "1", stdout=out)

    written, removed = out.getvalue().splitlines()
    assert Path(written).parent == tmp_path
    assert backup_verify(Path(written))
    assert removed == f"removed {older}"
    assert not older.exists()


def test_restore_command_restores_with_yes(agent, media_root, tmp_path):
    make_customer(actor=agent)
    backup = backup_create(tmp_path)
    rows = database_rows()
    make_customer(actor=agent, name="后来的")
    out = io.StringIO()

    call_command("restore", str(backup), "--yes", stdout=out)

    assert database_rows() == rows
    assert "file(s) intact" in out.getvalue()
    assert f"Restored {backup}." in out.getvalue()


@pytest.mark.parametrize(("interactive", "message"), [(False, "add --yes"), (True, "cancelled")])
def test_restore_command_changes_nothing_unless_confirmed(
    agent, media_root, tmp_path, monkeypatch, interactive, message
):
    backup = backup_create(tmp_path)
    make_customer(actor=agent)
    rows = database_rows()
    stdin = io.StringIO("no\n")
    stdin.isatty = lambda: interactive  # type: ignore[method-assign]
    monkeypatch.setattr("sys.stdin", stdin)

    with pytest.raises(CommandError, match=message):
        call_command("restore", str(backup), stdout=io.StringIO())

    assert database_rows() == rows
