"""Transactional outbox and inbox.

A service writes its state and the events describing it in the same PostgreSQL transaction
(`enqueue`); the relay publishes the rows in order and deletes them once Kafka acknowledged
them (the topics keep the events). A relay killed between publishing and deleting re-sends
on restart: consumers absorb that with the inbox
(`first_delivery`), so delivery is at-least-once and handling exactly-once."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from typing import Callable

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner, murmur2
from aiokafka.producer.message_accumulator import BatchBuilder

from policykit import audit, metrics
from policykit.db import create_pool, split_text_list, text_list
from policykit.envelope import Event, headers_from_json, headers_to_json, to_record
from policykit.kafka_security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)

# How long the relay waits for Kafka to acknowledge a batch before it gives up on its producer
# (kafka-python's and the Java client's default delivery timeout).
DELIVERY_TIMEOUT_S = 120.0
# How often a busy relay counts what is left in the outbox (policy_outbox_backlog).
BACKLOG_MEASURE_INTERVAL_S = 1.0


class OutboxError(RuntimeError):
    """The outbox was used outside a transaction, which would break atomicity."""


async def enqueue(conn: asyncpg.Connection, topic: str, event: Event) -> None:
    """Adds the event to the outbox within the caller's open transaction, and records the
    change it describes in the audit log."""
    await enqueue_many(conn, topic, [event])


async def first_delivery(conn: asyncpg.Connection, consumer: str, event: Event) -> bool:
    """Records that `consumer` handles the event; False when it already has. Call it in the
    transaction that applies the event, so the record and the effects commit together."""
    if not conn.is_in_transaction():
        raise OutboxError("first_delivery must run inside the transaction that handles the event")
    status = await conn.execute(
        "INSERT INTO inbox (consumer, event_id, event_type) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING", consumer, event.id, event.type)
    if status.endswith(" 0"):
        metrics.EVENTS_DUPLICATE.labels(consumer).inc()
        return False
    return True


# The events' outbox rows and their audit rows in one statement, the outbox rows numbered in
# the events' order. (A COPY of the outbox rows and an INSERT of the audit rows were three
# round trips, each waiting on a busy server.) The texts come as text lists
# (policykit.db.text_list); keys and values as bytea arrays.
_ENQUEUE = (
    "WITH outbox_rows AS (INSERT INTO outbox (event_id, topic, record_key, value, headers)"
    " SELECT e.event_id::uuid, $7, e.record_key, e.value, e.headers"
    f" FROM unnest({split_text_list('$8')}, $9::bytea[], $10::bytea[],"
    f" {split_text_list('$11')}) WITH ORDINALITY AS e(event_id, record_key, value, headers, n)"
    f" ORDER BY e.n) {audit.INSERT}")


async def enqueue_many(conn: asyncpg.Connection, topic: str, events: list[Event], *,
                       callers: list[audit.Caller] | None = None) -> None:
    """`enqueue` for several events, in their order, in one statement: their outbox rows and
    their audit rows. `callers`, one per event, default to the current one (events handled
    together in one transaction each emit as their own caller)."""
    if not conn.is_in_transaction():
        raise OutboxError("enqueue must run inside the transaction that changes the state")
    if not events:
        return
    keys, values, headers = zip(*map(to_record, events))
    await conn.execute(
        _ENQUEUE, *audit.rows_arguments(audit.emitted_rows(events, callers)), topic,
        text_list([event.id for event in events]), list(keys), list(values),
        text_list([headers_to_json(each) for each in headers]))


async def first_deliveries(conn: asyncpg.Connection, consumer: str,
                           events: list[Event]) -> set[str]:
    """`first_delivery` for several events in one statement: returns the ids of those that
    `consumer` had not handled yet (an id repeated among them counts once)."""
    if not conn.is_in_transaction():
        raise OutboxError("first_delivery must run inside the transaction that handles the event")
    rows = await conn.fetch(
        "INSERT INTO inbox (consumer, event_id, event_type)"
        " SELECT $1, e.event_id, e.event_type FROM unnest($2::text[], $3::text[])"
        " AS e(event_id, event_type) ON CONFLICT DO NOTHING RETURNING event_id",
        consumer, [event.id for event in events], [event.type for event in events])
    fresh = {row["event_id"] for row in rows}
    duplicates = len(events) - len(fresh)
    if duplicates:
        metrics.EVENTS_DUPLICATE.labels(consumer).inc(duplicates)
    return fresh


def create_relay_producer(bootstrap_servers: str, security: KafkaSecurity = PLAINTEXT,
                          **overrides) -> AIOKafkaProducer:
    """Returns the relay's producer (started by the relay, inside its event loop): it waits for
    all in-sync replicas and never duplicates on retry, like policykit.kafka_io's, but runs on
    the service's event loop rather than in threads of its own (aiokafka rather than
    kafka-python: producing there was a quarter of the task engine's time under load)."""
    settings = dict(bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True,
                    linger_ms=5, max_batch_size=256 * 1024, client_id="policykit-outbox",
                    partitioner=_partition_by_key, **security.client_settings())
    settings.update(overrides)
    return AIOKafkaProducer(**settings)


