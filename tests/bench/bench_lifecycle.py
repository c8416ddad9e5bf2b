"""Lifecycle benchmark: `python -m tests.bench.bench_lifecycle` (PYTHONPATH=.:gen/python:libs).

Starts a Kafka broker and a PostgreSQL server of its own (free ports, a temporary directory)
and the communication service (the task engine) as a subprocess, then measures:

- saturated throughput: N lifecycle events wait on the topics while the service is stopped —
  DraftRegistered for N/2 distinct regulations (Vietnamese titles, one to four affected
  provinces, pre-2025 codes among them; two in three of large impact), an ImpactAssessed for
  every third of them on policy.drafting.v1, and a ConsultationOpened for the rest on
  policy.consultation.v1. The service is started and timed from the first event it applies
  until every event is in its inbox, every task the playbook gives them (planned here with the
  service's own planner) is stored, and as many TaskCreated records are on
  policy.communication.v1;
- latency at fixed offered loads: large-impact DraftRegistered events produced at a steady rate
  for a while each; an event's latency runs from its send to the first TaskCreated record of
  its regulation read from policy.communication.v1, and is split where that record's envelope
  tells: until the engine made the event (ce_time), until the relay published it (the
  record's timestamp), until it was read;
- both again with several replicas of the service (`--replicas`, default 2: the deployment's
  floor, `minReplicaCount` in k8s/components/keda), started beside the first and measured once
  their consumer group is stable: the saturated input is then produced while they run, rather
  than waiting for them (a member starting later would make the others stop for a
  rebalance);
- the service's resident memory, idle (started, nothing to do) and at its peak under load;
- in the same run, baselines on the same machine: aiokafka producing the TaskCreated records
  (the outbox relay's client, with its batch API) and aiokafka (Faust's client) reading those
  the service emitted (the input records are too few to time at small sizes: they fit in one
  fetch);
  asyncpg inserting the same task rows one by one and by COPY into a copy of the tasks table;
  and the produce-to-consume latency of raw aiokafka at the same offered loads. Each platform
  figure is printed with its ratio to its baseline.

Results go to stdout and to tests/bench/results/lifecycle.json. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from policy.common.v1 import common_pb2 as common
from policy.communication.v1 import events_pb2 as task_events
from policy.communication.v1 import task_pb2
from policy.consultation.v1 import events_pb2 as consultation
from policy.drafting.v1 import events_pb2 as drafting
from policykit.envelope import Event, new_event, to_record
from policykit.reference import default as reference_data
from services.communication import playbook
from services.communication.handlers import CONSUMER, SOURCE, regulation_from_draft
from services.communication.planner import plan
from tests.bench.baselines import aiokafka_consume_rate, aiokafka_produce_rate, create_topic
from tests.bench.measure import (Sampler, broker_and_database, event_loop_lag, lag_between,
                                 run_timed, wait_for_group, watch_topic)
from tests.support import idle_rss_mb, start_service, topic_size

RESULTS = Path(__file__).with_name("results") / "lifecycle.json"
DRAFTING_TOPIC = "policy.drafting.v1"
CONSULTATION_TOPIC = "policy.consultation.v1"
TASK_TOPIC = "policy.communication.v1"
TARGETS = {"saturated_events_per_s": 3_000, "p99_ms_at_200_per_s": 100}

KINDS = [(common.REGULATION_TYPE_LAW, "Luật"), (common.REGULATION_TYPE_DECREE, "Nghị định"),
         (common.REGULATION_TYPE_CIRCULAR, "Thông tư"),
         (common.REGULATION_TYPE_NATIONAL_ASSEMBLY_RESOLUTION, "Nghị quyết")]
SUBJECTS = ["Đất đai", "Giáo dục nghề nghiệp", "Bảo hiểm xã hội", "Phòng, chống thiên tai",
            "Thuế thu nhập cá nhân", "An toàn thực phẩm", "Giao thông đường bộ", "Tài nguyên nước",
            "Khám bệnh, chữa bệnh", "Thủy sản", "Lâm nghiệp", "Đầu tư công", "Nhà ở xã hội",
            "Biển và hải đảo", "Bảo vệ môi trường", "Chuyển đổi số cấp xã"]
SHAPES = ["{kind} {subject} (sửa đổi)", "{kind} quy định chi tiết thi hành Luật {subject}",
          "{kind} hướng dẫn về {subject} tại vùng đồng bào dân tộc thiểu số",
          "{kind} sửa đổi, bổ sung một số điều về {subject}"]
GROUPS = ["nong-dan", "doanh-nghiep-nho", "ngu-dan", "hoc-sinh-sinh-vien", "nguoi-cao-tuoi",
          "dong-bao-dan-toc-thieu-so", "nguoi-lao-dong"]
# Pre-2025 codes (Hà Giang, Cao Bằng, Quảng Ninh, Kiên Giang) beside units in force.
OLD_CODES = ["02", "04", "22", "91"]

Record = tuple[str, bytes, bytes, list]  # topic, key, value, headers


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def latency_summary(samples: list[float], sent: int) -> dict:
    ordered = sorted(samples)
    return {"events": sent, "answered": len(ordered),
            "p50_ms": round(percentile(ordered, 0.5), 1) if ordered else None,
            "p99_ms": round(percentile(ordered, 0.99), 1) if ordered else None,
            "max_ms": round(ordered[-1], 1) if ordered else None}


# ---- the input ------------------------------------------------------------------------------

class Lifecycles:
    """Drafting-stage events for many distinct regulations, and the tasks they should give."""

    def __init__(self, seed: int = 7):
        self.rng = random.Random(seed)
        self.reference = reference_data()
        self.playbook = playbook.load(playbook.DEFAULT_PATH, self.reference)
        today = datetime.now(timezone.utc).date()
        self.provinces = [p.id for p in self.reference.provinces_in_force(today)] + OLD_CODES
        self.agencies = [a.id for a in self.reference.agencies_in_force(today)] + ["btnmt"]

    def draft(self, large: bool) -> Event:
        rng = self.rng
        type_, kind = rng.choice(KINDS)
        payload = drafting.DraftRegistered(
            regulation_id=f"reg-{uuid.UUID(int=rng.getrandbits(128))}", regulation_type=type_,
            title=rng.choice(SHAPES).format(kind=kind, subject=rng.choice(SUBJECTS)),
            summary="Dự thảo nhằm hoàn thiện thể chế, bảo đảm quyền và lợi ích hợp pháp của"
                    " người dân, doanh nghiệp.",
            lead_agency_id=rng.choice(self.agencies),
            impact_level=common.IMPACT_LEVEL_HIGH if large else rng.choice(
                (common.IMPACT_LEVEL_MEDIUM, common.IMPACT_LEVEL_LOW)),
            affected_groups=rng.sample(GROUPS, rng.randint(1, 3)),
            affected_province_codes=rng.sample(self.provinces, rng.randint(1, 4)), version=1)
        now = datetime.now(timezone.utc)
        payload.planned_consultation_start.FromDatetime(now + timedelta(days=rng.randint(20, 60)))
        payload.planned_adoption.FromDatetime(now + timedelta(days=rng.randint(120, 300)))
        return new_event(payload, "policy/drafting")

    def saturation(self, count: int) -> tuple[list[Record], int]:
        """`count` events over count/2 regulations, and the number of tasks they give."""
        records, tasks = [], 0
        for number in range(count // 2):
            draft = self.draft(large=number % 3 != 2)
            regulation = regulation_from_draft(draft.payload)
            if number % 3 == 0:
                follow = new_event(drafting.ImpactAssessed(
                    regulation_id=draft.regulation_id, impact_level=regulation.impact_level,
                    assessment_summary="Đánh giá tác động đã được Hội đồng thẩm định thông qua."),
                    "policy/drafting")
                topic = DRAFTING_TOPIC
            else:
                opened = consultation.ConsultationOpened(
                    regulation_id=draft.regulation_id, consultation_id=str(uuid.uuid4()))
                opened.opens_at.FromDatetime(datetime.now(timezone.utc))
                opened.closes_at.FromDatetime(datetime.now(timezone.utc) + timedelta(days=60))
                follow = new_event(opened, "policy/consultation")
                topic = CONSULTATION_TOPIC
            for event, on in ((draft, DRAFTING_TOPIC), (follow, topic)):
                records.append((on, *to_record(event)))
                tasks += len(plan(self.playbook, event, regulation, self.reference))
        return records, tasks

    def task_rows(self, count: int) -> list[tuple]:
        """Rows shaped like the service's tasks, for the asyncpg baselines."""
        rows, now = [], datetime.now(timezone.utc)
        while len(rows) < count:
            event = self.draft(large=True)
            for task in plan(self.playbook, event, regulation_from_draft(event.payload),
                             self.reference):
                rows.append((uuid.UUID(task.task_id), event.regulation_id, event.id, event.type,
                             task.rule_id, self.playbook.version, task.kind, task.title,
                             task.channel, task.owner_org_id, task.audience,
                             list(task.region_ids), task.due_at, task.priority, 1, now, now))
        return rows[:count]

    def task_records(self, count: int) -> list[tuple[bytes, bytes, list]]:
        """TaskCreated records as the service emits them, for the Kafka baselines."""
        records = []
        while len(records) < count:
            event = self.draft(large=True)
            for task in plan(self.playbook, event, regulation_from_draft(event.payload),
                             self.reference):
                stored = task_pb2.Task(
                    task_id=task.task_id, regulation_id=event.regulation_id,
                    trigger_event_id=event.id, playbook_rule=task.rule_id,
                    playbook_version=self.playbook.version, kind=task.kind, title=task.title,
                    channel=task.channel, owner_org_id=task.owner_org_id, audience=task.audience,
                    region_ids=task.region_ids, priority=task.priority, status=1)
                stored.due_at.FromDatetime(task.due_at)
                records.append(to_record(new_event(
                    task_events.TaskCreated(regulation_id=event.regulation_id, task=stored),
                    SOURCE)))
        return records[:count]


