"""Broker faults on a 3-broker KRaft cluster (3 controllers of their own), with topics of
replication 3 and min.insync.replicas 2 and policykit's idempotent acks=all producer, as
Kafka's own replication system tests do it: under a sustained stream of records, the broker
that leads most partitions is shut down cleanly, killed (SIGKILL) and bounced both ways, and
the active controller is killed. Nothing acknowledged may be lost, duplicated or reordered.
The drafting service keeps publishing through a broker kill, and with two brokers of three
down, writes are refused rather than acknowledged until one returns.

FAULTS_ROUNDS=N repeats the round of faults N times (`make faults-long`: 5)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import pytest
from grpc_health.v1 import health_pb2
from kafka.errors import NotEnoughReplicasError, RequestTimedOutError

from deploy.local.kafka_broker import ensure_jars
from deploy.local.kafka_cluster import KafkaCluster
from policykit.kafka_io import create_producer
from policykit.topics import Declaration, TopicSpec, ensure_topics
from services.drafting.tests.helpers import DRAFTING_TOPIC
from tests.faults.kafka_support import (RECOVERY_TIMEOUT_S, ROUNDS, Paced, Registrations,
                                        audit_registrations, figures, running_service)
from tests.support import (REPO, eventually, health_status, own_database, read_topic,
                           topic_size)

pytestmark = pytest.mark.faults

FAULTS = ("clean shutdown", "hard kill", "controller kill", "clean bounce", "hard bounce")
KEYS = 24
RECORDS_PER_S = 200
# Records acknowledged after a change that show the load goes on.
PROGRESS = 100


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> KafkaCluster:
    cluster = KafkaCluster(tmp_path_factory.mktemp("kafka-cluster"), ensure_jars(REPO / ".cache"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def healthy(cluster) -> KafkaCluster:
    """The cluster with every node running and every replica in sync, as each test starts."""
    cluster.start()
    cluster.wait_for(cluster.in_sync, RECOVERY_TIMEOUT_S, "replicas in sync")
    return cluster


def new_topic(cluster: KafkaCluster) -> str:
    """A six-partition topic created as the platform creates its own (policykit.topics)."""
    spec = TopicSpec(name=f"faults.{uuid.uuid4().hex[:8]}", partitions=6, replication_factor=3,
                     min_insync_replicas=2, retention_ms=-1, cleanup_policy="delete",
                     description="")
    ensure_topics(cluster.bootstrap_servers, Declaration({}, {}, {}), [spec])
    assert all(len(p["replica_nodes"]) == 3 for p in cluster.partitions([spec.name]))
    return spec.name


@dataclass
class Load:
    """A paced stream of records from policykit's producer: record n has key k<n % KEYS> and
    value "<key>:<n>", so a key's records must appear in increasing n. Each acknowledgement
    is kept with where Kafka says it put the record."""

    bootstrap: str
    topic: str
    acked: list[tuple[bytes, int, int]] = field(default_factory=list)  # value, partition, offset
    failed: list[tuple[bytes, Exception]] = field(default_factory=list)

    def __post_init__(self):
        self.producer = create_producer(self.bootstrap, client_id="faults-load")
        self.pacer = Paced(self._send, RECORDS_PER_S)

    def _send(self, n: int) -> None:
        key = f"k{n % KEYS:02d}"
        value = f"{key}:{n}".encode()
        future = self.producer.send(self.topic, key=key.encode(), value=value)
        future.add_callback(lambda meta: self.acked.append((value, meta.partition, meta.offset)))
        future.add_errback(lambda error: self.failed.append((value, error)))

    def start(self) -> "Load":
        self.pacer.start()
        return self

    def progresses(self) -> None:
        """Waits until PROGRESS more records are acknowledged than now."""
        target = len(self.acked) + PROGRESS
        eventually(lambda: len(self.acked) >= target, timeout=RECOVERY_TIMEOUT_S,
                   what=f"{PROGRESS} more acknowledged records")

    def stop(self) -> None:
        self.pacer.stop()
        self.producer.flush()
        self.producer.close()


def audit(bootstrap: str, topic: str, acked: list[tuple[bytes, int, int]]) -> dict[str, int]:
    """Reads the whole topic back: an acknowledged record lost is one not at the partition and
    offset its acknowledgement gave; a duplicate is a value written twice; a reordering is a
    key's record after one sent later."""
    total = topic_size(bootstrap, topic)
    records = read_topic(bootstrap, [topic], lambda rs: len(rs) >= total,
                         timeout=RECOVERY_TIMEOUT_S)
    stored = {(r.partition, r.offset): r.value for r in records}
    last_sent: dict[bytes, int] = {}
    reordered = 0
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        sent = int(record.value.split(b":")[1])
        reordered += sent < last_sent.get(record.key, -1)
        last_sent[record.key] = sent
    return {"lost": sum(stored.get((p, o)) != value for value, p, o in acked),
            "duplicates": sum(n - 1 for n in Counter(stored.values()).values()),
            "reordered": reordered, "records": len(records)}


def take_down(cluster: KafkaCluster, node: int, topics: list[str], *, hard: bool) -> None:
    """Stops the broker (SIGKILL when `hard`) and waits until its partitions have new
    leaders: after a hard kill, once the controllers have fenced it."""
    (cluster.kill_node if hard else cluster.stop_node)(node)
    cluster.wait_for(lambda: node not in {p["leader_id"] for p in cluster.partitions(topics)},
                     RECOVERY_TIMEOUT_S, f"leaders other than broker {node}")


