"""Token buckets per caller: a steady rate with a burst allowance; a refusal says when to retry."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, *, default_rate: float = 20.0, default_burst: int = 40, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self.default_rate = default_rate
        self.default_burst = default_burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, rate: float | None = None, burst: int | None = None) -> float:
        """0 when the request may go; otherwise the seconds to wait before one token is back."""
        rate = rate or self.default_rate
        burst = burst or self.default_burst
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(burst), now)
        bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate


def retry_after_header(wait: float) -> str:
    return str(max(1, math.ceil(wait)))
