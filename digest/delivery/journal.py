"""The outcome journal: the SMTP replies a sender has read and the database does not hold yet.

The SMTP reply to a message is the one fact nobody can learn again: lost, the message is
`unknown` for good. So a sender appends each reply here the moment it reads it (`note`),
before its connection does anything else, and the database takes it with the next step of
that connection (the write that marks the next group in flight, or one of its own before any
wait): a sender killed between the two loses nothing it heard. While the database is away
the replies stay here, fsynced (`keep`), until it returns.

The other fact only the sender knows is that a message was never begun: a group is marked in
flight before its first message is written, and a connection that finds the database away
begins no more of it. When its last step cannot give those rows back, it writes them here
as "queued" lines, and a replay gives them back to the queue rather than leaving them to be
recorded `unknown`. A delivery's last line is what its writer knew last, and it is the only
line a replay takes. Every line carries when it was written, and a line whose row its writer
changed since is stale and not replayed: the database took it with the writer's next step but
the file still held it, and the writer may have begun the row again (a retry, a row it gave
back itself), so replaying it could send a message twice.

- One journal per process (`host:pid`, plus a random part so that a reused pid never opens
  a dead process's file), under `state_dir`, created at the first reply it must hold and
  deleted when the process's send ends with nothing left in it. Once everything in it is in
  the database it is cut back to its header (and, while some lines are still waiting, written
  anew with only those once it has grown), so it stays small however long the send.
- Its writer holds an exclusive lock (flock) on it for as long as it lives. A line that
  `note` wrote is in the operating system's hands when `note` returns: it survives the death
  of the process (SIGKILL, the OOM killer), not a crash of the machine — then the message
  stays in flight and becomes `unknown`, as it would have without a journal. What `keep`
  wrote is also fsynced (and the folder is fsynced when the file is made), so it survives a
  crash of the machine too.
- Its first line names the database it belongs to (digest.store.database.identity) and its
  writer. A later `digest send`, worker or scheduler on the same machine replays every journal
  whose lock it can take (its writer is gone) and that belongs to its own database, then
  deletes it; a journal of another database is left alone, with a warning. Replaying is the
  same write as the writer's own (digest.store.deliveries.record), made only for the lines
  whose row is still that worker's and holds no outcome yet (deliveries.unrecorded): a
  journal whose writer had already recorded part of it, or one replayed twice, rewrites
  nothing, and the count it reports is what it truly added.

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
from digest.store.tables import DeliveryStatus, utcnow

log = logging.getLogger("digest.delivery.journal")
SUFFIX = ".journal"
VERSION = 1
COMPACT_AFTER = 4096  # lines past those still waiting before a journal is written anew

# One encoder for every line: json.dumps with an option builds a new JSONEncoder per call,
# which is half the cost of a line (a line is written per SMTP reply).
_ENCODER = json.JSONEncoder(ensure_ascii=False)


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
        "at": utcnow().isoformat(),  # what a line says holds only until its row changes
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
    the process writes to the one file, each batch of lines with one write(2) of its own."""

    def __init__(self, folder: Path, database: str, worker: str) -> None:
        self.folder = folder
        self.database = database
        self.worker = worker
        self.path: Path | None = None
        self._fd: int | None = None  # open O_APPEND, flock'ed while this process lives
        self._header_end = 0  # bytes: the header line
        self._lines = 0  # lines written after the header since it was last cut back
        self._unsynced = False  # lines written and not fsynced yet
        self._lock = threading.Lock()
        # (issue, delivery) -> (status, line): what the database does not hold yet
        self._pending: dict[tuple[int, int], tuple[str, bytes]] = {}

    def note(self, issue_id: int, results: Sequence[Result]) -> None:
        """Append `results` (of `issue_id`), written to the operating system: they survive
        this process's death. Each is written once (a result noted again changes nothing)."""
        with self._lock:
            self._write(issue_id, results)

    def keep(self, issue_id: int, results: Sequence[Result]) -> None:
        """Append `results` unless already noted, and fsync: they survive a crash of the
        machine too (the database is away: they may stay here a while)."""
        with self._lock:
            fresh = self._write(issue_id, results)
            if not self._unsynced or self._fd is None:
                return
            os.fsync(self._fd)
            self._unsynced = False
            log.info("kept %d outcome(s) in %s until the database returns", fresh, self.path)

    def committed(self, issue_id: int, results: Sequence[Result], *, purge: bool = False) -> None:
        """`results` are in the database: once nothing is waiting, the journal is cut back to
        its header; grown long with some lines still waiting (or with `purge`: now), it is
        written anew with those, fsynced."""
        if not self._pending and not self._lines:  # nothing was ever written
            return
        with self._lock:
            pending = self._pending
            for result in results:
                key = (issue_id, result.recipient.delivery_id)
                found = pending.get(key)
                if found is not None and found[0] == result.status.value:
                    del pending[key]
            if self._fd is None:
                return
            if not pending:
                if self._lines:
                    self._cut(())
            elif purge or self._lines > COMPACT_AFTER + 2 * len(pending):
                self._cut(tuple(line for _, line in pending.values()))

    def close(self) -> None:
        """The process's send ended: a journal with nothing waiting goes; one still holding
        outcomes (the database stayed away) is fsynced and left for the next `digest send`."""
        with self._lock:
            if self._fd is None:
                return
            if self._pending:
                if self._unsynced:
                    os.fsync(self._fd)
                    self._unsynced = False
                return
            self._delete()

    @property
    def holds(self) -> int:
        return len(self._pending)

    def _write(self, issue_id: int, results: Sequence[Result]) -> int:
        """The lines of `results` not written yet, in one write(2); how many there were."""
        pending = self._pending
        lines = []
        for result in results:
            key = (issue_id, result.recipient.delivery_id)
            status = result.status.value
            found = pending.get(key)
            if found is not None and found[0] == status:
                continue
            line = _ENCODER.encode(to_line(issue_id, result)).encode() + b"\n"
            pending[key] = (status, line)
            lines.append(line)
        if lines:
            _write_all(self._open(), b"".join(lines))
            self._lines += len(lines)
            self._unsynced = True
        return len(lines)

    def _cut(self, keep: Sequence[bytes]) -> None:
        """Back to the header, then `keep` written again (fsynced when there is any: it may
        hold lines `keep` had fsynced)."""
        assert self._fd is not None
        os.ftruncate(self._fd, self._header_end)
        self._lines = len(keep)
        if keep:
            _write_all(self._fd, b"".join(keep))
            os.fsync(self._fd)
        self._unsynced = False

    def _open(self) -> int:
        if self._fd is not None:
            return self._fd
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        host, _, pid = self.worker.rpartition(":")
        name = f"{_safe(host)}-{pid}-{secrets.token_hex(4)}{SUFFIX}"
        self.path = self.folder / name
        # only its owner reads it: SMTP replies may name addresses
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        header = {"journal": VERSION, "database": self.database, "worker": self.worker}
        _write_all(descriptor, json.dumps(header).encode() + b"\n")
        os.fsync(descriptor)
        _sync_folder(self.folder)
        self._header_end = os.fstat(descriptor).st_size
        self._lines = 0
        self._fd = descriptor
        return descriptor

    def _delete(self) -> None:
        if self._fd is None or self.path is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        _sync_folder(self.folder)
        os.close(self._fd)  # releases the lock
        self._fd, self.path = None, None
        self._lines = 0
        self._unsynced = False


