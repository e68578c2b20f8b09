"""`digest db copy --to URL`: move an instance between SQLite and PostgreSQL, whole.

The source is read as it stood at one instant: a SQLite database through an online backup
into a temporary file (digest.store.backup), a PostgreSQL one in a read-only repeatable-read
transaction. Every table is copied with its ids, the target's id sequences are set past the
highest id the source ever gave out, all in one transaction of the target, and then every
table is counted on both sides: a copy whose counts differ is reported as failed.

The copy refuses while a send holds the send lease, and needs an empty target (its schema is
created or migrated first). What `digest serve` or `digest schedule` write after the instant
the copy read stays behind, so stop them before a move; the target is complete as of that
instant, and the source is left as it was.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from digest.errors import DigestError
from digest.store import backup as backups
from digest.store import lease
from digest.store.copy import copy_rows, counts, same_database, snapshot
from digest.store.database import Database, connect, open_database, redact


@dataclass(frozen=True, slots=True)
class CopyDone:
    target: str  # the target URL, password hidden
    counts: dict[str, int]  # rows per table, equal on both sides

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


def copy(source_url: str, target_url: str, *, batch: int = 2000) -> CopyDone:
    """Copy the database at `source_url` into the empty one at `target_url`."""
    if same_database(source_url, target_url):
        raise DigestError(f"{redact(target_url)} is the configured database itself.")
    source = open_database(source_url)
    try:
        holder = lease.current_holder(source, lease.SEND_LEASE)
        if holder is not None:
            raise DigestError(
                f"a send is running ({holder.describe()}): copy once it has finished or been "
                "stopped."
            )
        target = open_database(target_url)
        try:
            copied = _copy_snapshot(source_url, source, target, batch)
            with target.engine.connect() as connection:
                _compare(copied, counts(connection), target_url)  # what was committed
                connection.rollback()
        finally:
            target.dispose()
    finally:
        source.dispose()
    return CopyDone(redact(target_url), copied)


def _compare(copied: dict[str, int], landed: dict[str, int], target_url: str) -> None:
    for name, count in copied.items():
        if landed.get(name) != count:
            raise DigestError(
                f"the copy's counts differ: {name} has {count} rows in the source and "
                f"{landed.get(name, 0)} in {redact(target_url)}; the target was left empty."
            )


def _copy_snapshot(
    source_url: str, source: Database, target: Database, batch: int
) -> dict[str, int]:
    """Copy from a snapshot of the source; the counts are compared before the target's
    transaction commits, so a copy that lost a row leaves the target empty."""
    live = backups.sqlite_file(source_url)
    target_url = target.engine.url.render_as_string(hide_password=False)
    with contextlib.ExitStack() as stack:
        if live is None:
            reading = stack.enter_context(source.engine.connect())
        else:
            frozen = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "snap.sqlite3"
            backups.backup_sqlite(live, frozen)
            reader = connect(f"sqlite:///{frozen}")
            stack.callback(reader.dispose)
            reading = stack.enter_context(reader.engine.connect())
        rows = stack.enter_context(snapshot(reading))
        writing = stack.enter_context(target.transaction())
        copied = copy_rows(rows, writing, batch=batch)
        _compare(copied, counts(writing), target_url)
        return copied
