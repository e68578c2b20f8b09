"""Where the engine's recipients come from and where their outcomes go.

`LedgerQueue` is a real send: it claims rows of one issue in the database for a named
worker, marks each group in flight before sending it, and records outcomes — each step one
transaction that also records what came before, so the ledger costs a few writes per group
rather than one per message. `ListQueue` is a fixed list (a dry run's audience, the one
address of `--to`) that records nothing anywhere: the same engine, no state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from digest.models import Recipient
from digest.store import deliveries
from digest.store.database import Database
from digest.store.deliveries import Result
from digest.store.tables import DeliveryStatus, utcnow


class Queue(Protocol):
    def claim(self, limit: int, done: Sequence[Result]) -> list[Recipient]:
        """Record `done`, then claim up to `limit` recipients (none in flight yet); empty: the
        queue is empty."""
        ...

    def begin(self, group: Sequence[Recipient], done: Sequence[Result]) -> set[int]:
        """Record `done`, then mark `group` in flight; the delivery ids still ours to send."""
        ...

    def hold(self, group: Sequence[Recipient], done: Sequence[Result]) -> None:
        """Record `done`, then put `group` (in flight, not on the wire) back to claimed."""
        ...

    def finish(self, done: Sequence[Result], release: Sequence[Recipient]) -> None:
        """Record `done` and give back `release` (claimed, never begun)."""
        ...


class LedgerQueue:
    """The queued (then the deferred and due) deliveries of one issue, for worker `worker`.

    Deferred rows are due when their next attempt falls before the queue was made, so a
    delivery deferred during this run waits for a later one.
    """

    def __init__(
        self,
        database: Database,
        issue_id: int,
        worker: str,
        claim_seconds: float,
        as_of: datetime | None = None,
    ) -> None:
        self.database = database
        self.issue_id = issue_id
        self.worker = worker
        self.claim_for = timedelta(seconds=claim_seconds)
        self.as_of = as_of or utcnow()
        self._queued_left = True
        self._registered = False

    def claim(self, limit: int, done: Sequence[Result]) -> list[Recipient]:
        with self.database.transaction() as connection:
            if not self._registered:
                deliveries.register(connection, self.worker, utcnow() + self.claim_for)
                self._registered = True
            deliveries.record(connection, self.issue_id, self.worker, done)
            if self._queued_left:
                taken = deliveries.claim(connection, self.issue_id, self.worker, limit)
                if taken:
                    return taken
                self._queued_left = False
            return deliveries.claim(connection, self.issue_id, self.worker, limit, due=self.as_of)

    def begin(self, group: Sequence[Recipient], done: Sequence[Result]) -> set[int]:
        with self.database.transaction() as connection:
            deliveries.record(connection, self.issue_id, self.worker, done)
            return deliveries.start(connection, group, self.worker)

    def hold(self, group: Sequence[Recipient], done: Sequence[Result]) -> None:
        with self.database.transaction() as connection:
            deliveries.record(connection, self.issue_id, self.worker, done)
            deliveries.hold(connection, group, self.worker)

    def finish(self, done: Sequence[Result], release: Sequence[Recipient]) -> None:
        with self.database.transaction() as connection:
            deliveries.record(connection, self.issue_id, self.worker, done)
            deliveries.release(connection, release, self.worker)

    def renew(self) -> bool:
        """The heartbeat's beat: keep this worker's claims its own."""
        if not self._registered:
            return True
        with self.database.transaction() as connection:
            return deliveries.renew(connection, self.worker, utcnow() + self.claim_for)

    def close(self) -> None:
        """The worker ended: everything it held was recorded or given back."""
        if self._registered:
            with self.database.transaction() as connection:
                deliveries.unregister(connection, self.worker)
            self._registered = False


class ListQueue:
    """A fixed list of recipients; outcomes are kept in `results`, nothing is stored."""

    def __init__(self, recipients: Sequence[Recipient]) -> None:
        self.waiting = list(recipients)
        self.results: list[Result] = []

    def claim(self, limit: int, done: Sequence[Result]) -> list[Recipient]:
        self._keep(done)
        taken, self.waiting = self.waiting[:limit], self.waiting[limit:]
        return taken

    def begin(self, group: Sequence[Recipient], done: Sequence[Result]) -> set[int]:
        self._keep(done)
        return {r.delivery_id for r in group}

    def hold(self, group: Sequence[Recipient], done: Sequence[Result]) -> None:
        self._keep(done)

    def finish(self, done: Sequence[Result], release: Sequence[Recipient]) -> None:
        self._keep(done)
        self.waiting[:0] = release

    def _keep(self, done: Sequence[Result]) -> None:
        for result in done:
            if result.status == DeliveryStatus.QUEUED:
                self.waiting.insert(0, result.recipient)
            else:
                self.results.append(result)