# ---- Kafka ----------------------------------------------------------------------------------

async def produce_all(bootstrap: str, records: list[Record]) -> float:
    """Produces the records (each to its key's partition); returns records per second."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                max_batch_size=512 * 1024)
    await producer.start()
    try:
        started = time.perf_counter()
        deliveries = [await producer.send(topic, value, key=key, headers=headers)
                      for topic, key, value, headers in records]
        await asyncio.gather(*deliveries)
        return len(records) / (time.perf_counter() - started)
    finally:
        await producer.stop()


# The parts of an answer's latency, in the order _split returns them.
STAGES = ("sent_to_made", "made_to_published", "published_to_read")


# The width of the windows of sending time over which a load's p50 is also given: a p50 that
# climbs from one window to the next is a service falling behind; one that stays flat with a
# high p99, a service with pauses.
WINDOW_S = 5.0


def _p50_by_window(sent: list[float], latencies: list[float], started: float) -> list[float]:
    """The p50 latency (ms) of the answers to the events sent in each WINDOW_S of the load."""
    windows: dict[int, list[float]] = {}
    for sent_s, latency in zip(sent, latencies):
        windows.setdefault(int((sent_s - started) // WINDOW_S), []).append(latency)
    return [round(percentile(sorted(windows[n]), 0.5), 1) for n in sorted(windows)]


def _split(sent_s: float, record, read_s: float) -> tuple[float, float, float]:
    """Where an answer's latency went (ms), as its envelope tells: until the engine made its
    event (`ce_time`), until the relay's producer took its record (the record's timestamp),
    until it was read. All three clocks are this machine's."""
    made_s = datetime.fromisoformat(dict(record.headers)["ce_time"].decode()).timestamp()
    published_s = record.timestamp / 1000
    return (1000 * (made_s - sent_s), 1000 * (published_s - made_s),
            1000 * (read_s - published_s))


