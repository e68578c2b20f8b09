"""The send rate limits (per second, per hour), on a simulated clock: no test times anything;
and their shared schedule in the database, drawn from by many threads at once."""

from __future__ import annotations

import asyncio
import itertools
import threading

from digest.delivery.rate import Limits, RateLimiter, SharedLimiter, State
from digest.store import rate as shared_rate
from digest.store.database import Database


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
    acquire_many(limiter, 1)
    assert clock.slept == 0  # the first goes at once
    acquire_many(limiter, 9)
    assert abs(clock.slept - 0.9) < 1e-6  # no burst: 0.1 s apart, 10 in any second
    acquire_many(limiter, 50)
    assert abs(clock.slept - 5.9) < 1e-6


def test_no_one_second_window_holds_more_than_the_limit() -> None:
    """Sending slots of 7/s: every window [t, t+1) holds at most 7, even after an idle gap."""
    limits = Limits(7, None)
    state: State = (float("-inf"), float("-inf"))
    slots = []
    now = 100.0
    for index in range(200):
        if index == 90:
            now += 30  # idle: no credit is saved up for a burst
        state, slot = limits.draw(state, now)
        slots.append(slot)
        now = max(now, slot - 0.05 * (index % 3))  # callers ask early, late, on time
    assert slots == sorted(slots)
    for start in slots:
        assert sum(1 for s in slots if start <= s < start + 1 - 1e-9) <= 7  # float dust


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


def test_shared_schedule_is_drawn_one_at_a_time(database: Database) -> None:
    """Four threads (own connections) draw 25 slots each of a 50/s schedule: the slots are
    all distinct and 1/50 s apart, as if one process drew them (a draw without the row lock
    would hand two workers the same slot)."""
    limits = Limits(50, 100_000)
    slots: list[float] = []

    def draw(state: State, now: float) -> tuple[State, float]:
        state, slot = limits.draw(state, now)
        slots.append(slot)
        return state, slot

    def worker() -> None:
        for _ in range(25):
            shared_rate.reserve(database, "smtp", draw)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(slots) == 100
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert min(gaps) >= 1 / 50 - 1e-6
    waits = [shared_rate.reserve(database, "smtp", limits.draw) for _ in range(2)]
    assert waits[1] > 0  # the schedule persisted: the next slot lies ahead
    assert shared_rate.reserve(database, "other", limits.draw) == 0  # a schedule per name


def test_shared_limiter_sleeps_until_its_slot() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    waits = iter([0.0, 0.25])
    limiter = SharedLimiter(lambda: next(waits), sleep=sleep)
    asyncio.run(limiter.acquire())
    asyncio.run(limiter.acquire())
    assert slept == [0.25]
