"""Sending limits: token buckets for messages per second and per hour.

One limiter is shared by every connection of a process. Waiting goes through the `sleep`
it is given, so the engine can cut a wait short when the send stops, and tests can run it
on a simulated clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


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
