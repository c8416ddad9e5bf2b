"""Network faults between the services and Kafka, injected by toxiproxy: latency, a bandwidth
limit, a cut longer than the consumer session timeout, connections reset, and connections
that swallow every byte. The broker advertises the proxy's address, so every connection the
services make to Kafka goes through it; the test itself reads and writes Kafka directly.

Under each fault the drafting service (gRPC in, outbox to Kafka, a Faust consumer of the
intake topic) keeps acknowledging drafts, and the communication task engine (a Faust
consumer) is behind it; once the fault is removed both must recover by themselves, with no
restart: SERVING, the outbox drained, every acknowledged event on its topic, the consumer
groups rejoined and their committed offsets at the end of their topics. The outbox relay also
replaces a producer whose records were not acknowledged within its delivery timeout, and goes
on once the network is back, with a timeout short enough to reach that state quickly.

With FAULTS_ROUNDS above 1 (`make faults-long`), a network that swallows every byte for longer
than the outbox relay's delivery timeout (2 minutes) is added, with the services' own settings.
toxiproxy-server is built from the Go module proxy into .cache/bin (`make toxiproxy`)."""

from __future__ import annotations

import asyncio
import functools
import json
import subprocess
import urllib.request
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2
from kafka import KafkaAdminClient
from kafka.errors import CoordinatorNotAvailableError

from deploy.local.kafka_broker import ensure_jars, free_port
from deploy.local.kafka_cluster import KafkaCluster
from policy.common.v1 import common_pb2
from policy.drafting.v1 import events_pb2 as drafting_events
from policykit import db
from policykit.envelope import new_event
from policykit.kafka_io import create_producer, publish
from policykit.outbox import DELIVERY_TIMEOUT_S, OutboxRelay, create_relay_producer, enqueue
from policykit.topics import Declaration, TopicSpec, ensure_topics
from services.drafting.tests.helpers import DRAFTING_TOPIC, TITLE
from tests.faults.kafka_support import (RECOVERY_TIMEOUT_S, ROUNDS, Registrations,
                                        audit_registrations, figures, group_lag, running_service,
                                        waits_on_failure)
from tests.support import REPO, eventually, health_status, own_database, read_topic

pytestmark = pytest.mark.faults

TOXIPROXY = REPO / ".cache" / "bin" / "toxiproxy-server"
INTAKE_TOPIC = "policy.drafting-intake.v1"
# Consumer group -> the topic whose end its committed offsets must reach.
GROUPS = {"drafting": INTAKE_TOPIC, "communication": DRAFTING_TOPIC}
DRAFTS_PER_FAULT = 5