async def offered_load(bootstrap: str, records: list[Record], rate: int, answer_topic: str,
                       grace_s: float = 30, split: bool = False) -> dict:
    """Sends the records at `rate` a second; an event's latency runs from its send until the
    first record with its key is read from `answer_topic` (read from its end, no group). With
    `split`, the latency of each answer (a TaskCreated) is also divided at the moments its
    event was made and its record published (`_split`)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    sent_at: dict[bytes, tuple[float, float]] = {}  # perf_counter and wall clock
    latencies: list[float] = []
    sent_then: list[float] = []  # each answer's send, perf_counter
    stages: list[tuple[float, float, float]] = []
    try:
        partitions = [TopicPartition(answer_topic, p)
                      for p in await producer.partitions_for(answer_topic)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:  # resolve the end offsets before anything is sent
            await consumer.position(partition)

        async def read() -> None:
            while True:
                batches = await consumer.getmany(timeout_ms=100)
                now, wall = time.perf_counter(), time.time()
                for batch in batches.values():
                    for record in batch:
                        sent = sent_at.pop(record.key, None)
                        if sent is not None:
                            latencies.append(1000 * (now - sent[0]))
                            sent_then.append(sent[0])
                            if split:
                                stages.append(_split(sent[1], record, wall))

        reader = asyncio.ensure_future(read())
        started = time.perf_counter()
        for number, (topic, key, value, headers) in enumerate(records):
            delay = started + number / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent_at[key] = (time.perf_counter(), time.time())
            await producer.send(topic, value, key=key, headers=headers)
        deadline = time.perf_counter() + grace_s
        while sent_at and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        reader.cancel()
        return {"offered_per_s": rate,
                "achieved_per_s": round(len(records) / (time.perf_counter() - started), 1)
                if not sent_at else None,
                **latency_summary(latencies, len(records)),
                "p50_ms_by_window": _p50_by_window(sent_then, latencies, started),
                **({"split_ms": {stage: latency_summary([times[n] for times in stages],
                                                        len(records))
                                 for n, stage in enumerate(STAGES)}}
                   if split else {})}
    finally:
        await producer.stop()
        await consumer.stop()


# ---- PostgreSQL -----------------------------------------------------------------------------

TASK_ROW_COLUMNS = ("task_id", "regulation_id", "trigger_event_id", "trigger_event_type",
                    "playbook_rule", "playbook_version", "kind", "title", "channel",
                    "owner_org_id", "audience", "region_ids", "due_at", "priority", "status",
                    "created_at", "updated_at")


async def asyncpg_rates(database_url: str, rows: list[tuple]) -> dict[str, float]:
    """Task rows per second into a copy of the tasks table (its indexes, no foreign key): one
    INSERT per row in transactions of 500 rows, and COPY of the same batches."""
    conn = await asyncpg.connect(database_url)
    batches = [rows[i:i + 500] for i in range(0, len(rows), 500)]
    insert = (f"INSERT INTO bench_tasks ({', '.join(TASK_ROW_COLUMNS)}) VALUES "
              f"({', '.join(f'${n}' for n in range(1, len(TASK_ROW_COLUMNS) + 1))})")
    rates = {}
    try:
        for name in ("row_insert", "copy"):
            await conn.execute("DROP TABLE IF EXISTS bench_tasks")
            await conn.execute("CREATE TABLE bench_tasks (LIKE communication.tasks INCLUDING ALL)")
            started = time.perf_counter()
            for batch in batches:
                async with conn.transaction():
                    if name == "copy":
                        await conn.copy_records_to_table("bench_tasks", records=batch,
                                                         columns=TASK_ROW_COLUMNS)
                    else:
                        for row in batch:
                            await conn.execute(insert, *row)
            rates[name] = len(rows) / (time.perf_counter() - started)
        await conn.execute("DROP TABLE bench_tasks")
    finally:
        await conn.close()
    return rates


async def count_progress(database_url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(database_url)
    try:
        return (await conn.fetchval("SELECT count(*) FROM communication.inbox"
                                    " WHERE consumer = $1", CONSUMER),
                await conn.fetchval("SELECT count(*) FROM communication.tasks"))
    finally:
        await conn.close()


def wait_applied(bootstrap: str, database_url: str, events: int, tasks: int, records: int,
                 after: int, timeout: float = 900) -> tuple[float, float]:
    """Waits until `records` TaskCreated are on the task topic (`after` were there before),
    then checks that `events` are in the inbox and `tasks` stored: a TaskCreated is published
    only after the transaction storing its task and its event's inbox row committed. Returns
    when the first new TaskCreated was seen and when all of them were (perf_counter)."""
    first, done = watch_topic(bootstrap, TASK_TOPIC, records, after=after, timeout=timeout)
    deadline = time.monotonic() + 60  # events that plan no task come with the others
    while True:
        handled, stored = asyncio.run(count_progress(database_url))
        if handled >= events and stored >= tasks:
            return first, done
        if time.monotonic() > deadline:
            raise RuntimeError(f"{records} TaskCreated published but {handled}/{events} "
                               f"events handled, {stored}/{tasks} tasks stored")
        time.sleep(0.1)


# ---- the run --------------------------------------------------------------------------------

def offered_loads(bootstrap: str, lifecycles: Lifecycles, loads: tuple[int, ...],
                  seconds: float, echo_topic: str | None,
                  metrics_port: int | None = None) -> dict[int, dict]:
    """Offers each load of large-impact drafts for `seconds`; with `echo_topic`, the same
    records through Kafka alone too, read back from that topic; with `metrics_port` (one
    replica), how late the service's event loop ran meanwhile."""
    latency = {}
    for rate in loads:
        print(f"offered load {rate}/s for {seconds:.0f} s …", flush=True)
        drafts = [(DRAFTING_TOPIC, *to_record(lifecycles.draft(large=True)))
                  for _ in range(int(rate * seconds))]
        lag_before = event_loop_lag(metrics_port) if metrics_port else None
        latency[rate] = {"service": asyncio.run(offered_load(bootstrap, drafts, rate, TASK_TOPIC,
                                                             split=True))}
        if lag_before is not None:
            latency[rate]["service"]["event_loop_lag"] = lag_between(
                lag_before, event_loop_lag(metrics_port))
        if echo_topic:
            latency[rate]["baseline_raw_kafka"] = asyncio.run(offered_load(
                bootstrap, [(echo_topic, *r[1:]) for r in drafts], rate, echo_topic))
    return latency