class RecordBatches:
    """Records handed to an aiokafka producer as record batches, one open batch a partition
    filled in the order the records are added. Records of one key share a partition and
    aiokafka keeps one batch in flight a partition, so they are written in that order. (Sent
    one by one, aiokafka's per-record bookkeeping was most of a relay's own time; sent a batch
    per outbox row, each row of a few events cost the broker a produce request of its own.)"""

    def __init__(self, producer: AIOKafkaProducer):
        self.producer = producer
        self._open: dict[tuple[str, int], BatchBuilder] = {}
        self._deliveries: list[asyncio.Future] = []

    async def add(self, topic: str, partition: int, key: bytes | None, value: bytes,
                  headers: list[tuple[str, bytes]]) -> None:
        batch = self._open.get((topic, partition))
        if batch is None or batch.append(key=key, value=value, timestamp=None,
                                         headers=headers) is None:
            if batch is not None:  # full: on its way, and a new one for this partition
                await self._submit(batch, topic, partition)
            batch = self._open[topic, partition] = self.producer.create_batch()
            batch.append(key=key, value=value, timestamp=None, headers=headers)

    async def send(self) -> list[asyncio.Future]:
        """Sends the batches still open; returns the deliveries of every batch."""
        for (topic, partition), batch in self._open.items():
            await self._submit(batch, topic, partition)
        self._open.clear()
        return self._deliveries

    async def _submit(self, batch: BatchBuilder, topic: str, partition: int) -> None:
        batch.close()
        self._deliveries.append(await self.producer.send_batch(batch, topic,
                                                               partition=partition))


async def _queue_batches(producer: AIOKafkaProducer,
                         rows: list[asyncpg.Record]) -> list[asyncio.Future]:
    """Hands the rows to the producer as record batches; returns their deliveries."""
    partitions: dict[str, list[int]] = {}
    batches = RecordBatches(producer)
    for row in rows:
        topic, key = row["topic"], row["record_key"]
        if topic not in partitions:
            partitions[topic] = sorted(await producer.partitions_for(topic))
        await batches.add(topic, _partition_by_key(key, partitions[topic], partitions[topic]),
                          key, row["value"], headers_from_json(row["headers"]))
    return await batches.send()


def _partition_by_key(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka's default partitioner (murmur2 of the key, as Kafka's Java client), with each
    key's hash remembered: a batch holds several records of one regulation, and murmur2 in
    pure Python was 3% of the task engine's time."""
    if key is None:
        return _DEFAULT_PARTITIONER(key, all_partitions, available)
    return all_partitions[_key_hash(key) % len(all_partitions)]


_DEFAULT_PARTITIONER = DefaultPartitioner()


@functools.lru_cache(maxsize=65_536)
def _key_hash(key: bytes) -> int:
    return murmur2(key) & 0x7FFFFFFF


