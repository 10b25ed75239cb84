"""Backups: a consistent copy of the database and the uploaded files, taken while Kefu runs.

A backup is a folder `kefu-backup-YYYYmmdd-HHMMSS` holding

- `database.sqlite3` (SQLite's online backup API) or `database.pgdump` (`pg_dump --format=custom`),
- `media/...`, a copy of MEDIA_ROOT,
- `manifest.json`: format, Kefu version, time, database engine, the latest applied migration of
  each app, and the size and SHA-256 of every file above.

A restore checks every file against the manifest before it touches anything.
"""

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
from contextlib import closing
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from kefu.core.exceptions import DomainError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PREFIX = "kefu-backup-"
DATABASE_FILES = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
MEDIA = "media"
# libpq reads the connection from these variables, so the password never shows in `ps`.
PG_ENV = {"HOST": "PGHOST", "PORT": "PGPORT", "USER": "PGUSER", "PASSWORD": "PGPASSWORD"}
PG_OPTION_ENV = {
    "service": "PGSERVICE",
    "passfile": "PGPASSFILE",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
}


class BackupError(DomainError):
    """A backup could not be written, is damaged, or does not fit this installation."""

    code = "backup_error"


# --- Create -----------------------------------------------------------------------------------


def backup_create(dest_dir: Path | None = None, *, now: dt.datetime | None = None) -> Path:
    """Write a new backup folder under `dest_dir` (default settings.BACKUP_DIR) and return it.

    The folder is filled under a hidden name and renamed at the end, so a folder with the
    backup name is always complete.
    """
    engine = _engine()
    now = now or timezone.now()
    dest_dir = Path(dest_dir or settings.BACKUP_DIR)
    name = f"{PREFIX}{timezone.localtime(now):%Y%m%d-%H%M%S}"
    target = dest_dir / name
    if target.exists():
        raise BackupError(f"{target} already exists.")
    partial = dest_dir / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True, mode=0o700)  # it holds every customer's data
    try:
        if engine == "sqlite":
            _sqlite_dump(partial / DATABASE_FILES[engine])
        else:
            _pg_dump(partial / DATABASE_FILES[engine])
        _media_copy(Path(settings.MEDIA_ROOT), partial / MEDIA)
        files = sorted(p for p in partial.rglob("*") if p.is_file())
        manifest = {
            "format": FORMAT_VERSION,
            "kefu_version": _kefu_version(),
            "created_at": timezone.localtime(now).isoformat(),
            "database": {"engine": engine, "file": DATABASE_FILES[engine]},
            "migrations": _migrations_latest(),
            "files": [_file_entry(partial, path) for path in files],
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        partial.rename(target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return target


def backup_prune(dest_dir: Path, *, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups in `dest_dir`; return the folders deleted."""
    if keep < 1:
        raise BackupError("keep must be at least 1.")
    backups = sorted(
        p for p in Path(dest_dir).glob(f"{PREFIX}*") if p.is_dir() and (p / MANIFEST).is_file()
    )
    removed = backups[:-keep]
    for path in removed:
        shutil.rmtree(path)
    return removed


def _engine() -> str:
    if connection.vendor not in DATABASE_FILES:
        raise BackupError(f"Backups support SQLite and PostgreSQL, not {connection.vendor}.")
    return connection.vendor


def _sqlite_live_path() -> Path:
    if connection.is_in_memory_db():
        raise BackupError("The SQLite database is in memory, not in a file.")
    return Path(connection.settings_dict["NAME"])


def _sqlite_dump(target: Path) -> None:
    """Copy the live database with SQLite's online backup API: one read transaction, so the
    copy is the database as of one instant while other connections keep writing."""
    live = _sqlite_live_path()
    if not live.is_file():
        raise BackupError(f"The SQLite database {live} does not exist.")
    try:
        with (
            closing(sqlite3.connect(live, timeout=30)) as source,
            closing(sqlite3.connect(target)) as copy,
        ):
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal
            (result,) = copy.execute("PRAGMA integrity_check").fetchone()
    except sqlite3.Error as exc:
        raise BackupError(f"Could not copy the SQLite database: {exc}") from None
    if result != "ok":
        raise BackupError(f"The database copy failed its integrity check: {result}")


def _pg_dump(target: Path) -> None:
    _pg_run("pg_dump", "--format=custom", f"--file={target}", _pg_dbname())


def _pg_dbname() -> str:
    return f"--dbname={connection.settings_dict['NAME'] or ''}"


def _pg_run(*command: str) -> str:
    """Run a PostgreSQL client program with the configured connection; return its stdout."""
    db = connection.settings_dict
    env = dict(os.environ)
    env.update({var: str(db[key]) for key, var in PG_ENV.items() if db.get(key)})
    options = db.get("OPTIONS", {})
    env.update({var: str(options[key]) for key, var in PG_OPTION_ENV.items() if options.get(key)})
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    except FileNotFoundError:
        raise BackupError(
            f"{command[0]} is not installed (Debian: apt install postgresql-client)."
        ) from None
    except subprocess.CalledProcessError as exc:
        raise BackupError(f"{command[0]} failed: {exc.stderr.strip()}") from None
    return done.stdout


def _media_copy(source: Path, target: Path) -> None:
    target.mkdir()
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)


def _kefu_version() -> str:
    try:
        return version("kefu")
    except PackageNotFoundError:
        return "unknown"


def _migrations_latest() -> dict[str, str]:
    """The latest applied migration of each app."""
    latest: dict[str, str] = {}
    for app, name in sorted(MigrationRecorder(connection).applied_migrations()):
        latest[app] = name
    return latest


def _file_entry(root: Path, path: Path) -> dict[str, Any]:
    return {
        "path": path.relative_to(root).as_posix(),
        "size": path.stat().st_size,
        "sha256": _sha256(path),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


# --- Verify -----------------------------------------------------------------------------------


def backup_verify(src: Path) -> dict[str, Any]:
    """Check every file of a backup against its manifest; return the manifest."""
    src = Path(src)
    try:
        manifest = json.loads((src / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"{src} is not a Kefu backup: {MANIFEST} is missing.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupError(f"{src / MANIFEST} is damaged: {exc}") from None
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(f"{src} has backup format {manifest.get('format')!r}; expected 1.")
    try:
        _files_verify(src, manifest)
    except (KeyError, TypeError, AttributeError) as exc:
        raise BackupError(f"{src / MANIFEST} is damaged: {exc!r}") from None
    return manifest


def _files_verify(src: Path, manifest: dict[str, Any]) -> None:
    files = manifest["files"]
    if not isinstance(manifest["migrations"], dict):
        raise TypeError("migrations is not a mapping")
    if manifest["database"]["file"] not in {entry["path"] for entry in files}:
        raise BackupError(f"{src} holds no database copy.")
    for entry in files:
        relative = PurePosixPath(entry["path"])
        if relative.is_absolute() or ".." in relative.parts:
            raise BackupError(f"{src / MANIFEST} names a file outside the backup: {relative}")
        path = src / relative
        if not path.is_file():
            raise BackupError(f"{path} is missing from the backup.")
        if path.stat().st_size != entry["size"] or _sha256(path) != entry["sha256"]:
            raise BackupError(f"{path} does not match its checksum: the backup is damaged.")


# --- Restore ----------------------------------------------------------------------------------


def backup_restore(src: Path) -> dict[str, Any]:
    """Replace the database and the uploaded files with those of a backup; return its manifest.

    Nothing is changed unless the whole backup verifies, was taken from the same database
    engine and needs no migration this Kefu does not have. Stop Kefu first.
    """
    src = Path(src)
    manifest = backup_verify(src)
    engine = _engine()
    if manifest["database"]["engine"] != engine:
        raise BackupError(
            f"{src} is a {manifest['database']['engine']} backup; this Kefu runs on {engine}."
            " Restore it into an installation using the same database engine."
        )
    _migrations_check(manifest["migrations"])
    database_copy = src / manifest["database"]["file"]
    if engine == "sqlite":
        _sqlite_restore(database_copy)
    else:
        _pg_restore(database_copy)
    media = [PurePosixPath(e["path"]) for e in manifest["files"] if e["path"].startswith("media/")]
    _media_restore(src, media, Path(settings.MEDIA_ROOT))
    return manifest


def _migrations_check(latest: dict[str, str]) -> None:
    known = MigrationLoader(None, ignore_no_migrations=True).disk_migrations
    for app, name in sorted(latest.items()):
        if (app, name) not in known:
            raise BackupError(
                f"The backup needs migration {app}.{name}, which this Kefu does not have:"
                " it was made by a newer version. Upgrade Kefu before restoring it."
            )


def _sqlite_restore(database_copy: Path) -> None:
    """Write the copy into the live database through the backup API, which goes through the
    live database's WAL, so its -wal and -shm files stay consistent with the main file."""
    live = _sqlite_live_path()
    connections.close_all()
    try:
        with (
            closing(
                sqlite3.connect(f"{database_copy.resolve().as_uri()}?mode=ro", uri=True)
            ) as copy,
            closing(sqlite3.connect(live, timeout=30)) as target,
        ):
            copy.backup(target)
    except sqlite3.Error as exc:
        raise BackupError(f"Could not restore the SQLite database: {exc}") from None


def _pg_restore(database_copy: Path) -> None:
    """Drop the tables the backup does not have (newer migrations would block dropping the
    rest), then let pg_restore recreate everything in one transaction."""
    listing = _pg_run("pg_restore", "--list", str(database_copy))
    backed_up = set(
        re.findall(r"^\d+; \d+ \d+ TABLE \S+ (\S+)(?: |$)", listing, flags=re.MULTILINE)
    )
    extra = sorted(set(connection.introspection.table_names()) - backed_up)
    if extra:
        with transaction.atomic(), connection.cursor() as cursor:
            names = ", ".join(connection.ops.quote_name(t) for t in extra)
            cursor.execute(f"DROP TABLE IF EXISTS {names} CASCADE")
    connections.close_all()
    _pg_run(
        "pg_restore",
        "--clean",
        "--if-exists",
        "--no-owner",
        "--single-transaction",
        _pg_dbname(),
        str(database_copy),
    )


def _media_restore(src: Path, files: list[PurePosixPath], media_root: Path) -> None:
    """Make MEDIA_ROOT hold exactly the backed-up files."""
    wanted = {Path(*f.parts[1:]) for f in files}
    if media_root.is_dir():
        for path in sorted(media_root.rglob("*"), reverse=True):  # contents before their folder
            if path.is_symlink() or (path.is_file() and path.relative_to(media_root) not in wanted):
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    for relative in wanted:
        target = media_root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / MEDIA / relative, target)
