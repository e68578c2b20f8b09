"""The send rate limits (per second, per hour), on a simulated clock: no test times anything."""

from __future__ import annotations

import asyncio

from digest.delivery.rate import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def acquire_many(limiter: RateLimiter, count: int) -> None:
    async def run() -> None:
        for _ in range(count):
            await limiter.acquire()

    asyncio.run(run())


def test_per_second_limit() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, None, clock=clock, sleep=clock.sleep)
    acquire_many(limiter, 10)
    assert clock.slept == 0  # a full bucket: the first second's worth goes at once
    acquire_many(limiter, 50)
    assert 4.9 <= clock.slept <= 5.1  # then 10 a second


def test_per_hour_limit_like_ses() -> None:
    clock = FakeClock()
    limiter = RateLimiter(None, 200, clock=clock, sleep=clock.sleep)
    acquire_many(limiter, 200)
    assert clock.slept == 0
    acquire_many(limiter, 100)
    assert 1799 <= clock.slept <= 1801  # 100 more messages take half an hour


def test_both_limits_the_stricter_wins() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, 3600, clock=clock, sleep=clock.sleep)
    acquire_many(limiter, 3600 + 60)
    assert 59 <= clock.slept <= 61  # one a second once the hour's burst is spent
