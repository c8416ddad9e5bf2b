"""Kafka I/O with kafka-python: an idempotent producer, and a consumer that routes what it
cannot decode or handle to its group's dead-letter topic and keeps going.

Delivery is at-least-once: offsets are committed after handling, and handlers are made
idempotent by the inbox (policykit.outbox.first_delivery), not by Kafka transactions."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Callable, Iterator

from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from policykit import metrics
from policykit.envelope import EnvelopeError, Event, Headers, from_record, to_record
from policykit.jsonlog import current_event_id, current_event_type, current_regulation_id
from policykit.kafka_security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)

# Dead-letter headers; the record's own key, value and headers are kept as they came.
DLQ_REASON = "dlq_reason"
DLQ_SOURCE_TOPIC = "dlq_source_topic"
DLQ_SOURCE_PARTITION = "dlq_source_partition"
DLQ_SOURCE_OFFSET = "dlq_source_offset"
DLQ_CONSUMER_GROUP = "dlq_consumer_group"
DLQ_FAILED_AT = "dlq_failed_at"


class RejectedEvent(Exception):
    """Raised by a handler for an event that decodes but can never be handled (invalid
    content): it is dead-lettered at once instead of retried."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def failure_verdict(error: Exception, attempt: int, max_attempts: int, topic: str) -> str | None:
    """Decides what a handler failure means: the dead-letter reason when the event must be
    parked (rejected, or still failing after max_attempts), None when it is worth a retry."""
    if isinstance(error, RejectedEvent):
        return error.reason
    metrics.EVENT_HANDLER_RETRIES.labels(topic).inc()
    log.warning("handling failed (attempt %d/%d): %s", attempt, max_attempts, error,
                exc_info=attempt == max_attempts)
    if attempt >= max_attempts:
        return f"handler failed {attempt} times: {type(error).__name__}: {error}"
    return None


@contextmanager
def event_scope(event: Event) -> Iterator[None]:
    """Names the event being handled, for the logs and the audit log (policykit.jsonlog),
    while it is applied."""
    tokens = [(var, var.set(value)) for var, value in (
        (current_event_id, event.id), (current_event_type, event.type),
        (current_regulation_id, event.regulation_id))]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def create_producer(bootstrap_servers: str, security: KafkaSecurity = PLAINTEXT,
                    **overrides) -> KafkaProducer:
    """Returns a producer that waits for all in-sync replicas and never duplicates on retry."""
    settings = dict(bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True,
                    linger_ms=5, retries=2**31 - 1, max_in_flight_requests_per_connection=5,
                    client_id="policykit", **security.client_settings())
    settings.update(overrides)
    return KafkaProducer(**settings)


def publish(producer: KafkaProducer, topic: str, event: Event):
    """Sends the event keyed by its regulation; returns the send future."""
    key, value, headers = to_record(event)
    return producer.send(topic, key=key, value=value, headers=headers)


def dead_letter_headers(headers: Headers | None, reason: str, topic: str, partition: int,
                        offset: int, group: str) -> Headers:
    """Returns the record's own headers plus the dead-letter ones saying why and from where."""
    kept = [(k, v) for k, v in (headers or ()) if not k.startswith("dlq_")]
    return kept + [
        (DLQ_REASON, reason.encode("utf-8")),
        (DLQ_SOURCE_TOPIC, topic.encode()),
        (DLQ_SOURCE_PARTITION, str(partition).encode()),
        (DLQ_SOURCE_OFFSET, str(offset).encode()),
        (DLQ_CONSUMER_GROUP, group.encode()),
        (DLQ_FAILED_AT, datetime.now(timezone.utc).isoformat().encode()),
    ]


class EventConsumer:
    """Consumes lifecycle topics for one consumer group and calls `handler` with each decoded
    event. Undecodable records, rejected events and events whose handler keeps failing go to
    the group's dead-letter topic with the reason; the consumer then moves on."""

    def __init__(self, bootstrap_servers: str, group: str, topics: list[str],
                 dead_letter_topic: str, handler: Callable[[Event], None], *,
                 producer: KafkaProducer | None = None, max_attempts: int = 5,
                 retry_backoff_s: float = 0.5, security: KafkaSecurity = PLAINTEXT,
                 **consumer_overrides):
        self.group = group
        self.dead_letter_topic = dead_letter_topic
        self.handler = handler
        self.max_attempts = max_attempts
        self.retry_backoff_s = retry_backoff_s
        self._own_producer = producer is None
        self.producer = producer or create_producer(bootstrap_servers, security)
        settings = dict(bootstrap_servers=bootstrap_servers, group_id=group,
                        enable_auto_commit=False, auto_offset_reset="earliest",
                        client_id=f"policykit-{group}", **security.client_settings())
        settings.update(consumer_overrides)
        self.consumer = KafkaConsumer(*topics, **settings)

    def poll_once(self, timeout_ms: int = 500) -> int:
        """Handles one batch of records and commits it; returns how many were processed."""
        batches = self.consumer.poll(timeout_ms=timeout_ms)
        count = 0
        for records in batches.values():
            for record in records:
                self._process(record)
                count += 1
        if count:
            self.producer.flush()  # dead letters are durable before their offsets are committed
            self.consumer.commit()
        return count

    def run(self, stop: threading.Event) -> None:
        """Polls until `stop` is set."""
        while not stop.is_set():
            self.poll_once()

    def close(self) -> None:
        self.consumer.close()
        if self._own_producer:
            self.producer.close()

    def _process(self, record: ConsumerRecord) -> None:
        try:
            event = from_record(record.key, record.value, record.headers)
        except EnvelopeError as error:
            self._dead_letter(record, error.reason)
            return
        with event_scope(event):
            for attempt in range(1, self.max_attempts + 1):
                try:
                    self.handler(event)
                    metrics.EVENTS_CONSUMED.labels(record.topic, event.type).inc()
                    return
                except Exception as error:
                    reason = failure_verdict(error, attempt, self.max_attempts, record.topic)
                    if reason is not None:
                        self._dead_letter(record, reason)
                        return
                    time.sleep(self.retry_backoff_s * attempt)

    def _dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        log.error("dead-lettering %s[%d]@%d: %s", record.topic, record.partition,
                  record.offset, reason)
        headers = dead_letter_headers(record.headers, reason, record.topic, record.partition,
                                      record.offset, self.group)
        self.producer.send(self.dead_letter_topic, key=record.key, value=record.value,
                           headers=headers).get(timeout=30)
        metrics.EVENTS_DEAD_LETTERED.labels(record.topic, self.dead_letter_topic).inc()