class Toxiproxy:
    """toxiproxy-server in a process of its own, driven over its HTTP API
    (https://github.com/Shopify/toxiproxy#http-api)."""

    def __init__(self, log: Path):
        self.port = free_port()
        self.process = subprocess.Popen(
            [str(TOXIPROXY), "-host", "127.0.0.1", "-port", str(self.port)],
            stdout=log.open("wb"), stderr=subprocess.STDOUT)
        eventually(self._answers, what="toxiproxy's API")

    def _answers(self) -> bool:
        try:
            return bool(self.request("GET", "/version"))
        except OSError:
            return False

    def request(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                         method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text.strip() else None

    def create_proxy(self, name: str, listen: int, upstream: int) -> None:
        self.request("POST", "/proxies", {"name": name, "listen": f"127.0.0.1:{listen}",
                                          "upstream": f"127.0.0.1:{upstream}", "enabled": True})

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        """A disabled proxy closes its connections and refuses new ones."""
        self.request("PATCH", f"/proxies/{proxy}", {"enabled": enabled})

    def add_toxic(self, proxy: str, kind: str, attributes: dict) -> None:
        """Adds the toxic to both directions of every connection of the proxy."""
        for stream in ("upstream", "downstream"):
            self.request("POST", f"/proxies/{proxy}/toxics", {
                "name": f"{kind}-{stream}", "type": kind, "stream": stream, "toxicity": 1.0,
                "attributes": attributes})

    def reset(self) -> None:
        """Removes every toxic and enables every proxy."""
        self.request("POST", "/reset")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@dataclass(frozen=True)
class Fault:
    name: str
    toxic: str | None = None  # the toxiproxy toxic, on both directions; None: the proxy off
    attributes: tuple[tuple[str, int], ...] = ()
    # Whether it stops all traffic: then it lasts until the broker has dropped the consumers
    # (their session timed out); otherwise the services must work through it.
    severs: bool = True
    # Whether it also lasts until the outbox's oldest unpublished event is older than the
    # outbox relay's delivery timeout: the relay has given up on the producer that had it.
    outlasts_delivery: bool = False


SWALLOW = Fault("timeout", "timeout", (("timeout", 0),))  # holds every byte, never closes
FAULTS = [
    Fault("latency", "latency", (("latency", 500), ("jitter", 200)), severs=False),
    Fault("bandwidth", "bandwidth", (("rate", 32),), severs=False),  # KB/s
    Fault("cut"),
    Fault("reset_peer", "reset_peer", (("timeout", 0),)),
    SWALLOW,
]
if ROUNDS > 1:
    FAULTS.append(replace(SWALLOW, name="timeout past delivery", outlasts_delivery=True))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> KafkaCluster:
    cluster = KafkaCluster(tmp_path_factory.mktemp("kafka-proxied"), ensure_jars(REPO / ".cache"),
                           brokers=1, controllers=1, proxied=True)
    cluster.start()
    try:
        ensure_topics(cluster.bootstrap_servers)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def toxiproxy(cluster, tmp_path_factory) -> Toxiproxy:
    if not TOXIPROXY.is_file():
        pytest.fail(f"{TOXIPROXY} is missing; build it with `make toxiproxy`")
    proxy = Toxiproxy(tmp_path_factory.mktemp("toxiproxy") / "toxiproxy.log")
    try:
        for node, (listen, upstream) in cluster.proxy_ports.items():
            proxy.create_proxy(f"kafka-{node}", listen, upstream)
        yield proxy
    finally:
        proxy.stop()


def inject(toxiproxy: Toxiproxy, cluster: KafkaCluster, fault: Fault) -> None:
    """Puts the fault on every broker's proxy; toxiproxy.reset() takes it away."""
    for node in cluster.proxy_ports:
        if fault.toxic is None:
            toxiproxy.set_enabled(f"kafka-{node}", False)
        else:
            toxiproxy.add_toxic(f"kafka-{node}", fault.toxic, dict(fault.attributes))


@pytest.fixture(scope="module")
def services(cluster, toxiproxy, database_url, tmp_path_factory):
    """The drafting service and the task engine, reaching Kafka through the proxy only."""
    folder = tmp_path_factory.mktemp("services")
    with own_database(database_url, "network_faults") as database, ExitStack() as stack:
        running = {name: stack.enter_context(running_service(
            name, cluster.proxied_bootstrap_servers, database, folder))
            for name in ("drafting", "communication")}
        # A consumer still starting when a fault comes gives up (Faust does not retry its
        # first connection): the faults are for services that were up.
        for group in GROUPS:
            eventually(lambda: members(cluster.bootstrap_servers, group) > 0,
                       timeout=RECOVERY_TIMEOUT_S, interval=0.5, what=f"group {group} joined")
        yield running


def members(bootstrap: str, group: str) -> int:
    """The group's members; none while its coordinator is not there yet (a new cluster)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return len(admin.describe_groups([group])[group]["members"])
    except CoordinatorNotAvailableError:
        return 0
    finally:
        admin.close()


def metric(metrics_port: int, name: str) -> float:
    """A service's metric without labels, from its /metrics endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
        lines = r.read().decode().splitlines()
    return next(float(line.split()[1]) for line in lines if line.startswith(f"{name} "))


def intake_event(bootstrap: str) -> str:
    """Produces a draft straight to the intake topic, as a drafting system does; returns its
    regulation id. Once accepted, the drafting service republishes it on policy.drafting.v1."""
    regulation_id = f"net-{uuid.uuid4().hex[:12]}"
    event = new_event(drafting_events.DraftRegistered(
        regulation_id=regulation_id, title=TITLE, lead_agency_id="bnnmt",
        regulation_type=common_pb2.REGULATION_TYPE_DECREE,
        impact_level=common_pb2.IMPACT_LEVEL_LOW), "urn:vbpl:bnnmt")
    producer = create_producer(bootstrap, client_id="faults-intake")
    try:
        publish(producer, INTAKE_TOPIC, event).get(timeout=60)
    finally:
        producer.close()
    return regulation_id


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_services_recover_by_themselves(fault, cluster, toxiproxy, services, announce):
    direct = cluster.bootstrap_servers
    drafting = services["drafting"]
    registrations = Registrations(drafting)
    try:
        inject(toxiproxy, cluster, fault)
        for _ in range(DRAFTS_PER_FAULT):
            registrations.register()  # gRPC does not need Kafka: the outbox keeps the events
        expected = [*registrations.acknowledged, intake_event(direct)]
        if fault.severs:
            for group in GROUPS:
                eventually(lambda: members(direct, group) == 0, timeout=RECOVERY_TIMEOUT_S,
                           interval=1, what=f"the broker dropping group {group}'s members")
        else:
            audit_registrations(direct, expected)  # slowed down, not stopped
        if fault.outlasts_delivery:
            # What the PolicyOutboxStuck alert watches, too.
            eventually(lambda: metric(drafting.metrics_port, "policy_outbox_oldest_unsent_seconds")
                       > DELIVERY_TIMEOUT_S, timeout=DELIVERY_TIMEOUT_S + RECOVERY_TIMEOUT_S,
                       interval=1, what="outbox events older than the delivery timeout")
    finally:
        toxiproxy.reset()
        registrations.close()

    def state() -> str:
        groups = "; ".join(f"group {group}: {members(direct, group)} member(s), "
                           f"{group_lag(direct, group, topic)} behind on {topic}"
                           for group, topic in GROUPS.items())
        outbox = ", ".join(f"{name} {metric(drafting.metrics_port, name)}" for name in (
            "policy_outbox_backlog", "policy_outbox_oldest_unsent_seconds"))
        return f"{expected[-1]} came by {INTAKE_TOPIC}; {groups}; drafting's {outbox}"

    with waits_on_failure(services, state):
        found = audit_registrations(direct, expected)
        for group, topic in GROUPS.items():
            eventually(lambda: members(direct, group) > 0 and group_lag(direct, group, topic) == 0,
                       timeout=RECOVERY_TIMEOUT_S, interval=1,
                       what=f"group {group} rejoined and caught up on {topic}")
        eventually(lambda: metric(drafting.metrics_port, "policy_outbox_backlog") == 0,
                   timeout=RECOVERY_TIMEOUT_S, what="the outbox drained")
        for name, service in services.items():
            assert service.process.poll() is None, f"{name} exited"
            assert health_status(service.grpc_target) == health_pb2.HealthCheckResponse.SERVING
    announce(figures(f"network fault {fault.name}", acknowledged=len(expected), **found))
    assert found == {"registered": len(expected), "duplicates": 0}


async def test_the_outbox_relay_replaces_a_producer_that_gave_up(cluster, toxiproxy, database_url,
                                                                 schema_name, announce):
    """Run last: its fault reaches the services too. A batch Kafka does not acknowledge within
    the relay's delivery timeout fails; the relay drops that producer (an idempotent producer
    would retry it for ever) and goes on with a new one once the network is back."""
    topic = TopicSpec(name=f"faults.relay.{uuid.uuid4().hex[:8]}", partitions=1,
                      replication_factor=1, min_insync_replicas=1, retention_ms=-1,
                      cleanup_policy="delete", description="")
    ensure_topics(cluster.bootstrap_servers, Declaration({}, {}, {}), [topic])
    await db.migrate(database_url, schema_name, [])
    pool = await db.create_pool(database_url, schema_name)
    # Timeouts of seconds rather than minutes: the state is the same, reached sooner.
    relay = OutboxRelay(pool, functools.partial(
        create_relay_producer, cluster.proxied_bootstrap_servers, client_id="faults-relay",
        request_timeout_ms=3000), schema_name, delivery_timeout_s=8)

    async def write(title: str) -> None:
        event = new_event(drafting_events.DraftRevised(regulation_id="relay", title=title),
                          "urn:faults")
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, topic.name, event)

    async def publish() -> int:
        return await asyncio.wait_for(relay.publish_batch(), RECOVERY_TIMEOUT_S)

    try:
        await write("before")
        assert await publish() == 1
        await write("during")
        inject(toxiproxy, cluster, SWALLOW)
        try:
            with pytest.raises(TimeoutError):
                await publish()
        finally:
            toxiproxy.reset()
        await write("after")
        assert await publish() == 2  # "during" again, and "after"
    finally:
        await relay.close()
        await pool.close()

    def titles(records) -> list[str]:
        return [drafting_events.DraftRevised.FromString(r.value).title for r in records]

    published = titles(read_topic(cluster.bootstrap_servers, [topic.name],
                                  lambda records: "after" in titles(records)))
    announce(figures("outbox relay after its producer gave up", published=len(published)))
    # "during" may be there twice: the broker may have written the copy the producer gave up on.
    assert list(dict.fromkeys(published)) == ["before", "during", "after"]
