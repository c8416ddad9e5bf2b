"""Per-source rate limits on public comment intake: each source (the authenticated
organisation — a portal — or, without authentication, the caller's address) has a token
bucket of `rate` comments a second with room for a burst of `burst`. A source over its limit is
told how long to wait (RESOURCE_EXHAUSTED with RetryInfo), so one misbehaving portal cannot
crowd out the others; comments already accepted are never dropped."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from policykit.auth import Principal

# Buckets of sources not heard from for this long are full again; forgetting them bounds the
# memory that many one-off callers would otherwise take.
IDLE_FORGET_S = 600.0


@dataclass
class _Bucket:
    tokens: float
    updated: float


class SourceRateLimits:
    """Token buckets by source. `rate` 0 turns the limits off."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic,
                 max_sources: int = 100_000):
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.clock = clock
        self.max_sources = max_sources
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def admit(self, source: str, comments: int = 1) -> None:
        """Takes room for `comments` or raises SourceOverLimit, taking nothing."""
        wait = self.take(source, comments)
        if wait:
            raise SourceOverLimit(source, wait)

    def take(self, source: str, comments: int = 1) -> float:
        """Takes room for `comments` from the source's bucket and returns 0, or takes nothing
        and returns the seconds to wait until there is room (a batch larger than the burst
        waits for a full bucket and then may go through alone)."""
        if not self.rate:
            return 0.0
        now = self.clock()
        bucket = self._refilled(source, now)
        needed = min(float(comments), self.burst)
        if bucket.tokens >= needed:
            bucket.tokens -= comments
            return 0.0
        return (needed - bucket.tokens) / self.rate

    def _refilled(self, source: str, now: float) -> _Bucket:
        bucket = self._buckets.pop(source, None)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        self._buckets[source] = bucket  # most recently used last
        self._forget_idle(now)
        return bucket

    def _forget_idle(self, now: float) -> None:
        while self._buckets:
            source, oldest = next(iter(self._buckets.items()))
            if now - oldest.updated < IDLE_FORGET_S and len(self._buckets) <= self.max_sources:
                return
            del self._buckets[source]


class SourceOverLimit(Exception):
    """A source sent more comments than its limit allows; it should wait retry_after_s."""

    def __init__(self, source: str, retry_after_s: float):
        super().__init__(f"{source} is over its limit of comments a second; retry in "
                         f"{retry_after_s:.1f} s with the same idempotency keys")
        self.retry_after_s = retry_after_s


def source_of(principal: Principal, peer: str) -> str:
    """Whose limit a call counts against: the authenticated organisation, else the address."""
    return f"org:{principal.org}" if principal.checked else peer_source(peer)


def peer_source(peer: str) -> str:
    """The caller's address without its port: `ipv4:10.0.0.7:53211` → `ipv4:10.0.0.7`,
    `ipv6:[::1]:53211` → `ipv6:[::1]`."""
    kind, _, address = peer.partition(":")
    if kind in ("ipv4", "ipv6") and not address.endswith("]"):
        address = address.rsplit(":", 1)[0]
    return f"{kind}:{address}" if address else peer
