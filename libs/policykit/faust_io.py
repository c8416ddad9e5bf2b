"""Kafka I/O for faust-streaming agents: the same envelope, dead-letter and retry rules as
policykit.kafka_io, for services written as Faust apps.

The app's id is its consumer group; Faust commits offsets of events its agents finished, so
delivery is at-least-once and handlers stay idempotent through the inbox. Faust's
exactly-once processing is deliberately not used (see the README).

An agent may also take the records that arrive together as one batch: a service applies them
in one transaction, which commits (and waits for the disk) once instead of once per event.

Faust throws away records fetched while a rebalance suspends its flow, then seeks every
partition back to its committed offset; aiokafka seeks only to committed offsets above 0, so a
partition with none kept the position past the records thrown away, and they were not read
until the next rebalance. The app's consumer seeks such a partition to its beginning
(`seek_to_committed_or_start`), as `auto_offset_reset="earliest"` would."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Awaitable, Callable

import aiokafka
from aiokafka.consumer.fetcher import Fetcher
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from policykit import metrics
from policykit.envelope import EnvelopeError, Event, from_record
from policykit.kafka_io import dead_letter_headers, event_scope, failure_verdict
from policykit.kafka_security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)

EventHandler = Callable[[Event], Awaitable[None]]
BatchHandler = Callable[[list[Event]], Awaitable[None]]


def create_app(group: str, bootstrap_servers: str, security: KafkaSecurity = PLAINTEXT,
               **overrides) -> faust.App:
    """Returns a Faust app consuming as `group`, with raw keys and values (the envelope
    decodes them), acks from all in-sync replicas, and no web server or leader topic."""
    settings = dict(
        broker=";".join(f"kafka://{server}" for server in bootstrap_servers.split(",")),
        key_serializer="raw", value_serializer="raw",
        producer_acks=-1, consumer_auto_offset_reset="earliest",
        web_enabled=False, topic_disable_leader=True, store="memory://",
        autodiscover=False, broker_commit_interval=1.0,
        # A crashed member's partitions move to the others after 10 s rather than a minute.
        broker_session_timeout=10.0, broker_heartbeat_interval=2.0,
        # Faust wants a data directory even with the memory store; keep it out of the tree.
        datadir=Path(tempfile.gettempdir()) / f"faust-{group}",
        **security.faust_settings())
    settings.update(overrides)
    app = faust.App(group, **settings)
    app.transport = _Transport(app.conf.broker_consumer, app)
    return app


async def seek_to_committed_or_start(
        consumer: aiokafka.AIOKafkaConsumer) -> dict[aiokafka.TopicPartition, int | None]:
    """Seeks each assigned partition to its committed offset, and one with none (or 0) to its
    beginning, where aiokafka's seek_to_committed leaves it at its current position; returns
    the committed offsets (None where there is none)."""
    committed = await consumer.seek_to_committed()
    for partition, offset in committed.items():
        if not offset:
            # Past retention 0 lies before the log's start: aiokafka then resets to the start.
            consumer.seek(partition, 0)
    return committed


# While records keep coming, a fetch waits for this much of them, or this long: one fetch then
# brings a batch, where each fetch (`fetch_min_bytes` 1) brought a record or two, and aiokafka
# encodes each request and decodes each answer in Python, in the consumer's thread.
FLOWING_FETCH_MIN_BYTES = 4096
FLOWING_FETCH_MAX_WAIT_MS = 10


def wait_for_more_while_records_flow(fetcher: Fetcher) -> None:
    """Makes `fetcher`'s next fetch after one that brought records wait for
    FLOWING_FETCH_MIN_BYTES or FLOWING_FETCH_MAX_WAIT_MS, and the next after one that brought
    none wait as configured. So a busy consumer fetches fewer, larger batches, and an idle one
    still sends one long-polling fetch at a time rather than one every 10 ms; a lone record
    costs one extra, empty, 10 ms fetch. aiokafka's fetcher reads these two attributes for
    each request it builds."""
    idle = fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms
    fetch = fetcher._proc_fetch_request

    async def fetch_then_choose_next_wait(assignment, node_id, request) -> bool:
        brought_records = await fetch(assignment, node_id, request)
        fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms = (
            (FLOWING_FETCH_MIN_BYTES, FLOWING_FETCH_MAX_WAIT_MS) if brought_records else idle)
        return brought_records

    fetcher._proc_fetch_request = fetch_then_choose_next_wait


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def on_start(self) -> None:
        await super().on_start()  # creates and starts the aiokafka consumer and its fetcher
        wait_for_more_while_records_flow(self._consumer._fetcher)


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def seek_to_committed(self):
        # In the consumer's own thread and event loop, as Faust's seek_to_committed runs.
        thread = self._thread
        return await thread.call_thread(seek_to_committed_or_start, thread._ensure_consumer())


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


def add_event_agent(app: faust.App, topics: list[str], dead_letter_topic: str,
                    handler: EventHandler, *, batch_handler: BatchHandler | None = None,
                    batch_size: int = 500, max_attempts: int = 5,
                    retry_backoff_s: float = 0.5) -> faust.types.AgentT:
    """Adds an agent that decodes each record of `topics` and awaits `handler(event)`;
    undecodable, rejected and persistently failing records go to `dead_letter_topic`.

    With `batch_handler`, the records that arrived while the previous batch was handled (up to
    `batch_size`) are handed to it at once, in order; it applies all of them or none. So a
    batch grows with the load, and a record arriving at an idle agent waits for nothing. When
    a batch fails, each of its records is handled alone by `handler`, retried and
    dead-lettered as above, so one poison event is dead-lettered alone and the others are
    applied once. Records are acknowledged (their offsets committed) once their batch is
    handled."""
    source = app.topic(*topics, key_serializer="raw", value_serializer="raw")

    async def dead_letter(message, reason: str) -> None:
        log.error("dead-lettering %s[%d]@%d: %s", message.topic, message.partition,
                  message.offset, reason)
        headers = dead_letter_headers(list(message.headers or ()), reason, message.topic,
                                      message.partition, message.offset, app.conf.id)
        await app.producer.send_and_wait(dead_letter_topic, message.key, message.value,
                                         None, None, headers)
        metrics.EVENTS_DEAD_LETTERED.labels(message.topic, dead_letter_topic).inc()

    async def decode(message) -> Event | None:
        try:
            return from_record(message.key, message.value, list(message.headers or ()))
        except EnvelopeError as error:
            await dead_letter(message, error.reason)
            return None

    async def handle(message, event: Event) -> None:
        with event_scope(event):
            for attempt in range(1, max_attempts + 1):
                try:
                    await handler(event)
                    metrics.EVENTS_CONSUMED.labels(message.topic, event.type).inc()
                    return
                except Exception as error:
                    reason = failure_verdict(error, attempt, max_attempts, message.topic)
                    if reason is not None:
                        await dead_letter(message, reason)
                        return
                    await asyncio.sleep(retry_backoff_s * attempt)

    async def handle_batch(messages: list) -> None:
        decoded = [(message, event) for message in messages
                   if (event := await decode(message)) is not None]
        if not decoded:
            return
        try:
            await batch_handler([event for _, event in decoded])
        except Exception as error:
            log.warning("a batch of %d event(s) failed (%s: %s); handling them one by one",
                        len(decoded), type(error).__name__, error)
            for message, event in decoded:
                await handle(message, event)
            return
        for message, event in decoded:
            metrics.EVENTS_CONSUMED.labels(message.topic, event.type).inc()

    async def handle_queued(stream, queue: asyncio.Queue) -> None:
        while True:
            records = [await queue.get()]
            while len(records) < batch_size and not queue.empty():
                records.append(queue.get_nowait())
            await handle_batch([record.message for record in records])
            for record in records:
                await stream.ack(record)

    async def agent(stream):
        if batch_handler is None:
            async for record in stream.events():
                if (event := await decode(record.message)) is not None:
                    await handle(record.message, event)
            return
        # Records queue up while a batch is handled (at most batch_size, then the stream waits);
        # Faust's take_events would instead wait a fixed time for each batch to fill.
        stream.enable_acks = False
        queue: asyncio.Queue = asyncio.Queue(maxsize=batch_size)

        async def fill() -> None:
            async for record in stream.events():
                await queue.put(record)

        tasks = [asyncio.ensure_future(fill()), asyncio.ensure_future(handle_queued(stream, queue))]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # e.g. a batch that could be neither handled nor dead-lettered
        finally:
            for task in tasks:
                task.cancel()

    return app.agent(source, name=f"{app.conf.id}-events")(agent)


async def run_app(app: faust.App, stop: asyncio.Event) -> None:
    """Runs the Faust app inside the service's event loop until `stop` is set; a service
    passes this to the runtime as background work, beside its gRPC server."""
    await app.start()
    try:
        await stop.wait()
    finally:
        await app.stop()
