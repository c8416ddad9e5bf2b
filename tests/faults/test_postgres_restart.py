"""PostgreSQL restarted under load (issue #9, "Faults"): the database stops for a few seconds
at a random moment and starts again. The services ride it out by themselves — none exits,
none is restarted, each reports SERVING again — their outboxes drain afterwards, and nothing
acknowledged is lost or duplicated (tests/faults/audit.py).

The module runs a PostgreSQL server of its own, so that the session's stays up for others."""

from __future__ import annotations

import random
import subprocess
import sys
import time

import pytest

from deploy.local.kafka_broker import free_port
from deploy.local.postgres_server import PostgresServer
from tests.faults.audit import Audit, summary
from tests.faults.platform import Platform
from tests.faults.scenario import under_load
from tests.support import REPO, own_broker

pytestmark = pytest.mark.faults

# Down for longer than a consumer's five attempts at an event take (about 5 s of back-off).
OUTAGE_S = 8
# One restart per this many seconds of load.
SECONDS_PER_RESTART = 40


def pg_ctl(server: PostgresServer, command: str) -> None:
    """Starts or stops the server from a process of its own. As root, PostgresServer runs
    pg_ctl as the server's user, which takes a fork() whose child gRPC's fork handlers crash
    while this process has gRPC threads (the load's clients); Python starts a process with
    no user switch through vfork(), which runs no fork handlers."""
    subprocess.run([sys.executable, "-m", "deploy.local.postgres_server", command,
                    "--data-dir", str(server.data_dir), "--port", str(server.port)],
                   cwd=REPO, check=True, capture_output=True, timeout=180)


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    server = PostgresServer(tmp_path_factory.mktemp("faults-postgres"), free_port())
    pg_ctl(server, "start")
    yield server
    pg_ctl(server, "stop")


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory) -> str:
    """A broker of the test's own: its fresh database holds no consumer offsets, so the
    services would otherwise read every earlier test's records, garbage included."""
    with own_broker(tmp_path_factory.mktemp("faults-kafka")) as servers:
        yield servers


def test_services_ride_out_a_postgres_restart_under_load(
        bootstrap, postgres, tmp_path, fault_settings, announce):
    rng = random.Random(fault_settings.seed)
    announce(f"test_postgres_restart: FAULTS_SEED={fault_settings.seed} "
             f"FAULTS_DURATION_S={fault_settings.duration_s:g}")
    restarts = max(1, round(fault_settings.duration_s / SECONDS_PER_RESTART))

    def restart_postgres() -> None:
        pg_ctl(postgres, "stop")
        time.sleep(OUTAGE_S)
        pg_ctl(postgres, "start")

    with Platform(bootstrap, postgres.url, tmp_path) as platform:
        audit = Audit(bootstrap, postgres.url)
        try:
            outcome = under_load(platform, audit, fault_settings, rng, restarts, restart_postgres)
        finally:
            audit.close()
        announce(summary("test_postgres_restart", fault_settings.seed, outcome.seconds,
                         outcome.ledger, outcome.findings, postgres_restarts=restarts))
        assert not platform.exited(), "a service ended with its database instead of waiting"
        platform.await_serving()
        assert not outcome.errors, "\n".join(outcome.errors)
        assert outcome.findings.clean, outcome.findings.report()
        assert set(platform.stop().values()) == {0}, "a graceful stop failed"
