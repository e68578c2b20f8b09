"""The send engine: a queue of recipients through a transport, over parallel connections.

The engine knows nothing of databases, templates or SMTP: a `Queue` gives it recipients
(claimed in the ledger, or a plain list), a `compose` function their messages, a
`Transport` sends them and says how each attempt went; every outcome goes back to the
queue. What it decides, the same for a real send, a dry run and a test copy:

- a temporary failure is retried up to `retries` times in this run, `retry_delay` seconds
  doubling; then the delivery is `deferred` with a next attempt time, for a later run to
  retry, until `retry_hours` after its first temporary failure, when it fails;
- failures of the server or the session (not of one recipient) `max_consecutive_failures`
  times in a row pause the whole send instead of burning through the list;
- on a stop request no new message is begun; each connection finishes the message it is
  sending, and after `stop_grace` seconds a message still waiting for its reply is cut off
  and recorded `unknown` (the server may have it). What was claimed but not begun goes
  back to the queue: a message that may have gone out is never queued again.

In flight means on the wire, a group at a time: a group of `pipeline` messages (the policy's
`group`, `smtp.pipeline`) is marked in flight (`queue.begin`) when the commands of the first
of them are about to be written, in the same transaction that records the replies read
before, so the ledger costs one write per group and a connection has at most `group`
messages in flight. Each reply goes to the queue the moment it is read (`queue.heard`: the
process's journal, which its death does not lose), and into the database with the
connection's next step: the write that marks the next group, or, before any wait (a new
connection, a retry's backoff, a sending slot), a write of its own that also puts what is in
flight but not on the wire back to claimed. The queue's calls are made in the event loop
while the database answers; when it is away, the connection that needs it waits in a thread
(the queue journals what it knew first), so the others finish the messages they have on the
wire, and none begins a new one until it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from digest.delivery.compose import Composed
from digest.delivery.queue import Away, Queue
from digest.delivery.rate import RateLimiter, SharedLimiter
from digest.delivery.retry import backoff, defer
from digest.delivery.settings import Policy
from digest.delivery.stop import Stoppable
from digest.delivery.transport import Channel, Kind, Transport, TransportError
from digest.errors import DigestError
from digest.models import Recipient
from digest.store.deliveries import Result
from digest.store.tables import DeliveryStatus

POLL = 0.05  # seconds between looks at a stop request from another thread or process
T = TypeVar("T")


class Compose(Protocol):
    def __call__(
        self, recipient: Recipient, eight_bit: bool = True, wire: bool = False
    ) -> Composed | None: ...


@dataclass(slots=True)
class Summary:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    bounced: int = 0
    unknown: int = 0
    skipped: int = 0
    elapsed: float = 0.0
    paused: str | None = None
    stopped: str | None = None
    last_error: str | None = None

    def add(self, status: DeliveryStatus) -> None:
        if status in _COUNTED:
            setattr(self, status.value, getattr(self, status.value) + 1)

    @property
    def done(self) -> int:
        return self.sent + self.deferred + self.failed + self.bounced + self.unknown + self.skipped

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0


_COUNTED = frozenset(
    {
        DeliveryStatus.SENT,
        DeliveryStatus.DEFERRED,
        DeliveryStatus.FAILED,
        DeliveryStatus.BOUNCED,
        DeliveryStatus.UNKNOWN,
        DeliveryStatus.SKIPPED,
    }
)


class _Stopped(Exception):
    """Raised inside a connection when a wait is cut short by a stop or a pause."""


@dataclass(slots=True)
class _Lane:
    """One connection's state: what it holds, what it did, what it is sending."""

    channel: Channel | None = None
    on_channel: int = 0
    held: list[Recipient] = field(default_factory=list)  # claimed, not in flight
    flying: list[Recipient] = field(default_factory=list)  # in flight, not yet attempted
    marked: set[int] = field(default_factory=set)  # delivery ids marked in flight
    done: list[Result] = field(default_factory=list)  # not yet recorded
    current: Recipient | None = None
    begun: bool = False  # the current message's transaction has started

    def take_done(self) -> list[Result]:
        done, self.done = self.done, []
        return done


