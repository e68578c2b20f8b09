"""`digest db backup` and `digest db restore`: a whole copy taken while digest runs, and the
way back to it.

A backup is the database at one instant (digest.store.backup says how, for SQLite and for
PostgreSQL), taken without stopping sends, sign-ups or the scheduler: a delivery it holds as
`sent` had been accepted by the SMTP server before the backup ended, and every message the
server had accepted before the backup began is in it as `sent` or `in_flight` (an in-flight
row becomes `unknown` once restored: never sent twice). It holds no secret: the signing
secret of the links, the DKIM keys and the passwords live in files or the environment, and
the result names them, since a restored database without its `web.secret` has links that no
longer work.

A restore replaces the configured database with the backup. It refuses while a send holds the
send lease, and holds that lease itself meanwhile so that no send starts half-way; it refuses
to replace a database that has issues unless forced (that history would be lost); and it
refuses a backup of a newer schema than this digest knows. A backup of an older schema is
migrated after the restore. Ids handed out after the backup was taken are not handed out again
(every id sequence on PostgreSQL, the subscribers' AUTOINCREMENT counter on SQLite stay past
the highest the replaced database had given), so a link made for a subscriber the restore took
away can never name a newer one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from digest.errors import DigestError
from digest.ops.settings import BackupSettings, Secret
from digest.store import backup as store
from digest.store import lease
from digest.store.copy import highest_ids, keep_ids_past
from digest.store.database import connect, head_revision, redact, upgrade
from digest.store.tables import utcnow

RESTORE_LEASE_TTL = timedelta(hours=1)  # longer than any restore; released at the end


@dataclass(frozen=True, slots=True)
class BackupDone:
    path: Path
    kind: str  # "SQLite" or "PostgreSQL"
    size: int  # bytes
    contents: store.Contents | None  # None for a pg_dump archive (read only by pg_restore)
    secrets: tuple[Secret, ...]


@dataclass(frozen=True, slots=True)
class RestoreDone:
    kind: str
    revision_before: str | None  # the backup's schema revision
    revision_after: str
    contents: store.Contents


def backup(settings: BackupSettings, target: Path) -> BackupDone:
    """Write a backup of the configured database to `target` (a new file)."""
    url = settings.database_url
    if target.exists():
        raise DigestError(
            f"{target} already exists: choose a new name (a backup never overwrites a file)."
        )
    if not target.parent.is_dir():
        raise DigestError(f"{target.parent}: no such folder.")
    live = store.sqlite_file(url)
    if live is None:
        store.backup_postgresql(url, target)
        return BackupDone(target, "PostgreSQL", target.stat().st_size, None, settings.secrets)
    if not live.exists():
        raise DigestError(f"there is no database at {live} to back up.")
    if live.resolve() == target.resolve():
        raise DigestError(f"{target} is the database itself: name another file.")
    store.backup_sqlite(live, target)
    contents = store.file_contents(target)
    return BackupDone(target, "SQLite", target.stat().st_size, contents, settings.secrets)


def restore(database_url: str, source: Path, *, force: bool = False) -> RestoreDone:
    """Replace the configured database with the backup `source` (see the module docstring
    for what is refused and why)."""
    kind = store.kind_of_file(source)
    live = store.sqlite_file(database_url)
    if (kind == "sqlite") != (live is not None):
        made, needs = ("SQLite", "PostgreSQL") if kind == "sqlite" else ("PostgreSQL", "SQLite")
        raise DigestError(
            f"{source} is a {made} backup and the configured database is {needs}: restore it "
            f"into a {made} database, then move it with `digest db copy --to URL`."
        )
    if live is not None:
        if source.resolve() == live.resolve():
            raise DigestError(f"{source} is the database itself: name a backup.")
        verdict = store.integrity(source)
        if verdict != "ok":
            raise DigestError(f"{source} fails its integrity check ({verdict}): not restored.")
        revision = store.sqlite_revision(source)
    else:
        revision = store.dump_revision(source)
    store.check_revision(revision, source)

    database = connect(database_url)
    try:
        present = store.contents(database)
        if present.issues and not force:
            raise DigestError(
                f"{redact(database_url)} holds {present.issues} issues and {present.deliveries} "
                "deliveries that the restore would replace: back it up first, then restore "
                "with --force."
            )
        started = utcnow()
        holder = lease.worker_name()
        given_out: dict[str, int] = {}
        if present.revision is not None:
            other = lease.acquire(database, lease.SEND_LEASE, holder, RESTORE_LEASE_TTL)
            if other is not None:
                raise DigestError(
                    f"a send is running ({other.describe()}): restore once it has finished "
                    "or been stopped."
                )
        try:
            if present.revision is not None:
                with database.transaction() as connection:
                    given_out = highest_ids(connection)
            if live is not None:
                store.restore_sqlite(source, live)
            else:
                store.restore_postgresql(source, database_url)
        except BaseException:
            if present.revision is not None:
                lease.release(database, lease.SEND_LEASE, holder)
            raise
        database.dispose()  # the schema may have changed under the pool's connections
        if revision != head_revision():
            upgrade(database)
        store.drop_stale_leases(database, started)
        with database.transaction() as connection:  # no id given out before is given again
            keep_ids_past(connection, given_out)
        after = store.contents(database)
    finally:
        database.dispose()
    return RestoreDone(
        "SQLite" if live is not None else "PostgreSQL", revision, head_revision(), after
    )