def inject(cluster: KafkaCluster, fault: str, topic: str, load: Load) -> None:
    """One fault against the leader of most partitions (or the active controller), the load
    going on meanwhile; returns once the node is back and every replica in sync."""
    if fault == "controller kill":
        node = eventually(cluster.active_controller, what="an active controller")
        cluster.kill_node(node)
        eventually(lambda: cluster.active_controller() not in (None, node),
                   timeout=RECOVERY_TIMEOUT_S, what="a new active controller")
    else:
        node = cluster.leader_of_most([topic])
        if fault.endswith("bounce"):
            cluster.bounce(node, hard=fault == "hard bounce")
        else:
            take_down(cluster, node, [topic], hard=fault == "hard kill")
    if node not in cluster.running():
        load.progresses()  # the cluster serves without the node
        cluster.start_node(node)
    cluster.wait_for(lambda: cluster.in_sync([topic]), RECOVERY_TIMEOUT_S, "replicas in sync")
    load.progresses()


def test_nothing_acknowledged_is_lost_when_brokers_fail_under_load(healthy, announce):
    topic = new_topic(healthy)
    load = Load(healthy.bootstrap_servers, topic).start()
    faults = Counter()
    try:
        load.progresses()
        for _ in range(ROUNDS):
            for fault in FAULTS:
                inject(healthy, fault, topic, load)
                faults[fault] += 1
    finally:
        load.stop()
    found = audit(healthy.bootstrap_servers, topic, load.acked)
    announce(figures("broker faults", rounds=ROUNDS, **faults, acknowledged=len(load.acked),
                     unacknowledged=len(load.failed), **found))
    assert found["lost"] == 0 and found["duplicates"] == 0 and found["reordered"] == 0


def test_with_two_brokers_down_writes_are_refused_until_one_returns(healthy, announce):
    topic = new_topic(healthy)
    producer = create_producer(healthy.bootstrap_servers, client_id="faults-two-down")
    # No retries, so the broker's answer reaches the test instead of being retried.
    probe = create_producer(healthy.bootstrap_servers, client_id="faults-probe",
                            enable_idempotence=False, retries=0)
    try:
        producer.send(topic, b"before").get(timeout=60)
        survivor, *down = sorted(healthy.brokers)
        for node in down:
            healthy.kill_node(node)
        # The controllers fence the dead brokers and shrink every ISR to the survivor.
        healthy.wait_for(lambda: all(p["isr_nodes"] == [survivor]
                                     for p in healthy.partitions([topic])),
                         RECOVERY_TIMEOUT_S, "ISRs of the survivor alone")
        pending = [producer.send(topic, key=b"k", value=f"during:{n}".encode())
                   for n in range(10)]
        timed_out = refuse_with_two_down(probe, topic)
        held = sum(not f.is_done for f in pending)
        assert held == len(pending)  # retried: neither acknowledged nor given up
        healthy.start_node(down[0])
        for future in pending:
            future.get(timeout=RECOVERY_TIMEOUT_S)
        producer.send(topic, b"after").get(timeout=60)
    finally:
        producer.close()
        probe.close()
    # A probe the leader took before it refused stays in its log, never acknowledged.
    values = [r.value for r in read_topic(
        healthy.bootstrap_servers, [topic],
        lambda rs: sum(not r.value.startswith(b"probe") for r in rs) >= 12)
        if not r.value.startswith(b"probe")]
    announce(figures("two brokers down", held_while_down=held,
                     acknowledged_after_return=len(pending), records=len(values),
                     probes_timed_out=timed_out))
    assert sorted(values) == sorted([b"before", b"after", *(f"during:{n}".encode()
                                                            for n in range(10))])


def refuse_with_two_down(probe, topic: str) -> int:
    """Probes until the leader refuses a write for too few in-sync replicas; returns how many
    probes timed out first. The controllers' ISR can be shrunk before the leader has applied
    it (under load): the leader then takes the record and waits for the dead followers until
    the request times out. Never acknowledged either way."""
    deadline, timed_out = time.monotonic() + RECOVERY_TIMEOUT_S, 0
    while True:
        future = probe.send(topic, key=b"k", value=f"probe:{timed_out}".encode())
        try:
            future.get(timeout=90)
        except NotEnoughReplicasError:
            return timed_out
        except RequestTimedOutError:
            timed_out += 1
            assert time.monotonic() < deadline, "the leader never refused with two brokers down"
            continue
        pytest.fail("a write was acknowledged with two of three brokers down")


def test_a_service_keeps_publishing_through_a_broker_kill(healthy, database_url, tmp_path,
                                                          announce):
    ensure_topics(healthy.bootstrap_servers)
    with own_database(database_url, "broker_faults") as database, \
            running_service("drafting", healthy.bootstrap_servers, database, tmp_path) as service:
        registrations = Registrations(service)
        calls = Paced(registrations.register, rate=10).start()
        try:
            before = topic_size(healthy.bootstrap_servers, DRAFTING_TOPIC)
            node = healthy.leader_of_most([DRAFTING_TOPIC])
            take_down(healthy, node, [DRAFTING_TOPIC], hard=True)
            # The outbox publishes to the new leaders while the broker is down.
            eventually(lambda: topic_size(healthy.bootstrap_servers, DRAFTING_TOPIC) > before + 20,
                       timeout=RECOVERY_TIMEOUT_S, what="events published without the broker")
            healthy.start_node(node)
            healthy.wait_for(lambda: healthy.in_sync([DRAFTING_TOPIC]), RECOVERY_TIMEOUT_S,
                             "replicas in sync")
        finally:
            calls.stop()
            registrations.close()
        found = audit_registrations(healthy.bootstrap_servers, registrations.acknowledged)
        assert health_status(service.grpc_target) == health_pb2.HealthCheckResponse.SERVING
    announce(figures("drafting through a broker kill",
                     acknowledged=len(registrations.acknowledged), **found))
    assert found == {"registered": len(registrations.acknowledged), "duplicates": 0}
