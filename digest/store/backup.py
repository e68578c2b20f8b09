"""Whole copies of the database file or server database, taken while digest runs.

SQLite: the online backup API of the `sqlite3` module, in one step. One step reads the whole
database inside one read transaction, so the copy is the database as it stood at one instant,
whatever other processes commit meanwhile: in WAL mode a reader neither blocks writers nor
sees their later commits. (A copy in several steps would restart whenever another process
writes, and might never end during a send.) The copy is written beside the target, checked
with `PRAGMA integrity_check`, made a self-contained file (journal mode DELETE: no -wal file
to forget), flushed to disk, then renamed into place: a backup that exists is whole.

Restoring runs the same API the other way, into the live file, as one write transaction: a
process that has the database open (`digest serve`) sees either the old database or the
restored one, never a mixture, and no open file is swapped under it.

PostgreSQL: `pg_dump` (custom format), which reads in one repeatable-read snapshot, and
`pg_restore` in one transaction. They are PostgreSQL's own client tools, found on PATH; the
password goes to them in the environment (PGPASSWORD), never on a command line.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, func, inspect, select, text
from sqlalchemy.engine import make_url

from digest.errors import DigestError
from digest.store.database import SQLITE_BUSY_SECONDS, Database, known_revisions, redact
from digest.store.tables import Delivery, Issue, Lease, Subscriber

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"


@dataclass(frozen=True, slots=True)
class Contents:
    """What a database holds, in the figures a person checks a backup by."""

    subscribers: int
    issues: int
    deliveries: int
    revision: str | None


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL; an error for an in-memory database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise DigestError("database.url: an in-memory SQLite database cannot be backed up.")
    return Path(parsed.database)


def kind_of_file(path: Path) -> str:
    """`sqlite` or `pg_dump` by the file's first bytes; an error naming the file otherwise."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        raise DigestError(f"{path}: no such file.") from None
    except OSError as exc:
        raise DigestError(f"{path}: cannot read it: {exc.strerror}.") from None
    if head == SQLITE_MAGIC:
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "pg_dump"
    raise DigestError(
        f"{path}: not a backup made by `digest db backup` (neither a SQLite database nor a "
        "pg_dump archive)."
    )


def contents(database: Database) -> Contents:
    """Rows that matter and the schema revision; zeros for a database never migrated."""
    with database.engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        if "issues" not in tables:
            return Contents(0, 0, 0, None)

        def count(model: type[Subscriber] | type[Issue] | type[Delivery]) -> int:
            return int(connection.execute(select(func.count()).select_from(model)).scalar_one())

        revision = None
        if "alembic_version" in tables:
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        found = Contents(count(Subscriber), count(Issue), count(Delivery), revision)
        connection.rollback()
    return found


def drop_stale_leases(database: Database, before: datetime) -> int:
    """Delete the lease rows taken before `before` (the start of a restore): they came with
    the backup, and no process of the restored database holds them. A lease taken since
    stays. Returns how many went."""
    with database.session() as session:
        result = session.execute(delete(Lease).where(Lease.acquired_at <= before))
        return int(getattr(result, "rowcount", 0) or 0)


# -- SQLite -------------------------------------------------------------------------------------


def _sqlite(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    uri = f"{path.resolve().as_uri()}{'?mode=ro' if readonly else ''}"
    connection = sqlite3.connect(uri, uri=True, timeout=SQLITE_BUSY_SECONDS)
    connection.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_SECONDS * 1000)}")
    return connection


def integrity(path: Path) -> str:
    """`PRAGMA integrity_check` of a SQLite file: "ok", or its first complaint."""
    connection = _sqlite(path, readonly=True)
    try:
        row = connection.execute("PRAGMA integrity_check").fetchone()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        connection.close()
    return str(row[0]) if row else "no answer"


def file_contents(path: Path) -> Contents:
    """What a SQLite backup file holds, read without changing it (no WAL, no migration)."""
    connection = _sqlite(path, readonly=True)
    try:

        def count(table: str) -> int:
            return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

        revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        return Contents(
            count("subscribers"),
            count("issues"),
            count("deliveries"),
            str(revision[0]) if revision else None,
        )
    except sqlite3.DatabaseError:
        return Contents(0, 0, 0, None)
    finally:
        connection.close()