def measure_replicated(bootstrap: str, database_url: str, lifecycles: Lifecycles, events: int,
                       loads: tuple[int, ...], seconds: float) -> dict:
    """Saturated throughput and latency again, against the replicas now running: the input is
    produced while they run (their group is stable), and timed as in the first phase."""
    handled, stored = asyncio.run(count_progress(database_url))
    records, expected_tasks = lifecycles.saturation(events)
    print(f"saturated, replicated: {len(records):,} events, {expected_tasks:,} tasks …",
          flush=True)
    topic_before = topic_size(bootstrap, TASK_TOPIC)
    asyncio.run(produce_all(bootstrap, records))
    first, done = wait_applied(bootstrap, database_url, handled + len(records),
                               stored + expected_tasks, topic_before + expected_tasks,
                               topic_before)
    elapsed = done - first
    print(f"  {len(records) / elapsed:,.0f} events/s", flush=True)
    return {"saturated": {"events": len(records), "tasks": expected_tasks,
                          "seconds": round(elapsed, 2),
                          "events_per_s": round(len(records) / elapsed),
                          "tasks_per_s": round(expected_tasks / elapsed)},
            # The raw Kafka baselines are the first phase's, at the same loads.
            "latency": {str(rate): figures for rate, figures in
                        offered_loads(bootstrap, lifecycles, loads, seconds, None).items()}}


