"""A local multi-node Apache Kafka cluster (KRaft) for fault tests: controllers and brokers as
separate processes, each started, cleanly stopped, hard-killed or bounced on its own.

Controllers and brokers are separate processes (not combined nodes) so that losing brokers does
not cost the controller quorum: with two of three brokers down, the controllers still fence
them and shrink the in-sync replica sets, and the remaining leader refuses acks=all writes with
NOT_ENOUGH_REPLICAS, as a production cluster does. Each node is a deploy.local.kafka_broker
KafkaBroker (jars, storage format, launch, ApiVersions readiness, clean stop) with this
cluster's properties."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator

from kafka.admin import KafkaAdminClient

from deploy.local.kafka_broker import KafkaBroker, _new_cluster_id, free_port

BROKER_HEAP = "384m"
# A controller only keeps the metadata log of a few hundred partitions.
CONTROLLER_HEAP = "192m"
FIRST_CONTROLLER_ID = 101  # node ids are one namespace; brokers are 1, 2, 3, ...


class KafkaNode(KafkaBroker):
    """One process of the cluster. Its config is the cluster's `properties` for it; readiness
    is the ApiVersions answer on `port` (the broker listener, or the controller listener)."""

    def __init__(self, node_id: int, data_dir: Path, port: int, properties: dict[str, str],
                 jars_dir: Path, heap: str):
        # KafkaBroker reads its controller_port only to write a config; this class writes its own.
        super().__init__(data_dir, port, port, jars_dir, heap=heap)
        self.node_id = node_id
        self.properties = properties

    def _write_config(self) -> None:
        self._config.write_text("".join(f"{k}={v}\n" for k, v in self.properties.items()))

    def kill(self) -> None:
        """SIGKILL: no controlled shutdown, no flush, as when a machine's process dies."""
        pid = self._pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._wait_exit(30)
        self._pid_file.unlink(missing_ok=True)
        self._proc = None

    def quorum_state(self) -> dict:
        """A controller's view of the quorum (leaderId, leaderEpoch), as it last wrote it."""
        path = self.data_dir / "logs" / "__cluster_metadata-0" / "quorum-state"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}


