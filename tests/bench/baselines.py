"""The baselines every benchmark rests on, measured against a given broker and database:

- Kafka's own perf tools (org.apache.kafka.tools.ProducerPerformance and ConsumerPerformance
  from the kafka-tools jar of the broker's version, run with `java`), acks=all;
- the Python clients the platform uses (kafka-python, aiokafka) producing and consuming
  records of the same size;
- asyncpg writing comment-shaped rows into a plain table (no index, no constraint), row by
  row with executemany and with COPY;
- an empty unary gRPC call behind the platform's gRPC server;
- the host itself: a round trip between two processes over loopback TCP, both on one core and
  on two (every request the platform makes of PostgreSQL or Kafka wakes another process).

`measure(...)` returns them as one dict; the benchmarks use the single functions."""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, structs
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from deploy.local.kafka_broker import ensure_jars
from policy.consultation.v1 import consultation_service_pb2 as api
from policy.consultation.v1 import events_pb2 as events
from policykit.envelope import new_event, to_record
from policykit.kafka_io import create_producer
from services.consultation.intake import COMMENT_COLUMNS
from tests.support import REPO

PLAIN_TABLE = "bench_plain_comments"


# ---- Kafka's own perf tools ---------------------------------------------------------------

def kafka_tool(main_class: str, *args: str, timeout: float = 900) -> str:
    """Runs one of Kafka's tools on the broker's own classpath; returns its standard output."""
    command = ["java", "-Xms64m", "-Xmx512m", "-cp", str(ensure_jars(REPO / ".cache") / "*"),
               main_class, *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{main_class} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


# The summary line: "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max
# latency, P ms 50th, P ms 95th, P ms 99th, P ms 99.9th."
_PRODUCER_SUMMARY = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec .*?([\d.]+) ms avg latency.*?"
    r"([\d.]+) ms 50th, ([\d.]+) ms 95th, ([\d.]+) ms 99th")


def producer_performance(bootstrap: str, topic: str, records: int, record_bytes: int) -> dict:
    out = kafka_tool("org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
                     "--num-records", str(records), "--record-size", str(record_bytes),
                     "--throughput", "-1", "--producer-props", f"bootstrap.servers={bootstrap}",
                     "acks=all")
    found = _PRODUCER_SUMMARY.findall(out)
    if not found:
        raise RuntimeError(f"no summary line in ProducerPerformance's output:\n{out[-2000:]}")
    sent, rate, average, p50, p95, p99 = map(float, found[-1])
    return {"records": int(sent), "per_second": rate, "average_ms": average, "p50_ms": p50,
            "p99_ms": p99}


def consumer_performance(bootstrap: str, topic: str, records: int) -> dict:
    """ConsumerPerformance prints a CSV header and one line; its fetch rate leaves out the
    group join, as the Python consumers below join no group."""
    out = kafka_tool("org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server",
                     bootstrap, "--topic", topic, "--messages", str(records),
                     "--group", f"bench-{uuid.uuid4().hex[:8]}", "--timeout", "60000")
    lines = [line for line in out.splitlines() if line.count(",") >= 9]
    figures = dict(zip((name.strip() for name in lines[0].split(",")),
                       (value.strip() for value in lines[-1].split(","))))
    return {"records": int(figures["data.consumed.in.nMsg"]),
            "per_second": float(figures["fetch.nMsg.sec"])}


# ---- Python Kafka clients -----------------------------------------------------------------

def create_topic(bootstrap: str, topic: str | None = None, partitions: int = 6) -> str:
    """Creates the topic (by default a fresh one of the baselines' own); returns its name."""
    topic = topic or f"bench.baseline.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()
    return topic


def event_records(count: int, value_size: int) -> list[tuple[bytes, bytes, list]]:
    """Records of `value_size` random bytes with the CloudEvents headers the platform sends."""
    payload = events.CommentReceived(regulation_id="bench")
    key, _, headers = to_record(new_event(payload, "policy/consultation"))
    value = os.urandom(value_size)
    return [(key, value, [(n, str(uuid.uuid4()).encode() if n == "ce_id" else v)
                          for n, v in headers]) for _ in range(count)]


def kafka_python_produce_rate(bootstrap: str, records: list) -> float:
    topic = create_topic(bootstrap)
    producer = create_producer(bootstrap, client_id="bench-baseline")
    started = time.perf_counter()
    for key, value, headers in records:
        producer.send(topic, key=key, value=value, headers=headers)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return len(records) / elapsed