def run(events: int = 30_000, loads: tuple[int, ...] = (50, 200, 1000), seconds: float = 20,
        baseline_rows: int = 20_000, env: dict[str, str] | None = None,
        replicas: int = 2) -> dict:
    """Runs the whole benchmark at the given sizes; `env` adds to the service's environment."""
    load_before = os.getloadavg()
    lifecycles = Lifecycles()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-life-")))
        bootstrap, database_url = stack.enter_context(broker_and_database(workdir))
        echo_topic = create_topic(bootstrap)
        service_env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DATABASE_URL": database_url,
                       "LOG_LEVEL": "WARNING", **(env or {})}

        print("starting the service idle (migrations, consumer group) …", flush=True)
        service = start_service("services.communication", workdir, service_env)
        idle_rss = idle_rss_mb(service.process.pid)
        service.terminate()

        print(f"planning {events:,} lifecycle events …", flush=True)
        records, expected_tasks = lifecycles.saturation(events)
        topic_before = topic_size(bootstrap, TASK_TOPIC)
        produce_rate = asyncio.run(produce_all(bootstrap, records))

        print("baselines …", flush=True)
        task_records = lifecycles.task_records(baseline_rows)
        produce_baseline = asyncio.run(aiokafka_produce_rate(bootstrap, task_records))
        insert_rates = asyncio.run(asyncpg_rates(database_url, lifecycles.task_rows(
            baseline_rows)))

        print(f"saturated: {len(records):,} events, {expected_tasks:,} tasks …", flush=True)
        service = start_service("services.communication", workdir, service_env)
        stack.callback(service.terminate)
        with Sampler(service.process.pid) as memory:
            first, done = wait_applied(bootstrap, database_url, len(records), expected_tasks,
                                       topic_before + expected_tasks, topic_before)
            print(f"  {len(records) / (done - first):,.0f} events/s", flush=True)
            # The TaskCreated records just emitted: the input fits in a few fetches.
            consume_rate = asyncio.run(aiokafka_consume_rate(bootstrap, TASK_TOPIC,
                                                             expected_tasks))
            latency = offered_loads(bootstrap, lifecycles, loads, seconds, echo_topic,
                                    service.metrics_port)
        replicated = {}
        if replicas > 1:
            print(f"starting {replicas - 1} more replica(s) …", flush=True)
            for number in range(1, replicas):
                logs = workdir / f"replica-{number}"
                logs.mkdir()
                stack.callback(start_service("services.communication", logs,
                                             service_env).terminate)
            wait_for_group(bootstrap, CONSUMER, replicas)
            replicated = measure_replicated(bootstrap, database_url, lifecycles, events, loads,
                                            seconds)
        exit_code = service.terminate()

    elapsed = done - first
    per_s = len(records) / elapsed
    if replicated:
        replicated["replicas"] = replicas
        replicated["saturated"]["ratio_to_one_replica"] = round(
            replicated["saturated"]["events_per_s"] / per_s, 2)
    tasks_per_s = expected_tasks / elapsed
    return {
        "run_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "targets": TARGETS,
        "service_env": env or {},
        "saturated": {
            "events": len(records), "tasks": expected_tasks, "seconds": round(elapsed, 2),
            "events_per_s": round(per_s), "tasks_per_s": round(tasks_per_s),
            "input_produced_per_s": round(produce_rate),
            "baseline_aiokafka_consume_per_s": round(consume_rate),
            # None when the records fit one fetch: the rate counts from the first batch on.
            "ratio_events_to_aiokafka_consume": _ratio(per_s, consume_rate, 3),
            "ratio_tasks_to_aiokafka_consume": _ratio(tasks_per_s, consume_rate, 3),
            "baseline_aiokafka_produce_per_s": round(produce_baseline),
            "ratio_tasks_to_aiokafka_produce": round(tasks_per_s / produce_baseline, 3),
            "baseline_asyncpg_row_insert_per_s": round(insert_rates["row_insert"]),
            "ratio_tasks_to_row_insert": round(tasks_per_s / insert_rates["row_insert"], 3),
            "baseline_asyncpg_copy_per_s": round(insert_rates["copy"]),
            "ratio_tasks_to_copy": round(tasks_per_s / insert_rates["copy"], 3)},
        "latency": {str(rate): {**figures, "ratio_p99_to_raw_kafka": _ratio(
            figures["service"]["p99_ms"], figures["baseline_raw_kafka"]["p99_ms"])}
            for rate, figures in latency.items()},
        "replicated": replicated,
        "rss_mb": {"idle": round(idle_rss, 1), "peak": round(memory.peak_mb, 1),
                   "ratio_peak_to_idle": round(memory.peak_mb / idle_rss, 2)},
        "service_exit_code": exit_code,
    }


