"""Requests per minute per token: a generic cell rate algorithm (GCRA), in memory.

Each token may make `per_minute` requests in any minute, in a burst or spread out; past
that, a request is refused with the seconds until the next one would be accepted (the
`Retry-After` of the 429). The state is one number per token (the theoretical arrival time
of its next request) in this process: `digest serve` is one process, and a restart forgets
at most a minute of history.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

WINDOW = 60.0


class TokenLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._next: dict[int, float] = {}
        self._lock = threading.Lock()

    def wait(self, token_id: int, per_minute: int) -> int:
        """0 if a request of this token is allowed now (and counted); else the whole seconds
        to wait before the next would be."""
        interval = WINDOW / per_minute
        tolerance = WINDOW - interval
        with self._lock:
            now = self.clock()
            arrival = max(self._next.get(token_id, now), now)
            if arrival - now > tolerance:
                return max(1, math.ceil(arrival - now - tolerance))
            self._next[token_id] = arrival + interval
            return 0
