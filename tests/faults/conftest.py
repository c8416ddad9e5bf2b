"""The `faults` marker, and the settings of test_kill_services and test_postgres_restart,
from the environment:

- FAULTS_SEED: the seed of every random choice (which service dies when, what the load
  sends); each test prints it, so that a failed run's schedule can be run again (the timing
  of everything else still varies).
- FAULTS_DURATION_S: how long each test keeps the load up. The default is the short variant
  CI runs; a longer one means more kills and database restarts."""

from __future__ import annotations

import os
import random

import pytest

from tests.faults.scenario import FaultSettings

CI_DURATION_S = 20.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: breaks parts of the platform under load (tests/faults)")


@pytest.fixture(scope="session")
def fault_settings() -> FaultSettings:
    return FaultSettings(seed=int(os.environ.get("FAULTS_SEED") or random.randrange(2**32)),
                         duration_s=float(os.environ.get("FAULTS_DURATION_S", CI_DURATION_S)))


@pytest.fixture
def announce(capsys):
    """Prints a line even while pytest captures output: seeds and figures belong in the log."""
    def announce(line: str) -> None:
        with capsys.disabled():
            print(f"\n{line}", flush=True)
    return announce