def sqlite_revision(path: Path) -> str | None:
    """The schema revision a SQLite file is at (None: not a digest database)."""
    connection = _sqlite(path, readonly=True)
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    finally:
        connection.close()
    return str(row[0]) if row else None


def backup_sqlite(live: Path, target: Path) -> None:
    """Copy the live SQLite database to `target` (see the module's docstring: one instant,
    checked, whole or absent). Writers go on meanwhile; they never wait for the copy."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    source = _sqlite(live)
    copy = sqlite3.connect(partial)
    try:
        source.backup(copy)  # pages=-1: the whole database in one step, one read transaction
        copy.execute("PRAGMA journal_mode=DELETE")
        verdict = copy.execute("PRAGMA integrity_check").fetchone()
        if not verdict or verdict[0] != "ok":
            raise DigestError(f"{target}: the copy failed its integrity check: {verdict}.")
        copy.close()
        source.close()
        _flush(partial)
        os.replace(partial, target)
        _flush(target.parent)
    except sqlite3.Error as exc:
        raise DigestError(f"cannot back up {live}: {exc}.") from None
    finally:
        copy.close()
        source.close()
        partial.unlink(missing_ok=True)


def restore_sqlite(backup: Path, live: Path) -> None:
    """Write the backup over the live database in one write transaction (module docstring),
    then back to WAL mode, which digest runs in."""
    source = _sqlite(backup, readonly=True)
    live.parent.mkdir(parents=True, exist_ok=True)
    target = _sqlite(live)
    try:
        source.backup(target)
        target.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:
        raise DigestError(f"cannot restore into {live}: {exc}.") from None
    finally:
        target.close()
        source.close()


def _flush(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# -- PostgreSQL ---------------------------------------------------------------------------------


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise DigestError(
            f"{name} is not installed (or not on PATH): a PostgreSQL database is backed up "
            f"and restored with PostgreSQL's own client tools (Debian: apt install "
            "postgresql-client; the version of the server or newer)."
        )
    return found


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for the tools (no driver suffix, no password) and the
    environment that carries the password."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(command: list[str], env: dict[str, str], doing: str) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[0]
        raise DigestError(f"{doing} failed: {reason.removeprefix(command[0] + ': ')}.")
    return done.stdout


def backup_postgresql(url: str, target: Path) -> None:
    """`pg_dump` of the whole database to `target`, whole or absent (renamed into place)."""
    tool = _tool("pg_dump")
    dsn, env = _libpq(url)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        _run(
            [tool, "--format=custom", "--no-owner", "--no-privileges", "--file", str(partial), dsn],
            env,
            f"pg_dump of {redact(url)}",
        )
        _flush(partial)
        os.replace(partial, target)
        _flush(target.parent)
    finally:
        partial.unlink(missing_ok=True)


_VERSION_ROW = re.compile(r"^COPY [^\n]*alembic_version[^\n]*FROM stdin;\n([^\n\\]+)\n", re.M)


def dump_revision(path: Path) -> str | None:
    """The schema revision a pg_dump archive holds (read with pg_restore, data only)."""
    tool = _tool("pg_restore")
    listing = _run(
        [tool, "--data-only", "--table=alembic_version", "--file=-", str(path)],
        dict(os.environ),
        f"reading {path}",
    )
    found = _VERSION_ROW.search(listing)
    return found.group(1).strip() if found else None


def restore_postgresql(path: Path, url: str) -> None:
    """`pg_restore` of the archive over the database, in one transaction: it drops what the
    archive holds and creates it again, or changes nothing."""
    tool = _tool("pg_restore")
    dsn, env = _libpq(url)
    _run(
        [
            tool,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            "--dbname",
            dsn,
            str(path),
        ],
        env,
        f"pg_restore into {redact(url)}",
    )


def check_revision(revision: str | None, where: Path) -> None:
    """Refuse a backup that is no digest database, or one of a newer digest than this one."""
    if revision is None:
        raise DigestError(f"{where}: not a digest database (it has no schema revision).")
    if revision not in known_revisions():
        raise DigestError(
            f"{where}: made by a newer digest (schema revision {revision}); restore it with "
            "that version."
        )
