"""Request budgets: a token bucket per key (a device, a source address), in memory, on an injected clock.

A key may spend `burst` requests at once and `rate` a second after that. A bucket left alone long enough to be
full again is dropped (it is the same as a new one), and at most `max_keys` are kept (the least recently used
go first), so a flood from many addresses cannot grow memory without end.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache


@dataclass
class _Bucket:
    tokens: float
    at: float


class Budgets:
    def __init__(self, rate: float, burst: int, now: Callable[[], float], *, max_keys: int = 100_000,
                 episode_s: float = 60.0) -> None:
        """`now()` gives seconds (the injected clock); `episode_s` is how long one refusal episode lasts."""
        if rate <= 0 or burst < 1:
            raise ValueError("a budget needs a positive rate and a burst of at least 1")
        self.rate, self.burst, self.now = float(rate), burst, now
        self._buckets: TTLCache[str, _Bucket] = TTLCache(max_keys, burst / rate, timer=now)
        self._episodes: TTLCache[str, float] = TTLCache(max_keys, episode_s, timer=now)

    def take(self, key: str) -> float:
        """Spend one request of `key`'s budget: 0 when it had one, else the seconds until it will have one."""
        now = self.now()
        bucket = self._buckets.get(key) or _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + max(0.0, now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            wait = 0.0
        else:
            wait = (1.0 - bucket.tokens) / self.rate
        self._buckets[key] = bucket  # stored again: its time to live counts from its last use
        return wait

    def new_episode(self, key: str) -> bool:
        """Whether a refusal of `key` starts an episode (none in the last `episode_s`): only those are recorded."""
        if key in self._episodes:
            return False
        self._episodes[key] = self.now()
        return True


def retry_after(wait_s: float) -> int:
    """A Retry-After header's whole seconds, never 0 (a client told 0 would come straight back)."""
    return max(1, math.ceil(wait_s))


class Turns:
    """At most `width` requests of one key at a time; the others wait their turn, in order (never refused).

    One device's flood of alerts so waits on its own turns instead of filling the queues everyone shares (the
    database pool above all): other people's alerts go past it."""

    def __init__(self, width: int) -> None:
        if width < 1:
            raise ValueError("turns need a width of at least 1")
        self.width = width
        self._gates: dict[str, list] = {}  # key -> [semaphore, requests holding or waiting for a turn]

    @contextlib.asynccontextmanager
    async def turn(self, key: str | None):
        """Wait for a turn of `key` and hold it (None: no turn needed)."""
        if key is None:
            yield
            return
        gate = self._gates.setdefault(key, [asyncio.Semaphore(self.width), 0])
        gate[1] += 1
        try:
            async with gate[0]:
                yield
        finally:
            gate[1] -= 1
            if gate[1] == 0:  # nobody holds or waits: forget the key
                del self._gates[key]

    @property
    def keys(self) -> int:
        return len(self._gates)
