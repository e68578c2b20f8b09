"""The outcome journal: what a sender learnt from the SMTP server while the database was away.

The SMTP reply to a message is the one fact nobody can learn again: lost, the message is
`unknown` for good. So when a sender cannot record outcomes in the database, it appends
them here before doing anything else, and records them in the database when it returns.

- One journal per process (`host:pid`, plus a random part so that a reused pid never opens
  a dead process's file), under `state_dir`, created at the first outcome it must keep and
  deleted once everything in it is committed to the database.
- Its writer holds an exclusive lock (flock) on it for as long as it lives; every line is
  flushed and fsynced before the sender goes on, and the folder is fsynced when the file is
  made, so what a line says survives a crash of the process or of the machine.
- Its first line names the database it belongs to (digest.store.database.identity) and its
  writer. A later `digest send`, worker or scheduler on the same machine replays every journal
  whose lock it can take (its writer is gone) and that belongs to its own database, then
  deletes it; a journal of another database is left alone, with a warning. Replaying is the
  same write as the writer's own (digest.store.deliveries.record: only rows still that
  worker's), so replaying twice, or a journal whose writer had already recorded part of it,
  changes nothing more.

Only this machine can replay its journals: the folder is local, and so are the locks.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from digest.models import Recipient
from digest.store import deliveries
from digest.store.database import Database, identity
from digest.store.deliveries import Result
from digest.store.tables import DeliveryStatus

log = logging.getLogger("digest.delivery.journal")
SUFFIX = ".journal"
VERSION = 1


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def to_line(issue_id: int, result: Result) -> dict[str, Any]:
    r = result.recipient
    return {
        "issue": issue_id,
        "delivery": r.delivery_id,
        "subscriber": r.subscriber_id,
        "before": r.attempts,  # attempts recorded before this run
        "since": _when(r.deferred_since),
        "status": result.status.value,
        "attempts": result.attempts,
        "message_id": result.message_id,
        "error": result.error,
        "next": _when(result.next_attempt_at),
    }


def from_line(line: dict[str, Any]) -> tuple[int, Result]:
    recipient = Recipient(
        int(line["delivery"]),
        int(line["subscriber"]),
        "",
        "",
        None,
        None,
        int(line["before"]),
        _moment(line["since"]),
    )
    result = Result(
        recipient,
        DeliveryStatus(line["status"]),
        int(line["attempts"]),
        line["message_id"],
        line["error"],
        _moment(line["next"]),
    )
    return int(line["issue"]), result


class Journal:
    """This process's journal (see the module doc). Thread-safe: every lane of every engine of
    the process writes to the one file."""

    def __init__(self, folder: Path, database: str, worker: str) -> None:
        self.folder = folder
        self.database = database
        self.worker = worker
        self.path: Path | None = None
        self._file: IO[str] | None = None
        self._lock = threading.Lock()
        self._pending: dict[tuple[int, int], str] = {}  # (issue, delivery) -> status kept

    def keep(self, issue_id: int, results: Sequence[Result]) -> None:
        """Append `results` (of `issue_id`), each line fsynced, unless already kept."""
        with self._lock:
            fresh = [
                r
                for r in results
                if self._pending.get((issue_id, r.recipient.delivery_id)) != r.status.value
            ]
            if not fresh:
                return
            handle = self._open()
            for result in fresh:
                handle.write(json.dumps(to_line(issue_id, result), ensure_ascii=False) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
                self._pending[(issue_id, result.recipient.delivery_id)] = result.status.value
            log.info("kept %d outcome(s) in %s until the database returns", len(fresh), self.path)

    def committed(self, issue_id: int, results: Sequence[Result]) -> None:
        """`results` are in the database: once nothing kept is left, the journal goes."""
        if not self._pending:  # the usual case: nothing was ever kept
            return
        with self._lock:
            for result in results:
                key = (issue_id, result.recipient.delivery_id)
                if self._pending.get(key) == result.status.value:
                    del self._pending[key]
            if not self._pending:
                self._delete()

    @property
    def holds(self) -> int:
        return len(self._pending)

    def _open(self) -> IO[str]:
        if self._file is not None:
            return self._file
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        host, _, pid = self.worker.rpartition(":")
        name = f"{_safe(host)}-{pid}-{secrets.token_hex(4)}{SUFFIX}"
        self.path = self.folder / name
        # only its owner reads it: SMTP replies may name addresses
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        handle = os.fdopen(descriptor, "a", encoding="utf-8")
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        header = {"journal": VERSION, "database": self.database, "worker": self.worker}
        handle.write(json.dumps(header) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
        _sync_folder(self.folder)
        self._file = handle
        return handle

    def _delete(self) -> None:
        if self._file is None or self.path is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        _sync_folder(self.folder)
        self._file.close()  # releases the lock
        self._file, self.path = None, None


_journals: dict[tuple[Path, str], Journal] = {}
_journals_lock = threading.Lock()


def journal_for(folder: Path, database: Database, worker: str) -> Journal:
    """The one journal of this process for `folder` and `database` (made on first use)."""
    tag = identity(database)
    with _journals_lock:
        key = (folder.resolve(), tag)
        found = _journals.get(key)
        if found is None or found.worker != worker:  # a fork has a name of its own
            found = _journals[key] = Journal(folder, tag, worker)
        return found


@dataclass(frozen=True, slots=True)
class Replayed:
    """What a replay did: outcomes recorded per writer, journals left alone and why."""

    recorded: dict[str, int]
    foreign: list[Path]


def replay(folder: Path, database: Database) -> Replayed:
    """Record every journal in `folder` whose writer is gone and that belongs to `database`,
    deleting each once committed; leave a journal of another database alone, with a warning."""
    recorded: dict[str, int] = {}
    foreign: list[Path] = []
    if not folder.is_dir():
        return Replayed(recorded, foreign)
    mine = identity(database)
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        with _locked(path) as handle:
            if handle is None:  # its writer lives (or it vanished): not ours to touch
                continue
            header, lines = _read(handle)
            if header is None:  # a writer that made it and has not written its header yet
                continue
            if header.get("database") != mine:
                foreign.append(path)
                log.warning(
                    "left the outcome journal %s alone: it belongs to another database "
                    "(replay it with a configuration that uses that database)",
                    path,
                )
                continue
            worker = str(header.get("worker", ""))
            by_issue: dict[int, list[Result]] = {}
            for line in lines:
                issue_id, result = from_line(line)
                by_issue.setdefault(issue_id, []).append(result)

            def write(
                connection: Any, by_issue: dict[int, list[Result]] = by_issue, worker: str = worker
            ) -> None:
                for issue_id, results in by_issue.items():
                    deliveries.record(connection, issue_id, worker, results)

            database.run_transaction(write)
            count = sum(len(results) for results in by_issue.values())
            recorded[worker] = recorded.get(worker, 0) + count
            path.unlink()
            _sync_folder(folder)
            log.warning(
                "recorded %d outcome(s) that %s kept in its journal while the database was away",
                count,
                worker,
            )
    return Replayed(recorded, foreign)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[IO[str] | None]:
    """The journal opened and locked, or None when another process holds its lock."""
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError:
        yield None
        return
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield None
            return
        yield handle
    finally:
        handle.close()


def _read(handle: IO[str]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The header and the entries; a torn last line (a crash mid-write) is not an entry."""
    header: dict[str, Any] | None = None
    lines: list[dict[str, Any]] = []
    for raw in handle:
        if not raw.endswith("\n"):
            break
        try:
            value = json.loads(raw)
        except ValueError:
            break
        if not isinstance(value, dict):
            break
        if header is None:
            if value.get("journal") != VERSION:
                return None, []
            header = value
        else:
            lines.append(value)
    return header, lines


def _safe(host: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in host) or "host"


def _sync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
