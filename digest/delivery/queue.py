"""Where the engine's recipients come from and where their outcomes go.

`LedgerQueue` is a real send: it claims rows of one issue in the database for a named
worker, marks a group of messages in flight just before the first of them is written, and
records outcomes — each step one transaction that also records what came before, so the
ledger costs about one write per group (`smtp.pipeline` messages). Each reply is noted in the
process's journal the moment it is read (`heard`), so a sender killed before the next step
loses none of what it heard. `ListQueue` is a fixed list (a dry run's audience, the one
address of `--to`) that records nothing anywhere: the same engine, no state.

A database that goes away is waited out (digest.store.outage): the outcomes a step carried
go to the process's journal first (digest.delivery.journal), then the step is tried again
until the database returns, when it renews this worker's claims before anything else.
Every method takes `patient`: with False it makes one attempt and raises `Away` instead of
waiting, so the engine can wait in a thread while its other connections finish their
messages on the wire.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from digest.delivery.journal import Journal
from digest.delivery.stop import Stoppable
from digest.models import Recipient
from digest.store import deliveries
from digest.store.database import Connection, Database
from digest.store.deliveries import Result
from digest.store.outage import DatabaseAway, is_outage
from digest.store.tables import DeliveryStatus, utcnow

T = TypeVar("T")


class Away(Exception):
    """The database is away and the call was not patient: what it carried is journalled."""


class Queue(Protocol):
    def claim(self, limit: int, done: Sequence[Result], patient: bool = True) -> list[Recipient]:
        """Record `done`, then claim up to `limit` recipients (none in flight yet); empty: the
        queue is empty."""
        ...

    def begin(
        self, group: Sequence[Recipient], done: Sequence[Result], patient: bool = True
    ) -> set[int]:
        """Record `done`, then mark `group` in flight; the delivery ids still ours to send."""
        ...

    def hold(
        self, group: Sequence[Recipient], done: Sequence[Result], patient: bool = True
    ) -> None:
        """Record `done`, then put `group` (in flight, not on the wire) back to claimed."""
        ...

    def finish(
        self, done: Sequence[Result], release: Sequence[Recipient], patient: bool = True
    ) -> None:
        """Record `done` and give back `release` (claimed, never begun)."""
        ...

    def heard(self, result: Result) -> None:
        """A reply was just read: keep it where this process's death cannot lose it, until a
        step records it."""
        ...

    def away(self) -> bool:
        """Whether a call of this process found the database away and it has not returned:
        then the rest of a group in flight is not begun (it goes back to claimed first)."""
        ...


class LedgerQueue:
    """The queued (then the deferred and due) deliveries of one issue, for worker `worker`.

    Deferred rows are due when their next attempt falls before the queue was made, so a
    delivery deferred during this run waits for a later one. `journal` keeps the outcomes
    the database cannot take for now; `stop` cuts a wait for the database short (what was
    known is in the journal); `on_lost` is called when, back from an outage, this worker
    finds it was presumed dead (its claims were taken back).
    """

    def __init__(
        self,
        database: Database,
        issue_id: int,
        worker: str,
        claim_seconds: float,
        as_of: datetime | None = None,
        *,
        journal: Journal | None = None,
        stop: Stoppable | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.database = database
        self.issue_id = issue_id
        self.worker = worker
        self.claim_for = timedelta(seconds=claim_seconds)
        self.as_of = as_of or utcnow()
        self.journal = journal
        self.stop = stop
        self.on_lost = on_lost
        self._queued_left = True
        self._registered = False
        self._epoch = database.outage.epoch

    def claim(self, limit: int, done: Sequence[Result], patient: bool = True) -> list[Recipient]:
        def work(connection: Connection) -> tuple[list[Recipient], bool]:
            if not self._registered:
                deliveries.register(connection, self.worker, utcnow() + self.claim_for)
            if self._queued_left:
                taken = deliveries.claim(connection, self.issue_id, self.worker, limit)
                if taken:
                    return taken, True
            due = deliveries.claim(connection, self.issue_id, self.worker, limit, due=self.as_of)
            return due, False

        taken, self._queued_left = self._step(done, work, patient)
        self._registered = True
        return taken

    def begin(
        self, group: Sequence[Recipient], done: Sequence[Result], patient: bool = True
    ) -> set[int]:
        return self._step(
            done,
            lambda connection: deliveries.start(connection, group, self.worker),
            patient,
            unbegun=group,
        )

    def hold(
        self, group: Sequence[Recipient], done: Sequence[Result], patient: bool = True
    ) -> None:
        self._step(
            done,
            lambda connection: deliveries.hold(connection, group, self.worker),
            patient,
            unbegun=group,
        )

    def finish(
        self, done: Sequence[Result], release: Sequence[Recipient], patient: bool = True
    ) -> None:
        self._step(
            done,
            lambda connection: deliveries.release(connection, release, self.worker),
            patient,
            unbegun=release,
        )

    def heard(self, result: Result) -> None:
        if self.journal is not None:
            self.journal.note(self.issue_id, (result,))

    def away(self) -> bool:
        return self.database.outage.away

    def renew(self) -> bool:
        """The heartbeat's beat: keep this worker's claims its own."""
        if not self._registered:
            return True
        return self._wait(
            lambda connection: deliveries.renew(connection, self.worker, utcnow() + self.claim_for)
        )

    def close(self) -> None:
        """The worker ended: everything it held was recorded or given back (and a claim whose
        commit went unanswered, claimed again, is given back here)."""
        try:
            if self._registered:

                def work(connection: Connection) -> None:
                    deliveries.release_claimed(connection, self.issue_id, self.worker)
                    deliveries.unregister(connection, self.worker)

                self._wait(work)
                self._registered = False
        finally:
            if self.journal is not None:
                self.journal.close()  # kept, fsynced, when outcomes are still waiting in it

    # -- one step: record what came before, then do the next thing ---------------------------

    def _step(
        self,
        done: Sequence[Result],
        then: Callable[[Connection], T],
        patient: bool,
        *,
        unbegun: Sequence[Recipient] = (),
    ) -> T:
        """Record `done`, then `then`, in one transaction. While the database is away, `done`
        goes to the journal first, and with it `unbegun` as never begun: the rows `then` is
        about to mark in flight, hold back or give back, none of them on the wire. Should
        this process end before the database returns (given up, or killed while it waits),
        the replay gives them back to the queue instead of leaving them to become `unknown`;
        once the step is taken, their rows have changed since those lines and the replay
        leaves the lines alone (digest.delivery.journal)."""
        lost: list[bool] = []

        def work(connection: Connection) -> T:
            lost.clear()
            if self._epoch != self.database.outage.epoch and self._registered:
                # back from an outage: claims first renewed, so that their expiry counts from
                # the database's return; a worker presumed dead meanwhile stops
                renewed = deliveries.renew(connection, self.worker, utcnow() + self.claim_for)
                lost.append(not renewed)
            if done:
                deliveries.record(connection, self.issue_id, self.worker, done)
            return then(connection)

        kept = list(done)

        def keep() -> None:
            if unbegun:
                kept[len(done) :] = [Result(r, DeliveryStatus.QUEUED, 0) for r in unbegun]
            if kept and self.journal is not None:
                self.journal.keep(self.issue_id, kept)

        if patient:
            result = self._wait(work, keep)
        else:
            try:
                result = self.database.attempt(work)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self.database.outage.failed()
                keep()
                raise Away from None
        self._epoch = self.database.outage.epoch
        if kept and self.journal is not None:
            # "never begun" lines are gone from the file before any of those rows is begun:
            # no replay can give back a row whose message may be on the wire
            self.journal.committed(self.issue_id, kept, purge=len(kept) > len(done))
        if any(lost) and self.on_lost is not None:
            self.on_lost()
        return result

    def _wait(
        self, work: Callable[[Connection], T], on_away: Callable[[], None] | None = None
    ) -> T:
        return self.database.run_transaction(
            work, on_away=on_away, cancelled=self._stopping, gone=self._gone
        )

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _gone(self) -> DatabaseAway:
        kept = self.journal.holds if self.journal is not None else 0
        where = (
            f"; the {kept} outcome(s) it knew are kept in {self.journal.path}, which the next "
            "`digest send` on this machine records"
            if kept and self.journal is not None and self.journal.path is not None
            else ""
        )
        if self._stopping():
            return DatabaseAway(f"stopped while the database was out of reach{where}.")
        return DatabaseAway(
            f"the database was out of reach for {self.database.outage.limit:g} s "
            f"(database.outage_seconds): stopped{where}."
        )


class ListQueue:
    """A fixed list of recipients; outcomes are kept in `results`, nothing is stored."""

    def __init__(self, recipients: Sequence[Recipient]) -> None:
        self.waiting = list(recipients)
        self.results: list[Result] = []

    def claim(self, limit: int, done: Sequence[Result], patient: bool = True) -> list[Recipient]:
        self._keep(done)
        taken, self.waiting = self.waiting[:limit], self.waiting[limit:]
        return taken

    def begin(
        self, group: Sequence[Recipient], done: Sequence[Result], patient: bool = True
    ) -> set[int]:
        self._keep(done)
        return {r.delivery_id for r in group}

    def hold(
        self, group: Sequence[Recipient], done: Sequence[Result], patient: bool = True
    ) -> None:
        self._keep(done)

    def finish(
        self, done: Sequence[Result], release: Sequence[Recipient], patient: bool = True
    ) -> None:
        self._keep(done)
        self.waiting[:0] = release

    def away(self) -> bool:
        return False

    def heard(self, result: Result) -> None:
        pass  # nothing is stored: nothing to keep

    def _keep(self, done: Sequence[Result]) -> None:
        for result in done:
            if result.status == DeliveryStatus.QUEUED:
                self.waiting.insert(0, result.recipient)
            else:
                self.results.append(result)
