"""Async token buckets for requests-per-minute and tokens-per-minute limits.

A bucket refills continuously at `rate_per_minute / 60` units per second and holds at most
`burst` units (by default one second's worth, so a limit of 600/min allows bursts of 10, not a
whole minute's worth at once).

Waiters reserve before they sleep: `acquire(n)` takes `n` units at once, letting the level go
negative, and sleeps until the level is back to zero. Callers are therefore served in arrival
order, a burst of hundreds of waiters does not wake up to race for each unit, and one request
larger than the bucket still gets through (it just waits longer).

The bucket is guarded by a `threading.Lock`, not bound to an event loop, so one bucket can pace
a client that is used from several event loops (`kinds.run_sync` runs each batch on its own).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self,
        rate_per_minute: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_minute <= 0:
            raise ValueError(f"rate_per_minute must be positive, got {rate_per_minute}")
        self.rate_per_second = rate_per_minute / 60.0
        self.capacity = float(burst) if burst is not None else max(1.0, self.rate_per_second)
        if self.capacity <= 0:
            raise ValueError(f"burst must be positive, got {burst}")
        self._clock = clock
        self._level = self.capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._updated) * self.rate_per_second)
        self._updated = now

    def reserve(self, amount: float) -> float:
        """Take `amount` units now; return how many seconds the caller must wait before using them."""
        if amount < 0:
            raise ValueError(f"amount must be >= 0, got {amount}")
        with self._lock:
            self._refill()
            self._level -= amount
            return 0.0 if self._level >= 0 else -self._level / self.rate_per_second

    def refund(self, amount: float) -> None:
        """Give back units (a cancelled wait, or an over-estimate); negative `amount` takes more."""
        with self._lock:
            self._refill()
            self._level = min(self.capacity, self._level + amount)

    async def acquire(self, amount: float = 1.0) -> float:
        """Wait until `amount` units are ours; returns the seconds waited."""
        wait = self.reserve(amount)
        if wait > 0:
            try:
                await asyncio.sleep(wait)
            except asyncio.CancelledError:
                self.refund(amount)
                raise
        return wait

    @property
    def level(self) -> float:
        with self._lock:
            self._refill()
            return self._level


__all__ = ["TokenBucket"]
