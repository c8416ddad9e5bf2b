"""Hypothesis profiles: `ci` (the default) is derandomized — the same inputs on every run,
bounded so that tests/fuzz stays within about two minutes; `fuzz` (HYPOTHESIS_PROFILE=fuzz)
draws new inputs every run, SCALE times as many, and keeps the failing ones in .cache/hypothesis
to try first next time."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from tests.support import REPO

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
SCALE = {"ci": 1, "fuzz": 20}[PROFILE]

# Generating a whole protobuf message or Kafka record per example is slower than Hypothesis
# expects of a strategy; calls to the running services take what the network takes.
_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("ci", derandomize=True, database=None, deadline=None,
                          suppress_health_check=_SLOW, print_blob=True)
settings.register_profile("fuzz", database=DirectoryBasedExampleDatabase(
    REPO / ".cache" / "hypothesis"), deadline=None, suppress_health_check=_SLOW)
settings.load_profile(PROFILE)


def examples(ci_count: int) -> settings:
    """Settings trying `ci_count` inputs in CI, SCALE times as many in a fuzz run."""
    return settings(max_examples=ci_count * SCALE)