class OutboxRelay:
    """Publishes outbox rows to Kafka in id order. One relay per schema works at a time (an
    advisory lock), so replicas of a service never reorder one regulation's events.

    The relay owns its producer: `new_producer` makes one when there is none, and the relay
    drops it when a batch is not acknowledged within `delivery_timeout_s` (close() drops it at
    the end). The batch is then sent again whole by a new producer: an idempotent aiokafka
    producer retries a batch it sent for ever and keeps it queued, so a stuck one is replaced
    rather than given the rows a second time.

    After a pass that found less than a batch, the relay waits until it is woken (`wake`) or
    `poll_interval_s` passes."""

    # The running relays of this process, each waiting on its event while idle.
    _idle: set[asyncio.Event] = set()

    @classmethod
    def wake(cls) -> None:
        """Tells this process's relays that outbox rows were just committed, so that they
        publish them now rather than at their next poll."""
        for woken in cls._idle:
            woken.set()

    def __init__(self, pool: asyncpg.Pool, new_producer: Callable[[], AIOKafkaProducer],
                 schema: str, *, batch_size: int = 2000, poll_interval_s: float = 0.1,
                 delivery_timeout_s: float = DELIVERY_TIMEOUT_S):
        self.pool = pool
        self.new_producer = new_producer
        self.producer: AIOKafkaProducer | None = None
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.delivery_timeout_s = delivery_timeout_s
        self._lock_id = int.from_bytes(
            hashlib.sha256(f"outbox-relay:{schema}".encode()).digest()[:8], "big", signed=True)
        # Producers given up on, still stopping (they stop once their queue is delivered).
        self._abandoned: set[asyncio.Task] = set()
        self.stall_warning_s = 60.0
        self._warned_at = float("-inf")
        self._measured_at = float("-inf")

    async def publish_batch(self) -> int:
        """Publishes one batch and deletes its rows once Kafka acknowledged every record;
        returns the number of rows published."""
        # Bounded, as Kafka's part is: a pass that cannot start fails and is logged.
        async with self.pool.acquire(timeout=self.delivery_timeout_s) as conn, \
                conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._lock_id):
                return 0
            rows = await conn.fetch(
                "SELECT ctid, topic, record_key, value, headers FROM outbox ORDER BY id"
                " LIMIT $1", self.batch_size)
            if not rows:
                return 0
            await self._send(rows)
            # The rows read, not all up to the last id: a row with a lower id may commit after
            # the read. By their place in the table (ctid), which holds while this transaction
            # runs under the lock: no one else deletes or updates outbox rows. By id, the
            # statement's plan, made while the table was small, stayed a scan of the whole
            # table, which grows with the deleted rows until vacuum takes them (~1–2 ms a
            # pass after a few thousand; a TID scan is ~0.05 ms).
            await conn.execute("DELETE FROM outbox WHERE ctid = ANY($1::tid[])",
                               [row["ctid"] for row in rows])
        metrics.OUTBOX_PUBLISHED.inc(len(rows))
        return len(rows)

    async def _send(self, rows: list[asyncpg.Record]) -> None:
        if self.producer is None:
            producer = self.new_producer()
            try:
                # Bounded too: an idempotent producer's start waits for its producer id.
                async with asyncio.timeout(self.delivery_timeout_s):
                    await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self.producer = producer
        producer = self.producer
        try:
            async with asyncio.timeout(self.delivery_timeout_s):
                await asyncio.gather(*await _queue_batches(producer, rows))
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Drops the relay's producer, if it has one: it stops at once when nothing it was given
        is left undelivered, otherwise in the background once its queue is delivered (the
        rows stay unsent and are sent again; consumers' inboxes absorb the copies)."""
        producer, self.producer = self.producer, None
        if producer is None:
            return
        stopping = asyncio.ensure_future(producer.stop())
        done, _ = await asyncio.wait([stopping], timeout=1.0)
        if not done:
            log.warning("left behind a Kafka producer with undelivered records")
            self._abandoned.add(stopping)
            stopping.add_done_callback(self._abandoned.discard)

    async def backlog(self) -> tuple[int, float]:
        """Returns (unsent rows, age in seconds of the next one to go out).

        Read from the two ends of the primary key, not counted: a count scans the whole table,
        rows deleted since the last vacuum included (20–70 ms a count after a burst of 70,000
        tasks, the relay waiting on it once a second). The rows are numbered from a sequence,
        so the span of their ids is their number — at most: ids that a rolled-back transaction
        took count until the relay has passed them."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT (SELECT max(id) FROM outbox) - id + 1 AS n,"
                " extract(epoch FROM now() - created_at) AS age FROM outbox ORDER BY id LIMIT 1")
        return (row["n"], float(row["age"])) if row else (0, 0.0)

    async def _publish_and_measure(self) -> int:
        published = 0
        try:
            published = await self.publish_batch()
            return published
        finally:
            # Also when Kafka did not take the batch: that is when a stuck outbox must show.
            # Once a second, busy or idle: counting is a scan of the table, deleted rows
            # included until vacuum takes them, and a relay publishing small batches counted
            # after each (1.2 ms of PostgreSQL's time an engine batch of one event).
            now = asyncio.get_running_loop().time()
            if now - self._measured_at >= BACKLOG_MEASURE_INTERVAL_S:
                self._measured_at = now
                backlog, age = await self.backlog()
                metrics.OUTBOX_BACKLOG.set(backlog)
                metrics.OUTBOX_OLDEST_AGE.set(age)
                self._warn_if_stalled(published, backlog, age)

    def _warn_if_stalled(self, published: int, backlog: int, age: float) -> None:
        """Says so in the log, at most once a `stall_warning_s`, when rows older than that wait
        and a pass published none — whether Kafka refused them (the failure is logged too) or
        the relay could not take the schema's lock, held by another replica's relay."""
        now = asyncio.get_running_loop().time()
        if (published or not backlog or age < self.stall_warning_s
                or now - self._warned_at < self.stall_warning_s):
            return
        self._warned_at = now
        log.warning("outbox: %d row(s) unsent, the oldest %.0f s old, and this pass published "
                    "none", backlog, age)

    async def run(self, stop: asyncio.Event) -> None:
        """Publishes until `stop` is set, then drains what is left. Failures are logged and
        retried: nothing leaves the outbox unpublished."""
        woken = asyncio.Event()
        OutboxRelay._idle.add(woken)
        try:
            while True:
                woken.clear()  # rows committed from now on are published by this pass or next
                try:
                    published = await self._publish_and_measure()
                except Exception:
                    log.exception("outbox relay failed; retrying")
                    published = 0
                    if stop.is_set():
                        return  # do not spin on a broken link during shutdown
                if stop.is_set() and not published:
                    return
                if published < self.batch_size:
                    # It published all it could see: rows committed here since are signalled
                    # (`woken`), so another pass now would mostly find none — a transaction
                    # and a scan each batch the engine commits under a light load.
                    await _first_of(stop, woken, timeout=self.poll_interval_s)
        finally:
            OutboxRelay._idle.discard(woken)


async def _first_of(*events: asyncio.Event, timeout: float) -> None:
    """Waits until one of the events is set, at most `timeout` seconds."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def drain(database_url: str, bootstrap_servers: str, security: KafkaSecurity,
                schema: str, batch_size: int = 2000) -> int:
    """Publishes everything in the schema's outbox and returns the number of rows sent."""
    pool = await create_pool(database_url, schema)
    relay = OutboxRelay(pool, functools.partial(create_relay_producer, bootstrap_servers,
                                                security, client_id=f"{schema}-outbox-drain"),
                        schema, batch_size=batch_size)
    try:
        total = 0
        while published := await relay.publish_batch():
            total += published
        return total
    finally:
        await relay.close()
        await pool.close()


def main(argv: list[str] | None = None) -> None:
    """`python -m policykit.outbox --schema S`: publishes a service's outbox backlog and exits,
    e.g. after an outage, using DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS and the Kafka security
    variables (policykit.kafka_security), as the service does."""
    import argparse

    from policykit.config import env_str

    parser = argparse.ArgumentParser(prog="python -m policykit.outbox", description=main.__doc__)
    parser.add_argument("--schema", required=True, help="the service's schema, e.g. drafting")
    parser.add_argument("--batch-size", type=int, default=2000)
    args = parser.parse_args(argv)
    sent = asyncio.run(drain(env_str("DATABASE_URL"), env_str("KAFKA_BOOTSTRAP_SERVERS"),
                             KafkaSecurity.from_env(), args.schema, args.batch_size))
    print(f"published {sent} outbox row(s) from schema {args.schema}")


if __name__ == "__main__":
    main()