class KafkaCluster:
    """`controllers` KRaft controllers (one quorum) and `brokers` brokers on free ports, each
    in its own folder below `data_dir`. Replication defaults follow the platform's topics:
    replication 3 and min.insync.replicas 2, capped at the broker count.

    With `proxied`, each broker also listens on `proxied_listener_port` and advertises
    `proxy_port` for that listener: a TCP proxy listening on proxy_port and forwarding to
    proxied_listener_port then carries every connection of clients that bootstrap from
    `proxied_bootstrap_servers`, while `bootstrap_servers` stays direct."""

    def __init__(self, data_dir: Path, jars_dir: Path, *, brokers: int = 3, controllers: int = 3,
                 proxied: bool = False, broker_heap: str = BROKER_HEAP,
                 controller_heap: str = CONTROLLER_HEAP):
        self.data_dir = Path(data_dir).resolve()
        self.proxy_ports: dict[int, tuple[int, int]] = {}  # broker -> (proxy, proxied listener)
        controller_ports = {FIRST_CONTROLLER_ID + i: free_port() for i in range(controllers)}
        voters = ",".join(f"{n}@127.0.0.1:{port}" for n, port in controller_ports.items())
        self.controllers: dict[int, KafkaNode] = {}
        for n, port in controller_ports.items():
            folder = self.data_dir / f"controller-{n}"
            self.controllers[n] = KafkaNode(n, folder, port, {
                **self._common_properties(n, "controller", voters, folder),
                "listeners": f"CONTROLLER://127.0.0.1:{port}",
                "listener.security.protocol.map": "CONTROLLER:PLAINTEXT"},
                jars_dir, controller_heap)
        self.brokers: dict[int, KafkaNode] = {}
        for n in range(1, brokers + 1):
            if proxied:
                self.proxy_ports[n] = (free_port(), free_port())
            folder, port = self.data_dir / f"broker-{n}", free_port()
            self.brokers[n] = KafkaNode(n, folder, port, {
                **self._common_properties(n, "broker", voters, folder),
                **self._broker_properties(n, port, brokers)}, jars_dir, broker_heap)

    @staticmethod
    def _common_properties(node_id: int, roles: str, voters: str, folder: Path) -> dict[str, str]:
        return {
            "node.id": str(node_id),
            "process.roles": roles,
            "controller.quorum.voters": voters,
            "controller.listener.names": "CONTROLLER",
            "log.dirs": str(folder / "logs"),
            # Six JVMs share two cores here: a few threads each are plenty.
            "num.network.threads": "2",
            "num.io.threads": "2",
        }

    def _broker_properties(self, node_id: int, port: int, brokers: int) -> dict[str, str]:
        replication, min_isr = str(min(3, brokers)), str(min(2, brokers))
        listeners, advertised = [f"PLAINTEXT://127.0.0.1:{port}"], [f"PLAINTEXT://127.0.0.1:{port}"]
        if node_id in self.proxy_ports:
            proxy, listener = self.proxy_ports[node_id]
            listeners.append(f"PROXIED://127.0.0.1:{listener}")
            advertised.append(f"PROXIED://127.0.0.1:{proxy}")
        return {
            "listeners": ",".join(listeners),
            "advertised.listeners": ",".join(advertised),
            "listener.security.protocol.map":
                "PLAINTEXT:PLAINTEXT,PROXIED:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "num.partitions": "3",
            "default.replication.factor": replication,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": replication,
            "transaction.state.log.replication.factor": replication,
            "transaction.state.log.min.isr": min_isr,
            # Kafka's default, stated because the fault tests rely on it: a replica that was
            # not in sync never becomes leader, so acknowledged records are never truncated.
            "unclean.leader.election.enable": "false",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
        }

    @property
    def nodes(self) -> dict[int, KafkaNode]:
        return {**self.controllers, **self.brokers}

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(b.bootstrap_servers for b in self.brokers.values())

    @property
    def proxied_bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{proxy}" for proxy, _ in self.proxy_ports.values())

    def start(self, timeout: float = 180) -> None:
        """Starts every node that is not running and waits until every broker is registered
        and unfenced."""
        cluster_id = self.data_dir / "cluster.id"
        if not cluster_id.is_file():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            cluster_id.write_text(_new_cluster_id() + "\n")
        for node in self.nodes.values():
            # KafkaBroker formats its storage with the id it finds here: one id for all.
            node.data_dir.mkdir(parents=True, exist_ok=True)
            (node.data_dir / "cluster.id").write_text(cluster_id.read_text())
        try:
            # All at once: a broker becomes ready only once the quorum answers anyway.
            self._on_each(lambda node: node.start(timeout), self.nodes.values())
            self.wait_for(lambda: self.registered_brokers() == set(self.brokers), timeout,
                          "every broker registered")
        except BaseException:
            self.stop()  # a cluster that did not come up leaves no JVM behind
            raise

    def stop(self) -> None:
        """Stops every node cleanly, brokers first (a controlled shutdown needs the quorum)."""
        self._on_each(KafkaNode.stop, self.brokers.values())
        self._on_each(KafkaNode.stop, self.controllers.values())

    @staticmethod
    def _on_each(action: Callable[[KafkaNode], None], nodes: Iterable[KafkaNode]) -> None:
        """Runs the action on every node at once; the JVMs take seconds to start and stop."""
        nodes = list(nodes)
        with ThreadPoolExecutor(len(nodes)) as pool:
            list(pool.map(action, nodes))

    def start_node(self, node_id: int, timeout: float = 180) -> None:
        """Starts one node; a broker is back once the controllers count it as unfenced."""
        self.nodes[node_id].start(timeout)
        if node_id in self.brokers:
            self.wait_for(lambda: node_id in self.registered_brokers(), timeout,
                          f"broker {node_id} registered")

    def stop_node(self, node_id: int) -> None:
        """Clean shutdown (SIGTERM): a broker first hands its leaderships over."""
        self.nodes[node_id].stop()

    def kill_node(self, node_id: int) -> None:
        """Hard shutdown (SIGKILL)."""
        self.nodes[node_id].kill()

    def bounce(self, node_id: int, *, hard: bool = False) -> None:
        """Stops (cleanly, or with SIGKILL when `hard`) and starts the node again at once."""
        (self.kill_node if hard else self.stop_node)(node_id)
        self.start_node(node_id)

    def running(self) -> set[int]:
        return {n for n, node in self.nodes.items() if node.is_running()}

    @contextlib.contextmanager
    def admin(self) -> Iterator[KafkaAdminClient]:
        client = KafkaAdminClient(bootstrap_servers=self.bootstrap_servers,
                                  client_id="kafka-cluster", request_timeout_ms=10_000)
        try:
            yield client
        finally:
            client.close()

    def registered_brokers(self) -> set[int]:
        """Brokers the cluster's metadata lists (registered and not fenced)."""
        with self.admin() as admin:
            return {b["broker_id"] for b in admin.describe_cluster()["brokers"]}

    def partitions(self, topics: list[str] | None = None) -> list[dict]:
        """Every partition of the topics (of all topics by default): partition_index,
        leader_id, replica_nodes, isr_nodes."""
        with self.admin() as admin:
            return [p for t in admin.describe_topics(topics) for p in t["partitions"]]

    def leader_of_most(self, topics: list[str]) -> int:
        """The broker that leads most partitions of the topics."""
        leaders = Counter(p["leader_id"] for p in self.partitions(topics) if p["leader_id"] >= 0)
        return leaders.most_common(1)[0][0]

    def in_sync(self, topics: list[str] | None = None) -> bool:
        """True when every partition of the topics (of all by default) has a leader and all
        its replicas in sync."""
        return all(p["leader_id"] >= 0 and set(p["isr_nodes"]) == set(p["replica_nodes"])
                   for p in self.partitions(topics))

    def active_controller(self) -> int | None:
        """The quorum leader of the highest epoch any running controller knows of."""
        states = [c.quorum_state() for c in self.controllers.values() if c.is_running()]
        known = [s for s in states if s.get("leaderId", -1) >= 0]
        if not known:
            return None
        return max(known, key=lambda s: s["leaderEpoch"])["leaderId"]

    @staticmethod
    def wait_for(check: Callable[[], object], timeout: float, what: str) -> None:
        """Polls check() until it is true; raises after `timeout` seconds. Failures of the
        check itself (a broker not answering yet) count as not yet."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if check():
                    return
            except Exception:  # a client error while nodes come and go
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"Kafka cluster: no {what} after {timeout}s")
            time.sleep(0.5)

