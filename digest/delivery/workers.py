"""Sending processes: one asyncio engine per core, all claiming from the same ledger.

One Python process tops out around one core; DKIM's RSA alone costs about 0.35 ms a message.
For a large audience `deliver` starts more processes (spawned, so nothing is inherited from
the parent's database connections), each a named worker (`host:pid`) running its share of
the SMTP connections and claiming deliveries from the database, every message's sending
slot drawn from one schedule in the database (the rate limits hold for all processes and
`digest send --worker`s together), which keeps the guarantees of a single sender: a claim
is a transaction (SKIP LOCKED on PostgreSQL, the write lock on SQLite), and each worker's
heartbeat keeps its claims its own.

They stop together (see `stop`): a signal to any of them reaches all, a pause in one halts
the others, a child whose parent died stops (PR_SET_PDEATHSIG, and a watch of its parent's
pid), and a child that does not finish within the stop's grace time is killed — its
in-flight messages are then `unknown`, as after any crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from digest.delivery.compose import load_variants, make_composer
from digest.delivery.engine import POLL, Engine, Summary
from digest.delivery.journal import journal_for
from digest.delivery.queue import LedgerQueue
from digest.delivery.rate import Limits
from digest.delivery.settings import DeliverySettings, Policy
from digest.delivery.stop import (
    AnyOf,
    Orphaned,
    Stop,
    Stoppable,
    adopt,
    die_with_parent,
    disown,
    on_signals,
    signals_blocked,
    unblock_signals,
)
from digest.delivery.transport import SmtpTransport
from digest.errors import DigestError
from digest.store import lease, rate
from digest.store.database import Database, open_database

RATE_SCHEDULE = "smtp"  # one schedule: the limits are the SMTP account's, whatever the issue
AUTO_THRESHOLD = 5000  # below this many queued messages, one process is faster than spawning
PROGRESS_EVERY = 100

Progress = Callable[[Summary], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One issue's send, as every sending process needs it: it crosses into spawned ones,
    so it holds the narrow `DeliverySettings` (never the whole configuration)."""

    settings: DeliverySettings
    issue_id: int
    as_of: datetime

    @property
    def policy(self) -> Policy:
        return self.settings.policy


def process_count(settings: DeliverySettings, queued: int) -> int:
    """Configured, else: one per core (up to 4) when DKIM signing makes the send CPU-bound,
    one otherwise (measured: without DKIM a second process only adds contention)."""
    configured = settings.processes
    if configured is not None:
        return max(1, configured)
    if queued < AUTO_THRESHOLD or settings.compose.dkim is None:
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def share(connections: int, processes: int) -> list[int]:
    """Split the configured connections among the processes (at least one each)."""
    base, extra = divmod(connections, processes)
    return [max(1, base + (1 if index < extra else 0)) for index in range(processes)]


def run_engine(
    job: Job,
    database: Database,
    *,
    connections: int,
    stop: Stoppable | None,
    on_progress: Progress | None,
) -> Summary:
    """This process's worker: its engine over the ledger, its heartbeat renewing its claims,
    its journal keeping what the database cannot take for a while."""
    settings = job.settings
    worker = lease.worker_name()
    struck_off = Stop()  # its claims were taken back: it was presumed dead (a long stall)

    def lost() -> None:
        struck_off.set("its claims were taken over by another sender")

    queue = LedgerQueue(
        database,
        job.issue_id,
        worker,
        settings.claim_seconds,
        as_of=job.as_of,
        journal=journal_for(settings.state_dir, database, worker),
        stop=stop,
        on_lost=lost,
    )
    limits = Limits(job.policy.rate_per_second, job.policy.rate_per_hour)
    composer = make_composer(settings.compose, database, job.issue_id)
    load_variants(composer, database, job.issue_id)  # no database call to compose a message
    engine = Engine(
        replace(job.policy, connections=connections),
        SmtpTransport(settings.smtp),
        queue,
        composer,
        stop=AnyOf(stop, struck_off),
        on_progress=on_progress,
        shared_rate=(lambda: rate.reserve(database, RATE_SCHEDULE, limits.draw))
        if limits
        else None,
    )
    try:
        with lease.Heartbeat(settings.heartbeat, [queue.renew], on_lost=lost):
            return asyncio.run(engine.run())
    finally:
        queue.close()


def deliver(
    job: Job,
    database: Database,
    *,
    processes: int,
    stop: Stoppable | None = None,
    on_progress: Progress | None = None,
) -> Summary:
    """Send the issue's queue with `processes` processes; returns the combined summary."""
    shares = share(job.policy.connections, processes)
    if processes <= 1:
        return run_engine(job, database, connections=shares[0], stop=stop, on_progress=on_progress)
    _quiet_resource_tracker()
    context = multiprocessing.get_context("spawn")
    updates: Any = context.Queue()
    halt: Any = context.Event()  # set by any process that pauses: every other one stops
    children = [
        context.Process(
            target=_child,
            args=(index, job, shares[index], updates, halt, os.getpid()),
            name=f"digest-sender-{index}",
        )
        for index in range(1, processes)
    ]
    with signals_blocked():
        for child in children:
            child.start()
            assert child.pid is not None
            adopt(child.pid)
    progress = _Progress(len(children), updates, on_progress)
    listener = threading.Thread(target=progress.listen, name="sender-progress", daemon=True)
    listener.start()
    try:
        own = run_engine(
            job,
            database,
            connections=shares[0],
            stop=AnyOf(stop, _Halt(halt)),
            on_progress=lambda summary: progress.report(0, summary),
        )
        if own.paused:
            halt.set()  # the cause (login refused, server gone) stops every process
    finally:
        lost = _join(children, AnyOf(stop, _Halt(halt)), job.policy.stop_grace)
        for child in children:
            disown(child.pid or 0)
        progress.done.set()
        listener.join(10)
    results = [own, *progress.finished.values()]
    summary = combine(results)
    if lost and summary.paused is None and summary.stopped is None:
        summary.paused = f"a sending process ended unexpectedly ({', '.join(lost)})"
    return summary


