"""The consultation service's outbox: its events are written in the transaction that changes
its state, one row per batch of events of one regulation, type and time, and a relay publishes
the rows in order with an idempotent producer, marking each sent once Kafka acknowledged it.

policykit.outbox keeps one row per event and publishes with kafka-python, whose pure-Python
record encoding tops out near 6,000 records/s on a 2-core machine; a bulk import writes tens of
thousands of CommentReceived events a second. Here a thousand comments cost one row, and the
relay hands whole record batches to aiokafka (pinned in requirements.txt for faust-streaming;
its record encoder is compiled). The guarantees are the shared outbox's: state and events
commit together, one relay per schema works at a time (an advisory lock) and publishes in id
order, a relay killed between publishing and marking re-sends on restart (consumers' inboxes
absorb that). Every event of this service goes through it, so one regulation's events keep
their order."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from datetime import datetime
from typing import Callable, Iterable

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from google.protobuf.message import Message
from prometheus_client import Counter, Gauge

from policykit import audit
from policykit.envelope import EVENT_TYPES, Event, new_event, to_record
from policykit.kafka_security import KafkaSecurity
from policykit.outbox import OutboxError, RecordBatches

log = logging.getLogger(__name__)

TOPIC = "policy.consultation.v1"
SOURCE = "policy/consultation"
# Kafka record batches of up to 512 KiB: about 1,500 CommentReceived records each.
MAX_RECORD_BATCH = 512 * 1024
LINGER_S = 0.005

EVENTS_PUBLISHED = Counter("policy_consultation_events_published_total",
                           "Consultation events published to Kafka, by type.", ["type"])
BACKLOG = Gauge("policy_consultation_outbox_backlog",
                "Consultation events written but not yet published.")


async def enqueue(conn: asyncpg.Connection, payload: Message, *,
                  consultation_id: uuid.UUID | None = None,
                  time: datetime | None = None) -> Event:
    """Adds one event to the outbox within the caller's open transaction; returns it."""
    event = new_event(payload, SOURCE, time=time)
    await enqueue_batch(conn, event.regulation_id, consultation_id, event.type, event.time,
                        [uuid.UUID(event.id)], [payload.SerializeToString()],
                        detail=audit.ids_of(payload))
    return event


async def enqueue_batch(conn: asyncpg.Connection, regulation_id: str,
                        consultation_id: uuid.UUID | None, event_type: str, time: datetime,
                        event_ids: list[uuid.UUID], payloads: list[bytes], *,
                        callers: Iterable[audit.Caller] | None = None,
                        detail: dict | None = None) -> None:
    """Adds events of one regulation, type and time — serialised payloads, NFC already —
    within the caller's open transaction, and records the changes in the audit log: a row per
    caller (`callers`, one per event; default the current caller) naming its events, with
    `detail` (default the consultation's id)."""
    if not conn.is_in_transaction():
        raise OutboxError("enqueue must run inside the transaction that changes the state")
    await conn.execute(
        "INSERT INTO event_batches (regulation_id, consultation_id, event_type, event_time,"
        " events, event_ids, payloads) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        regulation_id, consultation_id, event_type, time, len(payloads), event_ids, payloads)
    if detail is None and consultation_id is not None:
        detail = {"consultation_id": str(consultation_id)}
    await audit.record_events(conn, event_type, regulation_id, event_ids, callers=callers,
                              detail=detail)


class EventRelay:
    """Publishes event_batches rows in id order and marks them sent."""

    def __init__(self, pool: asyncpg.Pool, bootstrap_servers: str, *, schema: str,
                 security: KafkaSecurity, rows_per_round: int = 20,
                 poll_interval_s: float = 0.1):
        self.pool = pool
        self.bootstrap_servers = bootstrap_servers
        self.security = security
        self.rows_per_round = rows_per_round
        self.poll_interval_s = poll_interval_s
        self.producer: AIOKafkaProducer | None = None
        self._wake = asyncio.Event()
        self._partitioner = DefaultPartitioner()
        self._lock_id = int.from_bytes(
            hashlib.sha256(f"event-relay:{schema}".encode()).digest()[:8], "big", signed=True)

    def wake(self) -> None:
        """Tells the relay that rows were committed, so it need not wait for its next poll."""
        self._wake.set()

    async def start(self) -> None:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers, acks="all", enable_idempotence=True,
            linger_ms=5, max_batch_size=MAX_RECORD_BATCH, client_id="consultation-outbox",
            **self.security.client_settings())
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def publish_pending(self) -> int:
        """Publishes up to rows_per_round rows, marks them sent once every record was
        acknowledged, and returns the number of events published."""
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._lock_id):
                return 0
            rows = await conn.fetch(
                "SELECT id, regulation_id, event_type, event_time, event_ids, payloads"
                " FROM event_batches WHERE published_at IS NULL ORDER BY id LIMIT $1",
                self.rows_per_round)
            if not rows:
                return 0
            partitions = sorted(await self.producer.partitions_for(TOPIC))
            batches = RecordBatches(self.producer)
            for row in rows:
                await self._add(batches, row, partitions)
            # Raises if any batch was not acknowledged.
            await asyncio.gather(*await batches.send())
            await conn.execute(
                "UPDATE event_batches SET published_at = now(), payloads = NULL"
                " WHERE id = ANY($1::bigint[])", [row["id"] for row in rows])
        published = 0
        for row in rows:
            EVENTS_PUBLISHED.labels(row["event_type"]).inc(len(row["event_ids"]))
            published += len(row["event_ids"])
        return published

    async def _add(self, batches: RecordBatches, row: asyncpg.Record,
                   partitions: list[int]) -> None:
        # The envelope's own headers for the row's events; only ce_id differs between them.
        template = Event(id="", source=SOURCE, type=row["event_type"], time=row["event_time"],
                         subject=row["regulation_id"], payload=EVENT_TYPES[row["event_type"]]())
        key, _, headers = to_record(template)
        id_at = next(i for i, (name, _) in enumerate(headers) if name == "ce_id")
        partition = self._partitioner(key, partitions, partitions)
        for event_id, value in zip(row["event_ids"], row["payloads"]):
            record_headers = list(headers)
            record_headers[id_at] = ("ce_id", str(event_id).encode())
            await batches.add(TOPIC, partition, key, value, record_headers)

    async def backlog(self) -> int:
        async with self.pool.acquire() as conn:
            return await conn.fetchval(
                "SELECT coalesce(sum(events), 0) FROM event_batches WHERE published_at IS NULL")

    async def run(self, stop: asyncio.Event, busy: Callable[[], bool], grace_s: float) -> None:
        """Publishes until `stop` is set; then keeps publishing while `busy()` (calls still
        writing events) and rows remain, for at most grace_s, and stops the producer.
        Failures are logged and retried: nothing leaves the outbox unpublished."""
        await self.start()
        deadline = None
        try:
            while True:
                self._wake.clear()
                try:
                    published = await self.publish_pending()
                    if not published:
                        BACKLOG.set(await self.backlog())
                except Exception:
                    log.exception("event relay failed; retrying")
                    published = 0
                if stop.is_set():
                    deadline = deadline or time.monotonic() + grace_s
                    if (not published and not busy()) or time.monotonic() > deadline:
                        return
                if not published:
                    try:
                        await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
                        # Woken by a commit: let the commits of the next few milliseconds
                        # join it, so that a burst of small batches is one round.
                        await asyncio.sleep(LINGER_S)
                    except asyncio.TimeoutError:
                        pass
        finally:
            await self.stop()