class Engine:
    """Sends everything the queue yields over `policy.connections` connections.

    The policy's rate limits are this process's own, unless `shared_rate` is given: a function
    drawing each message's slot from a schedule every worker shares (it returns the seconds
    to wait; see digest.delivery.rate)."""

    def __init__(
        self,
        policy: Policy,
        transport: Transport,
        queue: Queue,
        compose: Compose,
        *,
        stop: Stoppable | None = None,
        on_progress: Callable[[Summary], None] | None = None,
        shared_rate: Callable[[], float] | None = None,
    ) -> None:
        self.policy = policy
        self.shared_rate = shared_rate
        self.transport = transport
        self.queue = queue
        self.compose = compose
        self.stop = stop
        self.on_progress = on_progress
        self.summary = Summary()
        self._streak = 0
        self._wake: asyncio.Event | None = None
        self._error: BaseException | None = None

    async def run(self) -> Summary:
        started = time.monotonic()
        self._wake = asyncio.Event()
        p = self.policy
        self.limiter: RateLimiter | SharedLimiter = (
            SharedLimiter(self.shared_rate, sleep=self._nap)
            if self.shared_rate is not None and (p.rate_per_second or p.rate_per_hour)
            else RateLimiter(p.rate_per_second, p.rate_per_hour, sleep=self._nap)
        )
        lanes = [asyncio.create_task(self._lane()) for _ in range(p.connections)]
        watcher = asyncio.create_task(self._watch())
        woken = asyncio.create_task(self._wake.wait())
        try:
            running = set(lanes)
            while running and not woken.done():
                finished, _ = await asyncio.wait(
                    running | {woken}, return_when=asyncio.FIRST_COMPLETED
                )
                running -= finished
            if running:  # stopping: the messages in flight get `stop_grace` seconds
                _, late = await asyncio.wait(running, timeout=p.stop_grace)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
        finally:
            watcher.cancel()
            woken.cancel()
            self.summary.elapsed = time.monotonic() - started
        for task in lanes:
            if task.done() and not task.cancelled() and task.exception() is not None:
                self._error = self._error or task.exception()
        if self._error is not None:
            raise self._error
        return self.summary

    # -- stopping -------------------------------------------------------------------------------

    def _halted(self) -> bool:
        """True once paused or asked to stop; a stop is noted the first time it is seen."""
        s = self.summary
        if s.paused is None and s.stopped is None and self.stop is not None and self.stop.is_set():
            s.stopped = getattr(self.stop, "reason", None) or "stopped on request"
            self._wake_up()
        return s.paused is not None or s.stopped is not None

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _watch(self) -> None:
        """Wakes sleeping connections when a stop comes from another thread or process."""
        while not self._halted():
            await asyncio.sleep(POLL)

    async def _nap(self, seconds: float) -> None:
        """Sleep, unless the send stops first (then raise _Stopped)."""
        assert self._wake is not None
        if self._halted():
            raise _Stopped
        try:
            async with asyncio.timeout(max(0.0, seconds)):
                await self._wake.wait()
        except TimeoutError:
            return
        raise _Stopped

    def _pause(self, reason: str) -> None:
        if self.summary.paused is None and self.summary.stopped is None:
            self.summary.paused = reason
        self._wake_up()

    def _failure(self, reason: str) -> None:
        self._streak += 1
        self.summary.last_error = reason
        if self._streak >= self.policy.max_consecutive_failures:
            self._pause(f"{self._streak} failures in a row, the last: {reason}")

    # -- one connection -------------------------------------------------------------------------

    async def _lane(self) -> None:
        lane = _Lane()
        cut_off = False
        try:
            while not self._halted():
                if not lane.held and not lane.flying:  # a new claim: nothing in flight yet
                    claim = self.queue.claim
                    lane.held = await self._ask(claim, self.policy.chunk, lane.take_done())
                    if not lane.held:
                        return
                # a message goes in flight only once a connection is open: a worker killed
                # while it waits for a server leaves nothing `unknown`
                try:
                    await self._channel(lane)
                except _Stopped:
                    break
                lane.current = lane.flying.pop(0) if lane.flying else lane.held.pop(0)
                result = await self._deliver(lane, lane.current)
                lane.marked.discard(lane.current.delivery_id)
                if result is not None:
                    if result.attempts and result.status != DeliveryStatus.QUEUED:
                        self.queue.heard(result)  # before anything else: a reply read
                    self._keep(lane, result)
                lane.current = None
        except asyncio.CancelledError:  # cut off after the stop's grace time
            cut_off = True
            if lane.current is not None:
                status = DeliveryStatus.UNKNOWN if lane.begun else DeliveryStatus.QUEUED
                error = "the send stopped while this message was in flight; it may have arrived"
                self._keep(lane, Result(lane.current, status, int(lane.begun), error=error))
                lane.current = None
            raise
        except Exception as exc:
            if lane.current is not None and lane.begun:  # it may have gone out
                error = "the send failed while this message was in flight; it may have arrived"
                self._keep(lane, Result(lane.current, DeliveryStatus.UNKNOWN, 1, error=error))
            elif lane.current is not None:
                lane.held.insert(0, lane.current)
            lane.current = None
            self._error = self._error or exc
            self._pause(_why(exc))
        finally:
            try:
                # never begun: back to the queue (in flight, not attempted, included: a row
                # in flight goes back only while it is still this worker's)
                unsent = [*lane.flying, *lane.held]
                await self._ask(self.queue.finish, lane.take_done(), unsent)
            finally:
                if lane.channel is not None:
                    if cut_off:
                        lane.channel.abort()
                    else:
                        await _close(lane.channel)

    async def _ask(self, call: Callable[..., T], *args: Any) -> T:
        """A queue call: made here while the database answers, else waited out in a thread
        (the queue journalled what it carried), so the other connections go on meanwhile."""
        try:
            return call(*args, patient=False)
        except Away:
            return await asyncio.to_thread(call, *args)

    def _keep(self, lane: _Lane, result: Result) -> None:
        lane.done.append(result)
        if result.status != DeliveryStatus.QUEUED:
            self.summary.add(result.status)
            if result.error and result.status != DeliveryStatus.SKIPPED:
                self.summary.last_error = result.error
            if self.on_progress is not None:
                self.on_progress(self.summary)

    async def _channel(self, lane: _Lane) -> Channel:
        """The lane's open channel, or a new one (retried with backoff; a refused login or
        repeated failure pauses the send). Before opening one, what the lane knows is recorded
        and what it has in flight goes back to claimed: opening may take a while."""
        if lane.channel is not None:
            if lane.channel.usable() and lane.on_channel < self.policy.messages_per_connection:
                return lane.channel
            await _close(lane.channel)
            lane.channel = None
        await self._set_down(lane)
        while True:
            if self._halted():
                raise _Stopped
            try:
                lane.channel = await self._open()
            except TransportError as exc:
                if exc.fatal:
                    self.summary.last_error = str(exc)
                    self._pause(str(exc))
                    raise _Stopped from None
                self._failure(str(exc))
                await self._wait_out(lane, backoff(self.policy, self._streak))
                continue
            lane.on_channel = 0
            return lane.channel

    async def _open(self) -> Channel:
        """A new channel, unless the send stops or pauses first (then raise _Stopped at once).

        Opening is not a message in flight: nothing has begun, so a stop does not wait for a
        server that is slow to greet (the grace time, the SMTP timeout and more, is for the
        messages whose data may be on the wire)."""
        assert self._wake is not None
        opening = asyncio.ensure_future(self.transport.open())
        stopping = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({opening, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not opening.done():
                opening.cancel()
                await asyncio.gather(opening, return_exceptions=True)
        if opening.cancelled():
            raise _Stopped
        if self._halted():
            if opening.exception() is None:
                opening.result().abort()  # opened just as the stop came: it carries nothing
            raise _Stopped
        return opening.result()

    async def _deliver(self, lane: _Lane, recipient: Recipient) -> Result | None:
        """One recipient, retried as its outcomes allow; None when it is no longer this
        worker's to send (presumed dead, its claims were taken back)."""
        attempts, error = 0, None
        limited = bool(self.policy.rate_per_second or self.policy.rate_per_hour)
        while True:
            if self._halted():
                return Result(recipient, DeliveryStatus.QUEUED, attempts, error=error)
            try:
                channel = await self._channel(lane)
                composed = self.compose(recipient, channel.eight_bit, channel.wire)
                if composed is None:
                    reason = "no new posts in the subscriber's categories"
                    return Result(recipient, DeliveryStatus.SKIPPED, 0, error=reason)
                if limited:  # a sending slot may be a wait: nothing known left unrecorded
                    await self._set_down(lane)
                await self.limiter.acquire()
            except _Stopped:
                return Result(recipient, DeliveryStatus.QUEUED, attempts, error=error)
            if self._halted():  # asked while a connection opened or a sending slot came
                return Result(recipient, DeliveryStatus.QUEUED, attempts, error=error)
            if recipient.delivery_id in lane.marked and self.queue.away():
                # the database went away since the group was marked: none of the rest of it
                # begins until it is back (put back to claimed, marked again then)
                await self._set_down(lane)
                if self._halted():
                    return Result(recipient, DeliveryStatus.QUEUED, attempts, error=error)
            if recipient.delivery_id not in lane.marked:
                if not await self._begin(lane, recipient):
                    return None
                if self._halted():  # asked while the database was waited for
                    return Result(recipient, DeliveryStatus.QUEUED, attempts, error=error)
            attempts += 1
            lane.begun = True
            attempt = await channel.send(composed.envelope_from, recipient, composed.message)
            lane.begun = False
            lane.on_channel += 1
            if attempt.kind in (Kind.ACCEPTED, Kind.MAYBE):
                self._streak = 0  # the server took the data, whatever became of its answer
                if attempt.kind == Kind.ACCEPTED:
                    return Result(recipient, DeliveryStatus.SENT, attempts, composed.message_id)
                return Result(
                    recipient, DeliveryStatus.UNKNOWN, attempts, composed.message_id, attempt.detail
                )
            if attempt.kind == Kind.BOUNCE:
                return Result(recipient, DeliveryStatus.BOUNCED, attempts, error=attempt.detail)
            if attempt.server:
                self._failure(attempt.detail)
            if attempt.kind == Kind.PERMANENT:
                return Result(recipient, DeliveryStatus.FAILED, attempts, error=attempt.detail)
            error = attempt.detail
            if attempts > self.policy.retries:
                return defer(self.policy, recipient, attempts, error)
            try:
                await self._wait_out(lane, backoff(self.policy, attempts))
            except _Stopped:
                return Result(recipient, DeliveryStatus.QUEUED, attempts, error=error)

    async def _begin(self, lane: _Lane, recipient: Recipient) -> bool:
        """Mark `recipient` in flight, its commands about to be written, with the next
        `group - 1` claimed ones (the rest of its group), recording the replies the lane has
        read in the same write; False when it is no longer ours."""
        extra = max(0, self.policy.group - 1 - len(lane.flying))
        ahead = lane.held[:extra]
        group = [recipient, *ahead]
        mine = await self._ask(self.queue.begin, group, lane.take_done())
        # taken from what the lane holds only now: should the step fail (the database away
        # past its limit), they are still there for the lane's last step to give back
        del lane.held[: len(ahead)]
        lane.marked.update(r.delivery_id for r in group if r.delivery_id in mine)
        lane.flying.extend(r for r in ahead if r.delivery_id in mine)
        return recipient.delivery_id in mine

    async def _set_down(self, lane: _Lane) -> None:
        """Before a wait: what is in flight but not on the wire goes back to claimed, and what
        is known is recorded (nothing is left to a crash during the wait)."""
        flying = [lane.current, *lane.flying] if lane.current is not None else list(lane.flying)
        flying = [r for r in flying if r.delivery_id in lane.marked]
        if not flying and not lane.done:
            return
        await self._ask(self.queue.hold, flying, lane.take_done())
        lane.marked.clear()
        lane.held[:0] = lane.flying
        lane.flying = []

    async def _wait_out(self, lane: _Lane, seconds: float) -> None:
        """Wait before a retry or a reconnection with nothing of the lane in flight (each
        message is marked again when its commands are about to be written). Raises _Stopped
        on a stop."""
        await self._set_down(lane)
        await self._nap(seconds)


def _why(exc: BaseException) -> str:
    """The reason a failure paused the send, in words of ours (no driver's text)."""
    if isinstance(exc, DigestError):
        return exc.message.rstrip(".")
    return f"unexpected {type(exc).__name__} (set DIGEST_DEBUG=1 for details)"


async def _close(channel: Channel) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await channel.close()