async def aiokafka_produce_rate(bootstrap: str, records: list) -> float:
    """aiokafka's batch API, which the consultation outbox uses (the shared relay sends record by
    record with the same client)."""
    topic = create_topic(bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=5, max_batch_size=512 * 1024)
    await producer.start()
    started = time.perf_counter()
    deliveries, batch = [], producer.create_batch()
    for key, value, headers in records:
        if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
            batch.close()
            deliveries.append(await producer.send_batch(batch, topic, partition=0))
            batch = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None, headers=headers)
    batch.close()
    deliveries.append(await producer.send_batch(batch, topic, partition=0))
    await asyncio.gather(*deliveries)
    elapsed = time.perf_counter() - started
    await producer.stop()
    return len(records) / elapsed


def _partitions(bootstrap: str, topic: str) -> set[int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return consumer.partitions_for_topic(topic)
    finally:
        consumer.close()


def kafka_python_consume_rate(bootstrap: str, topic: str, count: int) -> float:
    """Records a second a raw consumer reads from the topic's beginning, without decoding.
    Its partitions are assigned, not joined as a group, so the time is the fetching alone."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             max_poll_records=10_000, fetch_max_bytes=64 * 2**20,
                             max_partition_fetch_bytes=8 * 2**20)
    try:
        consumer.assign([TopicPartition(topic, p) for p in _partitions(bootstrap, topic)])
        consumer.seek_to_beginning()
        read, started = 0, time.perf_counter()
        while read < count:
            read += sum(map(len, consumer.poll(timeout_ms=500).values()))
        return read / (time.perf_counter() - started)
    finally:
        consumer.close()


async def aiokafka_consume_rate(bootstrap: str, topic: str, count: int) -> float:
    """As kafka_python_consume_rate, with aiokafka (the client of the services' consumers)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                fetch_max_bytes=64 * 2**20, max_partition_fetch_bytes=8 * 2**20)
    await consumer.start()
    try:
        consumer.assign([structs.TopicPartition(topic, p) for p in _partitions(bootstrap, topic)])
        await consumer.seek_to_beginning()
        read, started = 0, time.perf_counter()
        while read < count:
            batches = await consumer.getmany(timeout_ms=500, max_records=20_000)
            read += sum(map(len, batches.values()))
        return read / (time.perf_counter() - started)
    finally:
        await consumer.stop()


# ---- asyncpg ------------------------------------------------------------------------------

def comment_rows(comments: list[api.Comment]) -> list[tuple]:
    """Rows shaped like the consultation service's comments table."""
    now = datetime.now(timezone.utc)
    consultation_id = uuid.uuid4()
    return [(uuid.uuid4(), consultation_id, c.idempotency_key, now, c.stakeholder_type,
             c.province_code, c.province_code, c.article_ref, c.article_ref, c.text,
             random.getrandbits(63), False, "", c.contact.name, c.contact.email,
             c.contact.phone, "") for c in comments]


async def _write_rate(database_url: str, rows: list[tuple], write, connections: int = 4,
                      batch: int = 2_000) -> float:
    """Rows per second that `write(connection, rows)` reaches into a table without indexes,
    a transaction per batch over `connections` connections."""
    setup = await asyncpg.connect(database_url)
    await setup.execute(f"DROP TABLE IF EXISTS {PLAIN_TABLE}")
    await setup.execute(
        f"CREATE TABLE {PLAIN_TABLE} (comment_id uuid, consultation_id uuid,"
        " idempotency_key text, received_at timestamptz, stakeholder_type smallint,"
        " province_code text, province_id text, article_ref text, article text, text text,"
        " text_key bigint, flagged_corrupted boolean, commenter_pseudonym text,"
        " contact_name text, contact_email text, contact_phone text,"
        " contact_organisation text)")
    pool = await asyncpg.create_pool(database_url, min_size=connections, max_size=connections)
    queue = [rows[i:i + batch] for i in range(0, len(rows), batch)]

    async def worker() -> None:
        while queue:
            part = queue.pop()
            async with pool.acquire() as conn, conn.transaction():
                await write(conn, part)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    await pool.close()
    await setup.execute(f"DROP TABLE {PLAIN_TABLE}")
    await setup.close()
    return len(rows) / elapsed


async def copy_rate(database_url: str, rows: list[tuple]) -> float:
    return await _write_rate(database_url, rows, lambda conn, part: conn.copy_records_to_table(
        PLAIN_TABLE, records=part, columns=COMMENT_COLUMNS))


async def insert_rate(database_url: str, rows: list[tuple]) -> float:
    statement = (f"INSERT INTO {PLAIN_TABLE} ({', '.join(COMMENT_COLUMNS)}) VALUES"
                 f" ({', '.join(f'${n}' for n in range(1, len(COMMENT_COLUMNS) + 1))})")
    return await _write_rate(database_url, rows,
                             lambda conn, part: conn.executemany(statement, part))


# ---- the host ----------------------------------------------------------------------------

# Sends back whatever it receives on a loopback connection to the port given.
_ECHO = ("import socket, sys\n"
         "connection = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
         "connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\n"
         "while data := connection.recv(4096):\n"
         "    connection.sendall(data)\n")


def loopback_round_trip_us(round_trips: int, cpus: tuple[int, int] | None) -> float:
    """Microseconds a round trip of 100 bytes takes between this thread and an echoing process
    over loopback TCP, the two on the CPUs `cpus` (None: wherever the scheduler puts them, as it
    does the platform's processes). The platform waits on one for every statement it sends to
    PostgreSQL and every request to Kafka; on a virtual machine, waking a process on another
    core can cost many times a switch on the same one."""
    own_cpus = os.sched_getaffinity(0)
    message = b"x" * 100
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(30)  # an echo that fails to start fails the baseline, not hangs it
        echo = subprocess.Popen([sys.executable, "-c", _ECHO, str(server.getsockname()[1])])
        try:
            connection, _ = server.accept()
            with connection:
                connection.settimeout(30)
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if cpus is not None:
                    os.sched_setaffinity(0, {cpus[0]})
                    os.sched_setaffinity(echo.pid, {cpus[1]})

                def exchange(count: int) -> None:
                    for _ in range(count):
                        connection.sendall(message)
                        received = 0
                        while received < len(message):
                            data = connection.recv(4096)
                            if not data:
                                raise RuntimeError("the echo process closed the connection")
                            received += len(data)

                exchange(100)  # the echo started and placed
                started = time.perf_counter()
                exchange(round_trips)
                return (time.perf_counter() - started) / round_trips * 1e6
        finally:
            os.sched_setaffinity(0, own_cpus)
            echo.kill()
            echo.wait()


def host_round_trips(round_trips: int) -> dict:
    """loopback_round_trip_us as the scheduler places the two processes, on one core and, where
    this process may use two, on two."""
    cpus = sorted(os.sched_getaffinity(0))
    figures = {"loopback_round_trip_us": loopback_round_trip_us(round_trips, None),
               "loopback_round_trip_one_core_us": loopback_round_trip_us(
                   round_trips, (cpus[0], cpus[0]))}
    if len(cpus) > 1:
        figures["loopback_round_trip_two_cores_us"] = loopback_round_trip_us(
            round_trips, (cpus[0], cpus[1]))
    return figures


# ---- all of them --------------------------------------------------------------------------

def measure(bootstrap: str, database_url: str, workdir: Path, record_bytes: int,
            tool_records: int, client_records: int, rows: int, grpc_calls: int,
            round_trips: int) -> dict:
    """Every baseline once: the perf tools on `tool_records` records of `record_bytes`, the
    Python clients on `client_records` such records, asyncpg on `rows` comment rows,
    `grpc_calls` empty unary calls and `round_trips` loopback round trips a placement."""
    # Imported here: bench_consultation_intake imports this module.
    from tests.bench.bench_consultation_intake import corpus, grpc_ceiling

    print(f"baselines: Kafka perf tools, {tool_records:,} records of {record_bytes} bytes …",
          flush=True)
    topic = create_topic(bootstrap)
    produced = producer_performance(bootstrap, topic, tool_records, record_bytes)
    consumed = consumer_performance(bootstrap, topic, tool_records)
    print(f"baselines: kafka-python and aiokafka, {client_records:,} records …", flush=True)
    records = event_records(client_records, record_bytes)
    figures = {
        "record_bytes": record_bytes,
        "kafka_tools_produce_per_s": produced["per_second"],
        "kafka_tools_produce_p99_ms": produced["p99_ms"],
        "kafka_tools_consume_per_s": consumed["per_second"],
        "kafka_python_produce_per_s": kafka_python_produce_rate(bootstrap, records),
        "aiokafka_produce_per_s": asyncio.run(aiokafka_produce_rate(bootstrap, records)),
        # kafka-python reads half as many: it is the slowest reader by far.
        "kafka_python_consume_per_s": kafka_python_consume_rate(bootstrap, topic,
                                                                tool_records // 2),
        "aiokafka_consume_per_s": asyncio.run(aiokafka_consume_rate(bootstrap, topic,
                                                                    tool_records)),
    }
    print(f"baselines: asyncpg executemany and COPY, {rows:,} rows …", flush=True)
    table_rows = comment_rows(corpus(rows, "bench-baseline"))
    figures["asyncpg_insert_rows_per_s"] = asyncio.run(insert_rate(database_url, table_rows))
    figures["asyncpg_copy_rows_per_s"] = asyncio.run(copy_rate(database_url, table_rows))
    print(f"baselines: {grpc_calls:,} empty unary gRPC calls …", flush=True)
    ceiling = grpc_ceiling(grpc_calls, 64, workdir)
    figures["grpc_empty_unary_per_s"] = ceiling["per_second"]
    figures["grpc_empty_unary_p99_ms"] = ceiling["p99_ms"]
    print(f"baselines: {round_trips:,} loopback round trips, on one core and on two …",
          flush=True)
    figures.update(host_round_trips(round_trips))
    return figures
