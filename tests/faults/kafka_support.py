"""What the Kafka fault tests (test_broker_faults, test_network_faults) share: paced load in a
thread, services run against the broken Kafka, and the audit of what the drafting service
acknowledged."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Mapping

import grpc
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from policy.drafting.v1 import drafting_service_pb2_grpc as drafting_grpc
from policykit.envelope import from_record
from services.drafting.tests.helpers import DRAFTING_TOPIC, register_request
from tests.support import RunningService, read_topic, start_service

# FAULTS_ROUNDS (`make faults-long`: 5): how often the round of broker faults is repeated;
# above 1, the network faults also include an outage longer than the producer's delivery timeout.
ROUNDS = int(os.environ.get("FAULTS_ROUNDS", "1"))
# A service starting against a cluster that is being broken creates topics and joins groups
# slowly; the machine is shared with other test runs.
START_TIMEOUT_S = 180
# How long the platform may take to catch up once a fault is gone.
RECOVERY_TIMEOUT_S = 240


class Paced:
    """Calls `step(n)` for n = 0, 1, 2, ... about `rate` times a second in a thread, until
    stop(); an exception ends the thread and is raised again by stop()."""

    def __init__(self, step: Callable[[int], None], rate: float):
        self.step = step
        self.interval = 1 / rate
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Paced":
        self._thread.start()
        return self

    def _run(self) -> None:
        due, n = time.monotonic(), 0
        try:
            while not self._stop.is_set():
                self.step(n)
                n += 1
                due += self.interval
                self._stop.wait(max(0.0, due - time.monotonic()))
        except BaseException as error:  # handed to the test by stop()
            self._error = error

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self._error is not None:
            raise self._error


@contextmanager
def running_service(name: str, bootstrap: str, database_url: str,
                    log_dir: Path) -> Iterator[RunningService]:
    """The service (e.g. "drafting") against the broker and database; it must stop cleanly."""
    service = start_service(f"services.{name}", log_dir, {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DATABASE_URL": database_url,
        "OUTBOX_POLL_INTERVAL_MS": "20"}, timeout=START_TIMEOUT_S)
    try:
        yield service
    finally:
        code = service.terminate(timeout=RECOVERY_TIMEOUT_S)
    assert code == 0, f"{name} exited with {code}; see {service.log}"


@contextmanager
def waits_on_failure(services: Mapping[str, RunningService],
                     state: Callable[[], str] | None = None) -> Iterator[None]:
    """On a failed check, adds `state()` to the failure, then asks each running service where
    it waits (SIGUSR1, policykit.runtime.log_waits) and adds what it logged: a service that
    stopped making progress without logging why is seen there. Tasks and threads waiting in
    the project's own code come first: a long failure is cut short where it is shown."""
    try:
        yield
    except AssertionError as failure:
        report = [str(failure)]
        if state is not None:
            try:
                report.append(state())
            except Exception as error:  # the failure matters more than the state
                report.append(f"state unknown ({type(error).__name__}: {error})")
        logged = {name: service.log.stat().st_size for name, service in services.items()}
        for service in services.values():
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGUSR1)
        time.sleep(2)
        for name, service in services.items():
            with service.log.open("rb") as log:
                log.seek(logged[name])
                lines = log.read().decode("utf-8", errors="replace").splitlines()
            lines.sort(key=lambda line: not re.search(r"\((policykit|services)\.", line))
            report.append(f"--- {name}, on SIGUSR1:")
            report.extend(lines)
        raise AssertionError("\n".join(report)) from None


class Registrations:
    """Registers drafts over gRPC and keeps the regulation ids of those the service
    acknowledged: each of them must reach policy.drafting.v1."""

    def __init__(self, service: RunningService):
        self.channel = grpc.insecure_channel(service.grpc_target)
        self.stub = drafting_grpc.DraftingServiceStub(self.channel)
        self.acknowledged: list[str] = []

    def register(self, _: int = 0) -> None:
        self.acknowledged.append(
            self.stub.RegisterDraft(register_request(), timeout=30).draft.regulation_id)

    def close(self) -> None:
        self.channel.close()


def audit_registrations(bootstrap: str, regulation_ids: list[str]) -> dict[str, int]:
    """Reads policy.drafting.v1 until every registered regulation has its DraftRegistered
    there (failing the test when one is missing); returns how many events there are and
    how many came more than once (the same ce_id)."""
    wanted = {r.encode() for r in regulation_ids}

    def missing(records) -> str:
        return "missing " + ", ".join(sorted(
            key.decode() for key in wanted - {r.key for r in records}))

    records = read_topic(bootstrap, [DRAFTING_TOPIC], lambda rs: {r.key for r in rs} >= wanted,
                         timeout=RECOVERY_TIMEOUT_S, missing=missing)
    found = Counter(from_record(r.key, r.value, r.headers).id for r in records
                    if r.key in wanted)
    return {"registered": len(found), "duplicates": sum(n - 1 for n in found.values())}


def group_lag(bootstrap: str, group: str, topic: str) -> int:
    """How far the group's committed offsets are behind the end of the topic."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        committed = admin.list_group_offsets({group: partitions})[group]
        return sum(end - max(committed[tp].offset, 0) if tp in committed else end
                   for tp, end in consumer.end_offsets(partitions).items())
    finally:
        consumer.close()
        admin.close()


def figures(title: str, **values) -> str:
    """A test's figures as the one line it announces."""
    return f"{title}: " + ", ".join(f"{name} {value}" for name, value in values.items())
