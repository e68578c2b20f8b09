"""Sending limits: messages per second and per hour, per process or shared by all workers.

Both are the generic cell rate algorithm (GCRA, a token bucket kept as the theoretical time
of the next message): a limit of r per second spaces messages at least 1/r s apart, so any
1-second window holds at most r of them — no burst, or a window could hold up to 2r. The
hourly limit allows its hour's worth at once (providers such as SES count a rolling day or
hour), then one message every 3600/n s. A message goes at the first moment both allow.

`RateLimiter` keeps the schedule in the process (a dry run, a test copy); `SharedLimiter`
draws every slot from the database (digest.store.rate), so the limits hold for every worker
of a send together, on any number of machines. Waiting goes through the `sleep` given, so
the engine can cut a wait short when the send stops, and tests can use a simulated clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

State = tuple[float, float]  # theoretical time of the next message: per second, per hour


@dataclass(frozen=True, slots=True)
class Limits:
    per_second: float | None
    per_hour: int | None

    def __bool__(self) -> bool:
        return bool(self.per_second or self.per_hour)

    def draw(self, state: State, now: float) -> tuple[State, float]:
        """The next message's slot (>= now) and the state after it."""
        second_next, hour_next = state
        slot = now
        if self.per_second:
            slot = max(slot, second_next)
        if self.per_hour:
            interval = 3600.0 / self.per_hour
            slot = max(slot, hour_next - (self.per_hour - 1) * interval)
        if self.per_second:
            second_next = max(second_next, slot) + 1.0 / self.per_second
        if self.per_hour:
            hour_next = max(hour_next, slot) + 3600.0 / self.per_hour
        return (second_next, hour_next), slot


class RateLimiter:
    """The limits for one process: every connection of its engine shares them."""

    def __init__(
        self,
        per_second: float | None,
        per_hour: int | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limits = Limits(per_second, per_hour)
        self.clock, self.sleep = clock, sleep
        self.state: State = (float("-inf"), float("-inf"))

    async def acquire(self) -> None:
        if not self.limits:
            return
        now = self.clock()
        self.state, slot = self.limits.draw(self.state, now)
        if slot > now:
            await self.sleep(slot - now)


class SharedLimiter:
    """The limits for every worker together: `reserve` draws a slot from the database and
    returns the seconds until it (digest.store.rate.reserve bound to the schedule's name)."""

    def __init__(
        self,
        reserve: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.reserve, self.sleep = reserve, sleep

    async def acquire(self) -> None:
        wait = await asyncio.to_thread(self.reserve)
        if wait > 0:
            await self.sleep(wait)
