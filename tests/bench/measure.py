"""What the benchmarks measure with and against: a broker and a PostgreSQL server, progress
watched on a topic, resident memory sampled while a process is in use, latency percentiles."""

from __future__ import annotations

import json
import statistics
import time
import threading
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable, Iterator

import psutil
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import CoordinatorNotAvailableError
from prometheus_client.parser import text_string_to_metric_families

from deploy.local.kafka_broker import KafkaBroker, ensure_jars, free_port
from deploy.local.postgres_server import PostgresServer
from policykit.topics import ensure_topics
from tests.support import REPO


@contextmanager
def broker_and_database(workdir: Path) -> Iterator[tuple[str, str]]:
    """A Kafka broker with the declared topics and a PostgreSQL server, in `workdir` on free
    ports; yields the bootstrap servers and the database URL."""
    broker = KafkaBroker(workdir / "kafka", free_port(), free_port(),
                         ensure_jars(REPO / ".cache"), heap="1g")
    database = PostgresServer(workdir / "postgres", free_port())
    with ExitStack() as stack:
        # Stopped even when interrupted while starting; stopping what never ran does nothing.
        stack.callback(broker.stop)
        broker.start()
        stack.callback(database.stop)
        database.start()
        ensure_topics(broker.bootstrap_servers)
        yield broker.bootstrap_servers, database.url


def watch_topic(bootstrap: str, topic: str, records: int, *, after: int = 0,
                timeout: float = 900) -> tuple[float, float]:
    """Waits until the topic holds `records` records (the sum of its partitions' end offsets,
    asked every 50 ms by one consumer); returns when it first held more than `after` and when
    it held them all (time.perf_counter). The platform publishes an event only once the
    transaction that made it committed, so the topic tells how far it got without counting
    rows in the database being measured (a count scans a growing table: it loaded the server
    it measured)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        first, deadline = None, time.monotonic() + timeout
        while True:
            held = sum(consumer.end_offsets(partitions).values())
            now = time.perf_counter()
            if first is None and held > after:
                first = now
            if held >= records:
                return first, now
            if time.monotonic() > deadline:
                raise RuntimeError(f"{held} of {records} records on {topic} after {timeout}s")
            time.sleep(0.05)
    finally:
        consumer.close()


def wait_for_group(bootstrap: str, group: str, members: int, timeout: float = 120) -> None:
    """Waits until the consumer group is stable with `members` members, so that what is then
    measured runs with every member's partitions assigned rather than through a rebalance."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                found = admin.describe_groups([group])[group]
                if (found.get("group_state") == "Stable"
                        and len(found.get("members") or ()) == members):
                    return
            except CoordinatorNotAvailableError:  # the group's coordinator is being elected
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"consumer group {group} not stable with {members} members "
                                   f"after {timeout}s")
            time.sleep(0.5)
    finally:
        admin.close()


def event_loop_lag(metrics_port: int) -> dict[float, float]:
    """A service's policy_event_loop_lag_seconds as its cumulative buckets (upper bound →
    samples at most that late), read from its /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as page:
        text = page.read().decode()
    return {float(sample.labels["le"]): sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "policy_event_loop_lag_seconds"
            for sample in family.samples if sample.name.endswith("_bucket")}


def lag_between(before: dict[float, float], after: dict[float, float]) -> dict[str, float]:
    """The p50 and p99 of the lag samples taken between two readings, each as the bucket
    bound it is at most, in ms (None: beyond the last bound)."""
    counts = sorted((bound, after[bound] - before.get(bound, 0.0)) for bound in after)
    total = counts[-1][1]

    def at_most(share: float) -> float | None:
        bound = next(bound for bound, count in counts if count >= share * total)
        return None if bound == float("inf") else bound * 1000

    return {"samples": int(total), "p50_ms_at_most": at_most(0.5),
            "p99_ms_at_most": at_most(0.99)}


def _sample_rss(pid: int, stop: threading.Event, samples: list[int]) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        try:
            samples.append(process.memory_info().rss)
        except psutil.Error:
            return
        stop.wait(0.2)


class Sampler:
    """A process's resident memory, sampled five times a second while in use."""

    def __init__(self, pid: int):
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=_sample_rss, args=(pid, self._stop, self.samples),
                                        daemon=True)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return max(self.samples, default=0) / 2**20


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50": statistics.median(ordered),
            "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
            "calls": len(ordered)}


def write_results(results: dict, path: Path) -> None:
    """Writes a benchmark's results as JSON, Vietnamese text left readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"written to {path}")


def run_timed(run: Callable[[], dict], show: Callable[[dict], None], path: Path) -> None:
    """Runs a benchmark, adds its wall-clock time to its results, shows and writes them."""
    started = time.monotonic()
    results = run()
    results["wall_clock_s"] = round(time.monotonic() - started)
    show(results)
    write_results(results, path)