def _write_all(descriptor: int, data: bytes) -> None:
    """Every byte of `data` at the end of the file (O_APPEND; a short write goes on)."""
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


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
    """What a replay did: outcomes recorded per writer, journals left alone, and rows given
    back to the queue per writer (marked in flight by a writer that never began them)."""

    recorded: dict[str, int]
    foreign: list[Path]
    given_back: dict[str, int]


def replay(folder: Path, database: Database) -> Replayed:
    """Record every journal in `folder` whose writer is gone and that belongs to `database`,
    deleting each once committed; leave a journal of another database alone, with a warning."""
    recorded: dict[str, int] = {}
    given_back: dict[str, int] = {}
    foreign: list[Path] = []
    if not folder.is_dir():
        return Replayed(recorded, foreign, given_back)
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
            taken = latest(lines)

            def write(
                connection: Any, taken: Lines = taken, worker: str = worker
            ) -> tuple[int, int]:
                added = returned = 0
                for issue_id, missing in waiting_in(connection, worker, taken).items():
                    deliveries.record(connection, issue_id, worker, missing)
                    back = sum(1 for r in missing if r.status == DeliveryStatus.QUEUED)
                    added += len(missing) - back
                    returned += back
                return added, returned

            count, back = database.run_transaction(write) if taken else (0, 0)
            if count:
                recorded[worker] = recorded.get(worker, 0) + count
            if back:
                given_back[worker] = given_back.get(worker, 0) + back
            path.unlink()
            _sync_folder(folder)
            if count:
                log.warning(
                    "recorded %d outcome(s) that %s kept in its journal and did not record itself",
                    count,
                    worker,
                )
            if back:
                log.warning(
                    "gave back to the queue %d message(s) that %s had marked in flight and "
                    "never began (it ended while the database was away)",
                    back,
                    worker,
                )
    return Replayed(recorded, foreign, given_back)


@dataclass(frozen=True, slots=True)
class Lines:
    """A journal's lines as a replay takes them: each delivery's last line only, by issue
    (what its writer knew last: a row given back while the database was away, then begun
    and answered once it returned, has both lines), and when each was written."""

    by_issue: dict[int, list[Result]]
    written: dict[int, datetime]

    def __bool__(self) -> bool:
        return bool(self.by_issue)


