"""Kafka I/O for faust-streaming agents: the same envelope, dead-letter and retry rules as
policykit.kafka_io, for services written as Faust apps.

The app's id is its consumer group; Faust commits offsets of events its agents finished, so
delivery is at-least-once and handlers stay idempotent through the inbox. Faust's
exactly-once processing is deliberately not used (see the README)."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Awaitable, Callable

import faust

from policykit import metrics
from policykit.envelope import EnvelopeError, Event, from_record
from policykit.jsonlog import current_event_id, current_regulation_id
from policykit.kafka_io import dead_letter_headers, failure_verdict
from policykit.kafka_security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)

EventHandler = Callable[[Event], Awaitable[None]]


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
    return faust.App(group, **settings)


def add_event_agent(app: faust.App, topics: list[str], dead_letter_topic: str,
                    handler: EventHandler, *, max_attempts: int = 5,
                    retry_backoff_s: float = 0.5) -> faust.types.AgentT:
    """Adds an agent that decodes each record of `topics` and awaits `handler(event)`;
    undecodable, rejected and persistently failing records go to `dead_letter_topic`."""
    source = app.topic(*topics, key_serializer="raw", value_serializer="raw")

    async def dead_letter(message, reason: str) -> None:
        log.error("dead-lettering %s[%d]@%d: %s", message.topic, message.partition,
                  message.offset, reason)
        headers = dead_letter_headers(list(message.headers or ()), reason, message.topic,
                                      message.partition, message.offset, app.conf.id)
        await app.producer.send_and_wait(dead_letter_topic, message.key, message.value,
                                         None, None, headers)
        metrics.EVENTS_DEAD_LETTERED.labels(message.topic, dead_letter_topic).inc()

    async def handle(message) -> None:
        try:
            event = from_record(message.key, message.value, list(message.headers or ()))
        except EnvelopeError as error:
            await dead_letter(message, error.reason)
            return
        event_token = current_event_id.set(event.id)
        regulation_token = current_regulation_id.set(event.regulation_id)
        try:
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
        finally:
            current_event_id.reset(event_token)
            current_regulation_id.reset(regulation_token)

    async def agent(stream):
        async for event in stream.events():
            await handle(event.message)

    return app.agent(source, name=f"{app.conf.id}-events")(agent)


async def run_app(app: faust.App, stop: asyncio.Event) -> None:
    """Runs the Faust app inside the service's event loop until `stop` is set; a service
    passes this to the runtime as background work, beside its gRPC server."""
    await app.start()
    try:
        await stop.wait()
    finally:
        await app.stop()
