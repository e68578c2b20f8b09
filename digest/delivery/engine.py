"""SMTP delivery of an issue: connections, retries, rate limits, pausing, and the dry-run outbox.

The engine knows nothing of databases or templates: it asks a `Queue` for recipients (which
claims them in the ledger), a `compose` function for each message's bytes, and reports every
outcome back. Outcomes follow the issue: a 4xx, a dropped connection or a timeout before the
final dot is retried with backoff; a 5xx fails the delivery, and a 5.1.x on RCPT bounces the
subscriber; a drop after the final dot is `unknown`; 421 reconnects; repeated connection or
authentication failures pause the whole issue instead of burning through the list.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from digest.delivery.smtp import SMTPConnection, SMTPError, Stage, tls_context
from digest.models import Recipient
from digest.store import DeliveryStatus
from digest.store.ledger import Result


class Stoppable(Protocol):
    """A threading or multiprocessing Event: set it to stop the send (SIGTERM)."""

    def is_set(self) -> bool: ...


class Queue(Protocol):
    """Where recipients come from and outcomes go (the ledger, or a dry-run list)."""

    def claim(self, limit: int) -> list[Recipient]: ...

    def record(self, results: list[Result]) -> None: ...

    def release(self, recipients: list[Recipient]) -> None: ...


@dataclass(frozen=True, slots=True)
class Composed:
    message: bytes
    message_id: str


class Compose(Protocol):
    """Builds one recipient's message: 8bit parts when the server takes them, and the wire
    form (dot-stuffed) when it is about to be sent."""

    def __call__(
        self, recipient: Recipient, eight_bit: bool = True, wire: bool = False
    ) -> Composed | None: ...


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    security: str = "none"
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    connections: int = 2
    messages_per_connection: int = 1000
    rate_per_second: float | None = None
    rate_per_hour: int | None = None
    retries: int = 3
    retry_delay: float = 5.0
    max_consecutive_failures: int = 5
    ca_file: str | None = None
    verify_tls: bool = True
    envelope_from: str = ""
    chunk: int = 20


@dataclass(slots=True)
class Summary:
    sent: int = 0
    failed: int = 0
    bounced: int = 0
    unknown: int = 0
    skipped: int = 0
    elapsed: float = 0.0
    paused: str | None = None

    def add(self, status: DeliveryStatus) -> None:
        if status == DeliveryStatus.SENT:
            self.sent += 1
        elif status == DeliveryStatus.FAILED:
            self.failed += 1
        elif status == DeliveryStatus.BOUNCED:
            self.bounced += 1
        elif status == DeliveryStatus.UNKNOWN:
            self.unknown += 1
        elif status == DeliveryStatus.SKIPPED:
            self.skipped += 1

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0


class PauseIssue(Exception):
    """Sending cannot usefully go on (authentication refused, server gone): stop everything."""


class RateLimiter:
    """Token buckets for messages per second and per hour, shared by every connection."""

    def __init__(
        self,
        per_second: float | None,
        per_hour: int | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.clock, self.sleep = clock, sleep
        self.buckets: list[list[float]] = []  # [rate per second, capacity, tokens, last time]
        now = clock()
        if per_second:
            self.buckets.append([per_second, max(1.0, per_second), max(1.0, per_second), now])
        if per_hour:
            self.buckets.append([per_hour / 3600.0, float(per_hour), float(per_hour), now])

    async def acquire(self) -> None:
        while True:
            now = self.clock()
            wait = 0.0
            for bucket in self.buckets:
                rate, capacity, tokens, last = bucket
                tokens = min(capacity, tokens + (now - last) * rate)
                bucket[2], bucket[3] = tokens, now
                if tokens < 1.0 - 1e-9:  # a tolerance, or float dust could wait forever
                    wait = max(wait, (1.0 - tokens) / rate)
            if wait <= 0:
                for bucket in self.buckets:
                    bucket[2] -= 1.0
                return
            await self.sleep(wait)


@dataclass(slots=True)
class _Shared:
    summary: Summary
    limiter: RateLimiter
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    consecutive_failures: int = 0
    pause_reason: str | None = None
    on_progress: Callable[[Summary], None] | None = None


class Engine:
    """Sends every recipient the queue yields, over `connections` parallel SMTP sessions."""

    def __init__(
        self,
        settings: SmtpSettings,
        queue: Queue,
        compose: Compose,
        on_progress: Callable[[Summary], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        cancel: Stoppable | None = None,
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.compose = compose
        self.sleep = sleep
        self.shared = _Shared(
            Summary(),
            RateLimiter(settings.rate_per_second, settings.rate_per_hour),
            on_progress=on_progress,
        )
        self.tls = tls_context(settings.ca_file, settings.verify_tls)
        self.last_error: str | None = None
        self.cancel = cancel

    async def run(self) -> Summary:
        started = time.monotonic()
        workers = [asyncio.create_task(self._worker()) for _ in range(self.settings.connections)]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            self.shared.summary.elapsed = time.monotonic() - started
        self.shared.summary.paused = self.shared.pause_reason
        return self.shared.summary

    # -- one connection -----------------------------------------------------------------------

    async def _worker(self) -> None:
        connection: SMTPConnection | None = None
        sent_here = 0
        try:
            while not self._stopping():
                batch = self.queue.claim(self.settings.chunk)
                if not batch:
                    return
                results: list[Result] = []
                pending = list(batch)
                try:
                    while pending and not self._stopping():
                        recipient = pending[0]
                        if (
                            connection is None
                            or not connection.connected
                            or (sent_here >= self.settings.messages_per_connection)
                        ):
                            if connection is not None:
                                await connection.close()
                            connection = await self._connect()
                            sent_here = 0
                        result, connection = await self._deliver(connection, recipient)
                        pending.pop(0)
                        sent_here += 1
                        results.append(result)
                        self._count(result)
                finally:
                    self.queue.record(results)
                    if pending:
                        self.queue.release(pending)
        except PauseIssue:
            self.shared.stop.set()
        finally:
            if connection is not None:
                await connection.close()

    async def _connect(self) -> SMTPConnection:
        """Open a session, retrying with backoff; repeated failure pauses the issue."""
        settings = self.settings
        while True:
            if self.shared.stop.is_set():
                raise PauseIssue
            connection = SMTPConnection(
                settings.host,
                settings.port,
                security=settings.security,  # type: ignore[arg-type]
                timeout=settings.timeout,
                tls=self.tls,
            )
            try:
                await connection.open(settings.username, settings.password)
                return connection
            except SMTPError as exc:
                connection.abort()
                if exc.stage in (Stage.AUTH, Stage.STARTTLS) and (
                    exc.reply is None or not exc.reply.transient
                ):
                    reason = exc.reply if exc.reply is not None else exc
                    self._pause(f"the SMTP server refused the login: {reason}")
                self._failure(f"cannot open an SMTP session: {exc}")
                await self.sleep(self._backoff(self.shared.consecutive_failures))

    async def _deliver(
        self, connection: SMTPConnection, recipient: Recipient
    ) -> tuple[Result, SMTPConnection]:
        """One recipient, retried as the outcome allows; returns the (maybe new) connection."""
        attempts = 0
        last_error = ""
        eight_bit = connection.capabilities.has("8BITMIME")
        composed = self.compose(recipient, eight_bit, True)
        if composed is None:
            skipped = Result(
                recipient,
                DeliveryStatus.SKIPPED,
                0,
                error="no new posts in the subscriber's categories",
            )
            return skipped, connection
        while True:
            attempts += 1
            await self.shared.limiter.acquire()
            try:
                outcome = await connection.send(
                    self.settings.envelope_from, recipient.email, composed.message, stuffed=True
                )
            except SMTPError as exc:
                if exc.after_final_dot:
                    self._success()  # the server took the data; only its answer is missing
                    return Result(
                        recipient,
                        DeliveryStatus.UNKNOWN,
                        attempts,
                        composed.message_id,
                        f"connection lost after the message was sent: {exc}",
                    ), connection
                last_error = str(exc)
                self._failure(last_error)
                if attempts > self.settings.retries:
                    return Result(
                        recipient, DeliveryStatus.FAILED, attempts, None, last_error
                    ), connection
                await self.sleep(self._backoff(attempts))
                connection.abort()
                connection = await self._connect()
                continue
            if outcome.accepted:
                self._success()
                return Result(
                    recipient, DeliveryStatus.SENT, attempts, composed.message_id
                ), connection
            reply = outcome.reply
            last_error = f"{outcome.stage}: {reply}"
            if reply.transient and attempts <= self.settings.retries:
                await self.sleep(self._backoff(attempts))
                continue
            if (
                outcome.stage == Stage.RCPT
                and reply.code >= 500
                and (
                    reply.enhanced.startswith("5.1.") or (not reply.enhanced and reply.code == 550)
                )
            ):
                return Result(
                    recipient, DeliveryStatus.BOUNCED, attempts, None, last_error
                ), connection
            if outcome.stage == Stage.MAIL and reply.code >= 500:
                # the server refuses our sender: every other message would fail the same way
                self._failure(last_error)
            return Result(recipient, DeliveryStatus.FAILED, attempts, None, last_error), connection

    # -- shared state -------------------------------------------------------------------------

    def _stopping(self) -> bool:
        """True once paused, or once asked to stop from another thread (SIGTERM)."""
        if self.cancel is not None and self.cancel.is_set() and self.shared.pause_reason is None:
            self.shared.pause_reason = "stopped on request before the issue was finished"
            self.shared.stop.set()
        return self.shared.stop.is_set()

    def _backoff(self, attempt: int) -> float:
        return float(min(self.settings.retry_delay * (2 ** max(0, attempt - 1)), 300.0))

    def _success(self) -> None:
        self.shared.consecutive_failures = 0

    def _failure(self, reason: str) -> None:
        self.shared.consecutive_failures += 1
        if self.shared.consecutive_failures >= self.settings.max_consecutive_failures:
            self._pause(f"{self.shared.consecutive_failures} failures in a row, the last: {reason}")

    def _pause(self, reason: str) -> None:
        if self.shared.pause_reason is None:
            self.shared.pause_reason = reason
        self.shared.stop.set()
        raise PauseIssue(reason)

    def _count(self, result: Result) -> None:
        if result.error:
            self.last_error = result.error
        self.shared.summary.add(result.status)
        if self.shared.on_progress is not None:
            self.shared.on_progress(self.shared.summary)


# -- dry run ------------------------------------------------------------------------------------


def write_outbox(folder: Path, messages: list[tuple[Recipient, Composed]]) -> list[Path]:
    """One .eml per recipient, exactly the bytes that would be sent; stale files removed."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.eml"):
        with contextlib.suppress(OSError):
            old.unlink()
    written = []
    for recipient, composed in messages:
        safe = "".join(c if c.isalnum() or c in "._-@" else "_" for c in recipient.email)
        path = folder / f"{recipient.subscriber_id:07d}-{safe}.eml"
        path.write_bytes(composed.message)
        written.append(path)
    return written