def latest(lines: Sequence[dict[str, Any]]) -> Lines:
    by_issue: dict[int, dict[int, Result]] = {}
    written: dict[int, datetime] = {}
    for line in lines:
        issue_id, result = from_line(line)
        delivery = result.recipient.delivery_id
        by_issue.setdefault(issue_id, {})[delivery] = result
        at = _moment(line.get("at"))  # a journal written before lines had it: none
        if at is None:
            written.pop(delivery, None)
        else:
            written[delivery] = at
    results = {issue_id: list(found.values()) for issue_id, found in by_issue.items()}
    return Lines(results, written)


def waiting_in(connection: Any, worker: str, lines: Lines) -> dict[int, list[Result]]:
    """Of `latest`'s results, those the database does not hold yet (deliveries.unrecorded):
    what a replay writes, read without writing.

    A line whose row its writer changed after writing it is stale, and left out: the line was
    taken by the database with the writer's next step, but stayed in the file (cut back only
    when nothing else waits), and the writer may have claimed and begun the row again since
    (a deferred or failed delivery retried, a row it gave back itself); applied, it would
    give back or defer a row whose message may be on the wire, which would be sent twice.
    A row a successor made `unknown` takes the line's outcome whenever it was written."""
    waiting: dict[int, list[Result]] = {}
    for issue_id, results in lines.by_issue.items():
        missing = deliveries.unrecorded(connection, worker, results)
        dated = [r.recipient.delivery_id for r in missing]
        if dated and lines.written:
            rows = deliveries.changes(connection, dated)
            missing = [r for r in missing if _current(r, lines.written, rows)]
        if missing:
            waiting[issue_id] = missing
    return waiting


def _current(
    result: Result,
    written: dict[int, datetime],
    rows: dict[int, tuple[DeliveryStatus, datetime]],
) -> bool:
    delivery = result.recipient.delivery_id
    at = written.get(delivery)
    if at is None:
        return True
    status, changed = rows[delivery]
    return status == DeliveryStatus.UNKNOWN or changed <= at


@dataclass(frozen=True, slots=True)
class Found:
    """One journal in the folder, for `digest status`: its writer; how many outcomes it holds
    that its writer read (`outcomes`), how many messages whose reply never came (`unknown`: a
    timeout while the database was away; recorded unknown) and how many rows it says its
    writer never began (`unbegun`: they go back to the queue); and whether its writer still
    runs (`live`) or it belongs to another database. For a journal waiting for its replay the
    counts are what the replay will write (each delivery's last line, not in the database
    yet); for a live writer's or another database's they count its lines (a live writer's
    may be in the database already: it is cut back in steps)."""

    path: Path
    worker: str
    outcomes: int
    live: bool
    foreign: bool
    unbegun: int = 0
    unknown: int = 0

    @property
    def state(self) -> str:
        return "live" if self.live else "foreign" if self.foreign else "waiting"


def survey(folder: Path, database: Database) -> list[Found]:
    """The journals in `folder`, read without changing them: which wait for a replay (their
    writer is gone), which a running process holds, which belong to another database."""
    found: list[Found] = []
    mine = identity(database)
    for path, header, lines, live in _peek(folder):
        foreign = header.get("database") != mine
        worker = str(header.get("worker", ""))
        taken = latest(lines)
        by_issue = taken.by_issue
        if not live and not foreign and taken:  # what its replay will write, exactly

            def unrecorded(
                connection: Any, worker: str = worker, taken: Lines = taken
            ) -> dict[int, list[Result]]:
                return waiting_in(connection, worker, taken)

            by_issue = database.run_transaction(unrecorded)
        statuses = [r.status for results in by_issue.values() for r in results]
        unbegun = statuses.count(DeliveryStatus.QUEUED)
        unknown = statuses.count(DeliveryStatus.UNKNOWN)
        outcomes = len(statuses) - unbegun - unknown
        found.append(Found(path, worker, outcomes, live, foreign, unbegun, unknown))
    return found


def waiting(folder: Path, database: Database) -> list[tuple[str, Lines]]:
    """The journals the next replay will take, read without changing anything: each one
    whose writer is gone and that belongs to this database, as its writer and its lines as
    the replay takes them (`latest`; `waiting_in` then says what it will write). So that a
    plan shown before the replay says what will become of the rows a dead sender held."""
    mine = identity(database)
    return [
        (str(header.get("worker", "")), latest(lines))
        for _, header, lines, live in _peek(folder)
        if not live and header.get("database") == mine
    ]


def _peek(folder: Path) -> Iterator[tuple[Path, dict[str, Any], list[dict[str, Any]], bool]]:
    """Each journal in `folder` with a header: its path, header, lines, and whether its
    writer still holds it (a shared lock tried, never waited for)."""
    if not folder.is_dir():
        return
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        try:
            handle = open(path, encoding="utf-8")  # noqa: SIM115 (closed below)
        except OSError:  # replayed and deleted meanwhile
            continue
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
                live = False
            except OSError:  # its writer holds it
                live = True
            header, lines = _read(handle)
        if header is not None:
            yield path, header, lines, live


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
