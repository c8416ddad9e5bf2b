"""The course of a fault test: load for the configured time, faults at random moments of it,
then the audit once the platform has settled."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable

from tests.faults.audit import Audit, Findings
from tests.faults.load import Ledger, LoadDriver
from tests.faults.platform import Platform

# How long the platform may take, after the load, to consume and publish everything.
SETTLE_S = 300


@dataclass(frozen=True)
class FaultSettings:
    seed: int
    duration_s: float


@dataclass
class Outcome:
    ledger: Ledger
    errors: list[str]   # calls that failed for good, lifecycles that never went on
    findings: Findings
    seconds: float


def moments(rng: random.Random, duration: float, count: int) -> list[float]:
    """`count` random moments within `duration` seconds, one in each of as many equal slots,
    so that the faults are spread over the whole load."""
    slot = duration / count
    return [slot * (n + rng.random()) for n in range(count)]


def under_load(platform: Platform, audit: Audit, settings: FaultSettings, rng: random.Random,
               faults: int, inject: Callable[[], None]) -> Outcome:
    """Keeps the load up for settings.duration_s, calling `inject` at `faults` random moments
    (a fault that takes long delays the next), then waits for the platform to settle and
    audits it."""
    driver = LoadDriver(platform.targets, settings.seed)
    started = time.monotonic()
    driver.start()
    try:
        for at in moments(rng, settings.duration_s, faults):
            time.sleep(max(0.0, started + at - time.monotonic()))
            inject()
        time.sleep(max(0.0, started + settings.duration_s - time.monotonic()))
    except BaseException:
        driver.abandon()
        raise
    driver.stop()
    findings = audit.settle(driver.ledger, SETTLE_S)
    return Outcome(driver.ledger, driver.errors, findings, time.monotonic() - started)
