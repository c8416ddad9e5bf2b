"""Helpers for tests that talk to the real broker and to running services."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kafka import KafkaConsumer, TopicPartition

from deploy.local.kafka_broker import free_port

REPO = Path(__file__).resolve().parents[1]


def pythonpath(checkout: Path) -> str:
    """The PYTHONPATH a checkout of this repository runs with (as the Makefile exports it)."""
    return os.pathsep.join(str(checkout / p) for p in (".", "gen/python", "libs", "clients"))


PYTHONPATH = pythonpath(REPO)


def read_topic(bootstrap: str, topics: list[str], until: Callable[[list], bool],
               timeout: float = 60, missing: Callable[[list], str] | None = None) -> list:
    """Reads the topics from the beginning with a throwaway group until `until(records)`
    holds; fails the test when the deadline passes first, saying `missing(records)`."""
    consumer = KafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=f"t-{uuid.uuid4()}",
                             auto_offset_reset="earliest", enable_auto_commit=False)
    records: list = []
    deadline = time.monotonic() + timeout
    try:
        while not until(records):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out reading {topics}; got {len(records)} records"
                                     + (f"; {missing(records)}" if missing else ""))
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


@contextmanager
def own_database(database_url: str, prefix: str) -> Iterator[str]:
    """A fresh database on the session's server, dropped afterwards, for services run against
    a broker of a test's own: they keep their outbox and consumer state (evaluation its
    delivery-report offsets) per schema, which must not meet another broker's."""
    import asyncio

    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"

    async def execute(statement: str) -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    try:
        yield urlsplit(database_url)._replace(path=f"/{name}").geturl()
    finally:
        asyncio.run(execute(f'DROP DATABASE "{name}" WITH (FORCE)'))


@contextmanager
def own_broker(directory: Path) -> Iterator[str]:
    """A broker of a test's own, with the declared topics, for a test whose assertions cover
    whole topics: the session's broker holds every other test's records, garbage included."""
    from deploy.local.kafka_broker import KafkaBroker, ensure_jars
    from policykit.topics import ensure_topics

    broker = KafkaBroker(directory, free_port(), free_port(), ensure_jars(REPO / ".cache"))
    broker.start()
    try:
        ensure_topics(broker.bootstrap_servers)
        yield broker.bootstrap_servers
    finally:
        broker.stop()


def health_status(target: str, service: str = "", timeout: float = 2) -> int:
    with grpc.insecure_channel(target) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout).status


@dataclass
class RunningService:
    process: subprocess.Popen
    grpc_target: str
    metrics_port: int
    log: Path

    def terminate(self, timeout: float = 30) -> int:
        """Sends SIGTERM and returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def start_service(module: str, log_dir: Path, env: dict[str, str], timeout: float = 60,
                  grpc_port: int | None = None) -> RunningService:
    """Starts `python -m module` on free ports and waits until its health check says SERVING.
    A restarted service may be given its former `grpc_port`, so that clients find it again.
    It runs without authentication (AUTH_MODE=none) unless `env` says otherwise: the tests of
    authentication and authorization are in tests/security. With GRPC_HEALTH_PORT in `env`
    (AUTH_MODE=mtls) it asks the health service there."""
    grpc_port, metrics_port = grpc_port or free_port(), free_port()
    log = log_dir / f"{module}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", module], cwd=REPO, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        env={**os.environ, "AUTH_MODE": "none", **env, "PYTHONPATH": PYTHONPATH,
             "GRPC_PORT": str(grpc_port), "METRICS_PORT": str(metrics_port)})
    target = f"127.0.0.1:{grpc_port}"
    health_target = f"127.0.0.1:{env.get('GRPC_HEALTH_PORT') or grpc_port}"
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"{module} exited with {process.returncode}:\n{log.read_text()}")
        try:
            if health_status(health_target, timeout=1) == health_pb2.HealthCheckResponse.SERVING:
                return RunningService(process, target, metrics_port, log)
        except grpc.RpcError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{module} not SERVING after {timeout}s:\n{log.read_text()}")
        time.sleep(0.2)


def topic_size(bootstrap: str, topic: str) -> int:
    """Counts the records ever written to the topic (the sum of its partitions' end offsets)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def eventually(check: Callable[[], object], timeout: float = 60, interval: float = 0.2,
               what: str = "condition"):
    """Returns check()'s first truthy value; fails the test if none comes before the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {value!r}")
        time.sleep(interval)


def idle_rss_mb(pid: int, timeout: float = 20, tolerance: float = 0.01) -> float:
    """Returns a started process's resident memory once it has settled: two samples half a
    second apart within `tolerance` of each other (or the last sample at the deadline)."""
    import psutil

    process = psutil.Process(pid)
    deadline = time.monotonic() + timeout
    previous = process.memory_info().rss
    while True:
        time.sleep(0.5)
        current = process.memory_info().rss
        if abs(current - previous) <= tolerance * previous or time.monotonic() > deadline:
            return current / 2**20
        previous = current


# The five services in start order (drafting first: the others consume its topic).
PLATFORM_SERVICES = ("drafting", "communication", "consultation", "publication", "evaluation")


def platform_env(bootstrap: str, database_url: str,
                 extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """The services' environment: the local platform's settings (deploy/local/platform.env)
    against the given broker and database, without authentication unless `extra_env` sets
    AUTH_MODE (the platform's development tokens file stays named in AUTH_TOKENS_FILE)."""
    from deploy.local.supervisor import SETTINGS_FILE, read_env_file

    return {**read_env_file(SETTINGS_FILE), "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DATABASE_URL": database_url, "OUTBOX_POLL_INTERVAL_MS": "20", "AUTH_MODE": "none",
            **(extra_env or {})}


@contextmanager
def running_platform(bootstrap: str, database_url: str, log_dir: Path,
                     extra_env: dict[str, str] | None = None) -> Iterator[dict[str, RunningService]]:
    """Runs all five services on free ports against the given broker and database, with the
    local platform's settings (deploy/local/platform.env); yields them by name and stops them
    with SIGTERM afterwards. Tests that use it should scope it to their module or package so
    that no other copy of a service shares its schema and consumer group meanwhile."""
    env = platform_env(bootstrap, database_url, extra_env)
    started: dict[str, RunningService] = {}
    try:
        for name in PLATFORM_SERVICES:
            started[name] = start_service(f"services.{name}", log_dir, env)
        yield started
    finally:
        for service in reversed(started.values()):
            service.terminate()