def _quiet_resource_tracker() -> None:
    """A parent killed with SIGKILL leaves the semaphores of its queue and event to
    multiprocessing's resource tracker, which removes them and says so with a Python warning
    ("resource_tracker: There appear to be 8 leaked semaphore objects") on the standard error
    the processes share: text that is not ours. The tracker's process takes this process's
    `-W` options (multiprocessing.util._args_from_interpreter_flags), so one that ignores
    that warning, set before the first semaphore starts it, keeps it quiet."""
    if _TRACKER_WARNING not in sys.warnoptions:
        sys.warnoptions.append(_TRACKER_WARNING)


_TRACKER_WARNING = "ignore:resource_tracker:UserWarning"


def _join(children: list[Any], stopping: Stoppable, grace: float) -> list[str]:
    """Wait for the children; once stopping, kill those still running after `grace` + 5 s
    (their in-flight messages are then recovered as unknown). Returns the ones lost."""
    deadline: float | None = None
    while any(child.is_alive() for child in children):
        if deadline is None and stopping.is_set():
            deadline = time.monotonic() + grace + 5
        if deadline is not None and time.monotonic() > deadline:
            for child in children:
                if child.is_alive():
                    child.kill()
        for child in children:
            child.join(0.1)
    return [child.name for child in children if child.exitcode not in (0, None)]


def combine(summaries: Iterable[Summary]) -> Summary:
    total = Summary()
    for summary in summaries:
        for name in ("sent", "deferred", "failed", "bounced", "unknown", "skipped"):
            setattr(total, name, getattr(total, name) + getattr(summary, name))
        total.elapsed = max(total.elapsed, summary.elapsed)
        total.paused = total.paused or summary.paused
        total.stopped = total.stopped or summary.stopped
        total.last_error = summary.last_error or total.last_error
    return total


def _say_warnings() -> None:
    """A spawned process's warnings (the database gone, back) as the parent's look: one
    `digest: warning:` line each on stderr, which it shares with the parent."""
    import logging
    import sys

    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("digest: warning: %(message)s."))
    logging.getLogger("digest").addHandler(handler)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, DigestError):
        return exc.message.rstrip(".")
    return f"a sending process failed: unexpected {type(exc).__name__}"


class _Halt:
    """The shared event another process sets when it pauses. Looking at it takes a lock
    shared between processes, so it is looked at every POLL seconds at most: a pause
    elsewhere may wait that long, a signal never does (each process has its own)."""

    reason = "another sending process paused the send"

    def __init__(self, event: Any) -> None:
        self.event = event
        self._set = False
        self._looked = 0.0

    def is_set(self) -> bool:
        now = time.monotonic()
        if not self._set and now - self._looked >= POLL:
            self._looked = now
            self._set = bool(self.event.is_set())
        return self._set


class _Progress:
    """Combines the summaries the children send now and then, for the parent's progress."""

    def __init__(self, children: int, updates: Any, on_progress: Progress | None) -> None:
        self.children, self.updates, self.on_progress = children, updates, on_progress
        self.totals: dict[int, Summary] = {}
        self.finished: dict[int, Summary] = {}
        self.lock = threading.Lock()
        self.done = threading.Event()

    def report(self, index: int, summary: Summary) -> None:
        with self.lock:
            self.totals[index] = summary
            combined = combine(self.totals.values())
        if self.on_progress is not None:
            self.on_progress(combined)

    def listen(self) -> None:
        """Until the children are gone (`done`) and what they sent is read."""
        while True:
            try:
                index, finished, summary = self.updates.get(timeout=0.1)
            except queue.Empty:
                if self.done.is_set():
                    return
                continue
            self.report(index, summary)
            if finished:
                self.finished[index] = summary


def _child(index: int, job: Job, connections: int, updates: Any, halt: Any, parent: int) -> None:
    """A spawned sender: its own database connection, event loop and worker name."""
    stop = Stop()
    die_with_parent()

    def to_parent(signum: int) -> None:
        with contextlib.suppress(OSError):
            os.kill(parent, signum)

    with on_signals(stop, forward=to_parent, tell=None):
        unblock_signals()  # blocked by the parent while it started us
        _say_warnings()
        orphaned = Orphaned(parent)
        if orphaned.is_set():
            return
        try:
            database = open_database(
                job.settings.database_url, outage_seconds=job.settings.outage_seconds
            )
        except DigestError as exc:
            updates.put((index, True, Summary(paused=exc.message.rstrip("."))))
            return
        try:
            counter = [0]

            def progress(summary: Summary) -> None:
                counter[0] += 1
                if counter[0] % PROGRESS_EVERY == 0:
                    updates.put((index, False, summary))

            try:
                summary = run_engine(
                    job,
                    database,
                    connections=connections,
                    stop=AnyOf(stop, _Halt(halt), orphaned),
                    on_progress=progress,
                )
            except Exception as exc:  # said in one sentence by the parent, no traceback here
                if os.environ.get("DIGEST_DEBUG"):
                    raise
                summary = Summary(paused=_reason(exc))
            if summary.paused:
                halt.set()
            updates.put((index, True, summary))
        finally:
            database.dispose()
