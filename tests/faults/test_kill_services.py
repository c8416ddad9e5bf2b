"""kill -9 under load (issue #9, "Faults"): while drafts go through their lifecycle, comments
come in and tasks are completed, each of the five services is SIGKILLed at a random moment —
no shutdown, no outbox drain, no offset commit — and restarted on its port. Afterwards nothing
acknowledged is lost, no task or event is duplicated, and every consumer group resumed from
its committed offsets and reached the end of its topics (tests/faults/audit.py)."""

from __future__ import annotations

import itertools
import random

import pytest

from tests.faults.audit import Audit, summary
from tests.faults.platform import Platform
from tests.faults.scenario import under_load
from tests.support import PLATFORM_SERVICES

pytestmark = pytest.mark.faults

# One kill per this many seconds of load, and at least one of each service.
SECONDS_PER_KILL = 8


def test_services_killed_under_load_lose_and_duplicate_nothing(
        platform_topics, database_url, tmp_path, fault_settings, announce):
    rng = random.Random(fault_settings.seed)
    announce(f"test_kill_services: FAULTS_SEED={fault_settings.seed} "
             f"FAULTS_DURATION_S={fault_settings.duration_s:g}")
    kills = max(len(PLATFORM_SERVICES), round(fault_settings.duration_s / SECONDS_PER_KILL))
    # Every service in a random order, again and again.
    victims = itertools.chain.from_iterable(
        rng.sample(PLATFORM_SERVICES, len(PLATFORM_SERVICES)) for _ in itertools.count())
    with Platform(platform_topics, database_url, tmp_path) as platform:
        audit = Audit(platform_topics, database_url)
        try:
            outcome = under_load(platform, audit, fault_settings, rng, kills,
                                 lambda: platform.kill_and_restart(next(victims)))
        finally:
            audit.close()
        announce(summary("test_kill_services", fault_settings.seed, outcome.seconds,
                         outcome.ledger, outcome.findings, kills=platform.kills,
                         restarts=platform.restarts))
        assert not outcome.errors, "\n".join(outcome.errors)
        assert outcome.findings.clean, outcome.findings.report()
        assert not platform.exited(), "a service ended by itself"
        assert set(platform.stop().values()) == {0}, "a graceful stop failed"
