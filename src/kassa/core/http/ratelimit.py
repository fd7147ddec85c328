"""Per-API-key token buckets, in the API process's memory.

Each process enforces the limit on its own (no shared store on the hot path, by design): with N
API processes a key can reach N × the configured rate. Operators size the setting by that."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, rate_per_second: float, burst: int) -> None:
        self.rate = rate_per_second
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key: str) -> int:
        """Take one token for ``key``; 0 when allowed, else seconds to wait before retrying."""
        now = time.monotonic()
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = _Bucket(float(self.burst), now)
        b.tokens = min(float(self.burst), b.tokens + (now - b.updated) * self.rate)
        b.updated = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0
        return max(1, math.ceil((1.0 - b.tokens) / self.rate))