def _ratio(value: float | None, baseline: float | None, digits: int = 1) -> float | None:
    return round(value / baseline, digits) if value and baseline else None


def show(results: dict) -> None:
    s, m, machine = results["saturated"], results["rss_mb"], results["machine"]
    rows = [
        ("saturated, tasks stored and emitted", f"{s['events_per_s']:,} events/s",
         f"{s['tasks']:,} tasks of {s['events']:,} events in {s['seconds']} s; target ≥ 3,000/s"),
        ("  tasks", f"{s['tasks_per_s']:,} tasks/s", ""),
        ("  ÷ aiokafka consume of TaskCreated", f"{s['baseline_aiokafka_consume_per_s']:,}/s",
         f"×{s['ratio_tasks_to_aiokafka_consume']}"),
        ("  ÷ aiokafka produce of TaskCreated", f"{s['baseline_aiokafka_produce_per_s']:,}/s",
         f"×{s['ratio_tasks_to_aiokafka_produce']}"),
        ("  ÷ asyncpg row INSERT of tasks", f"{s['baseline_asyncpg_row_insert_per_s']:,}/s",
         f"×{s['ratio_tasks_to_row_insert']}"),
        ("  ÷ asyncpg COPY of tasks", f"{s['baseline_asyncpg_copy_per_s']:,}/s",
         f"×{s['ratio_tasks_to_copy']}"),
    ]
    for rate, figures in results["latency"].items():
        service, raw = figures["service"], figures["baseline_raw_kafka"]
        rows.append((f"latency at {rate} events/s, p50 / p99",
                     f"{service['p50_ms']} / {service['p99_ms']} ms",
                     f"{service['answered']}/{service['events']} answered; raw Kafka "
                     f"{raw['p50_ms']} / {raw['p99_ms']} ms, p99 ×{figures['ratio_p99_to_raw_kafka']}"))
        split = service.get("split_ms")
        if split:
            rows.append(("  until made / published / read", " · ".join(
                f"{split[stage]['p50_ms']}/{split[stage]['p99_ms']}" for stage in STAGES)
                + " ms",
                "p50/p99 of each stage: the engine made the TaskCreated (ce_time), the relay "
                "published it (record timestamp), it was read"))
        lag = service.get("event_loop_lag")
        if lag:
            rows.append(("  event loop late, p50 / p99 at most",
                         " / ".join("beyond the last bound" if ms is None else f"{ms:g}"
                                    for ms in (lag["p50_ms_at_most"], lag["p99_ms_at_most"]))
                         + " ms",
                         "its bucket bounds: how long due work waited for other work"))
        rows.append((f"  p50 by {WINDOW_S:.0f} s of sending",
                     " → ".join(f"{p50:.0f}" for p50 in service["p50_ms_by_window"]) + " ms",
                     "climbing: the service falls behind; flat with a high p99: it pauses"))
    replicated = results.get("replicated")
    if replicated:
        r, replicas = replicated["saturated"], replicated["replicas"]
        rows.append((f"saturated, {replicas} replicas", f"{r['events_per_s']:,} events/s",
                     f"{r['tasks']:,} tasks of {r['events']:,} events in {r['seconds']} s; "
                     f"×{r['ratio_to_one_replica']} one replica"))
        for rate, figures in replicated["latency"].items():
            service = figures["service"]
            rows.append((f"latency at {rate} events/s, {replicas} replicas, p50 / p99",
                         f"{service['p50_ms']} / {service['p99_ms']} ms",
                         f"{service['answered']}/{service['events']} answered"))
    rows += [("service memory", f"idle {m['idle']} MB, peak {m['peak']} MB",
              f"×{m['ratio_peak_to_idle']}"),
             ("load average before / after", f"{machine['load_average_before'][0]:.1f} / "
                                             f"{machine['load_average_after'][0]:.1f}", "")]
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:<24} {note}")


def main(argv: list[str] | None = None, results_path: Path = RESULTS) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_lifecycle",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=30_000, help="saturated input size")
    parser.add_argument("--loads", type=lambda s: tuple(int(r) for r in s.split(",")),
                        default=(50, 200, 1000), help="offered loads, events/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=20, help="duration of each load")
    parser.add_argument("--baseline-rows", type=int, default=20_000)
    parser.add_argument("--replicas", type=int, default=2,
                        help="replicas of the service measured after one alone (1: none)")
    args = parser.parse_args(argv)
    run_timed(lambda: run(args.events, args.loads, args.seconds, args.baseline_rows,
                          replicas=args.replicas), show, results_path)


if __name__ == "__main__":
    main()
