"""How the gRPC clients retry: which statuses, how often, how long."""

from __future__ import annotations

import random
from dataclasses import dataclass

import grpc

# The statuses worth another attempt. Each is safe for reads; for mutating calls it is safe
# only because every attempt carries the same idempotency key:
# - UNAVAILABLE: the request never arrived, or arrived and its answer was lost; with the key a
#   repeat returns the first answer instead of applying the change again.
# - DEADLINE_EXCEEDED: the service may still be applying the change; a repeat with the key
#   waits for it (the service locks on the key) and returns its result.
# - RESOURCE_EXHAUSTED: the service or the channel shed the call before doing anything.
# - ABORTED: a conflicting transaction made the service give up; nothing was applied.
# Everything else (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, INTERNAL, …) would fail the
# same way again.
TRANSIENT_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                             grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED})


@dataclass(frozen=True)
class RetryPolicy:
    """Retries with exponential backoff and jitter.

    Attempt n (from 1) that fails with one of `retryable_codes` is followed, after a pause of
    up to min(max_backoff, initial_backoff * multiplier ** (n - 1)) seconds, by another, until
    `max_attempts` attempts were made or the next one would start after `overall_timeout`
    seconds (counted from the call; the pauses included). Each attempt gets at most
    `attempt_timeout` seconds, and never more than what is left of the overall deadline.
    `jitter` is the random share of each pause: 1.0 ("full jitter") draws it uniformly between
    0 and its maximum so that clients that failed together do not retry together; 0 waits the
    maximum every time."""

    max_attempts: int = 10
    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    multiplier: float = 2.0
    jitter: float = 1.0
    attempt_timeout: float = 10.0
    overall_timeout: float = 30.0
    retryable_codes: frozenset[grpc.StatusCode] = TRANSIENT_CODES

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be 1 or more, got {self.max_attempts}")
        for name in ("initial_backoff", "max_backoff", "attempt_timeout", "overall_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be 1 or more, got {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter}")

    def backoff(self, attempt: int) -> float:
        """The pause in seconds after failed attempt number `attempt` (from 1)."""
        try:
            ceiling = min(self.max_backoff,
                          self.initial_backoff * self.multiplier ** (attempt - 1))
        except OverflowError:  # a float power past 1e308, long after max_backoff was reached
            ceiling = self.max_backoff
        return ceiling * (1 - self.jitter * random.random())
