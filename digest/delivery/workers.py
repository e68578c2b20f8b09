"""Sending processes: one asyncio engine per core, all claiming from the same ledger.

One Python process tops out around one core; DKIM's RSA alone costs about 0.35 ms a message.
For a large audience, `deliver` starts more processes (spawned, so nothing inherited from
the parent's database connections), each running its share of the SMTP connections and
claiming deliveries from the database, which keeps the guarantees of a single sender: a
claim is a transaction (SKIP LOCKED on PostgreSQL, the write lock on SQLite). The children
ignore SIGINT and SIGTERM; the parent stops them through an event, so a stop pauses the send
instead of killing messages in flight.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from digest.config import Config
from digest.delivery.engine import Engine, SmtpSettings, Stoppable, Summary
from digest.models import Recipient
from digest.store import Database, Issue, ledger, open_database

AUTO_THRESHOLD = 5000  # below this many queued messages, one process is faster than spawning
PROGRESS_EVERY = 100

Composer = Callable[..., Any]
Progress = Callable[[Summary], None]


class LedgerQueue:
    """The engine's queue for a real send: claims and records in the database."""

    def __init__(self, database: Database, issue: Issue) -> None:
        self.database = database
        self.issue = issue

    def claim(self, limit: int) -> list[Recipient]:
        with self.database.session() as session:
            return ledger.claim(session, self.issue, limit)

    def record(self, results: list[ledger.Result]) -> None:
        with self.database.session() as session:
            ledger.record_results(session, self.issue, results)

    def release(self, recipients: list[Recipient]) -> None:
        with self.database.session() as session:
            ledger.release(session, recipients)


def process_count(config: Config, queued: int) -> int:
    """Configured, else: one per core (up to 4) when DKIM signing makes the send CPU-bound,
    one otherwise (measured: without DKIM a second process only adds contention)."""
    configured = config.smtp.processes
    if configured is not None:
        return max(1, configured)
    if queued < AUTO_THRESHOLD or config.dkim is None:
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def share(connections: int, processes: int) -> list[int]:
    """Split the configured connections among the processes (at least one each)."""
    base, extra = divmod(connections, processes)
    return [max(1, base + (1 if index < extra else 0)) for index in range(processes)]


def run_engine(
    config: Config,
    database: Database,
    issue: Issue,
    settings: SmtpSettings,
    make_composer: Callable[[], Any],
    on_progress: Progress | None,
    cancel: Stoppable | None,
) -> Summary:
    engine = Engine(
        settings, LedgerQueue(database, issue), make_composer(), on_progress, cancel=cancel
    )
    return asyncio.run(engine.run())


def deliver(
    config: Config,
    database: Database,
    issue: Issue,
    settings: SmtpSettings,
    make_composer: Callable[[Config, Database, Issue], Any],
    *,
    processes: int,
    on_progress: Progress | None = None,
    cancel: Stoppable | None = None,
) -> Summary:
    """Send the issue's queue with `processes` processes; returns the combined summary."""
    if processes <= 1:
        return run_engine(
            config,
            database,
            issue,
            settings,
            lambda: make_composer(config, database, issue),
            on_progress,
            cancel,
        )
    context = multiprocessing.get_context("spawn")
    updates: Any = context.Queue()
    stop: Any = context.Event()
    shares = share(settings.connections, processes)
    children = [
        context.Process(
            target=_child,
            args=(
                index,
                config,
                issue.id,
                replace(settings, connections=shares[index]),
                make_composer,
                updates,
                stop,
            ),
            name=f"digest-sender-{index}",
        )
        for index in range(1, processes)
    ]
    for child in children:
        child.start()
    totals: dict[int, Summary] = {}
    finished: dict[int, Summary] = {}
    lock = threading.Lock()

    def report(index: int, summary: Summary) -> None:
        with lock:
            totals[index] = summary
            combined = combine(totals.values())
        if on_progress is not None:
            on_progress(combined)

    def listen() -> None:
        while len(finished) < len(children):
            try:
                index, done, summary = updates.get(timeout=0.2)
            except queue.Empty:
                if cancel is not None and cancel.is_set():
                    stop.set()
                if not any(child.is_alive() for child in children) and updates.empty():
                    return
                continue
            report(index, summary)
            if done:
                finished[index] = summary

    listener = threading.Thread(target=listen, name="sender-progress", daemon=True)
    listener.start()
    own = run_engine(
        config,
        database,
        issue,
        replace(settings, connections=shares[0]),
        lambda: make_composer(config, database, issue),
        lambda summary: report(0, summary),
        _Either(cancel, stop),
    )
    if own.paused:
        stop.set()  # the cause (login refused, server gone) stops every process
    for child in children:
        child.join()
    listener.join(5)
    lost = [child.name for child in children if child.exitcode != 0]
    results = [own, *finished.values()]
    summary = combine(results)
    summary.elapsed = max(r.elapsed for r in results)
    if lost and summary.paused is None:
        summary.paused = f"a sending process ended unexpectedly ({', '.join(lost)})"
    return summary


def combine(summaries: Any) -> Summary:
    total = Summary()
    for summary in summaries:
        total.sent += summary.sent
        total.failed += summary.failed
        total.bounced += summary.bounced
        total.unknown += summary.unknown
        total.skipped += summary.skipped
        total.elapsed = max(total.elapsed, summary.elapsed)
        total.paused = total.paused or summary.paused
    return total


class _Either:
    def __init__(self, first: Stoppable | None, second: Stoppable) -> None:
        self.first, self.second = first, second

    def is_set(self) -> bool:
        return (self.first is not None and self.first.is_set()) or self.second.is_set()


class _Orphaned:
    """Set once the parent is gone (killed): a child then finishes its chunk and stops."""

    def __init__(self) -> None:
        self.parent = os.getppid()

    def is_set(self) -> bool:
        return os.getppid() != self.parent


def _child(
    index: int,
    config: Config,
    issue_id: int,
    settings: SmtpSettings,
    make_composer: Callable[[Config, Database, Issue], Any],
    updates: Any,
    stop: Any,
) -> None:
    """A spawned sender: its own database connection and event loop, the parent's stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    database = open_database(config.database_url)
    try:
        with database.session() as session:
            issue = session.get(Issue, issue_id)
            assert issue is not None
        counter = [0]

        def progress(summary: Summary) -> None:
            counter[0] += 1
            if counter[0] % PROGRESS_EVERY == 0:
                updates.put((index, False, summary))

        summary = run_engine(
            config,
            database,
            issue,
            settings,
            lambda: make_composer(config, database, issue),
            progress,
            stop,
        )
        updates.put((index, True, summary))
    finally:
        database.dispose()
