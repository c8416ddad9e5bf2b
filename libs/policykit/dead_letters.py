"""Dead letters: reading a consumer group's dead-letter topic (policy.dlq.<group>) and replaying
records to the topics they came from, with their own key, value and headers, the dlq_*
headers removed. Consumers are idempotent by event id, so an event that was handled after all
is absorbed, and one that failed is handled anew. Operators use `policyctl dead-letters`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from kafka.consumer.fetcher import ConsumerRecord

from policykit.envelope import Headers
from policykit.kafka_io import (DLQ_CONSUMER_GROUP, DLQ_FAILED_AT, DLQ_REASON,
                                DLQ_SOURCE_OFFSET, DLQ_SOURCE_PARTITION, DLQ_SOURCE_TOPIC,
                                create_producer)
from policykit.topic_reader import TopicReader, header


@dataclass(frozen=True)
class Selection:
    """Which dead letters to take; None matches everything. Offsets are the dead-letter
    topic's own, so from_offset and to_offset go with a partition."""

    reason: re.Pattern | None = None
    source_topic: str | None = None
    partition: int | None = None
    from_offset: int | None = None
    to_offset: int | None = None

    def matches(self, record: ConsumerRecord) -> bool:
        if self.partition is not None and record.partition != self.partition:
            return False
        if self.to_offset is not None and record.offset > self.to_offset:
            return False
        if self.reason is not None and not self.reason.search(header(record, DLQ_REASON)):
            return False
        return self.source_topic is None or header(record, DLQ_SOURCE_TOPIC) == self.source_topic


def dead_letters(bootstrap_servers: str, topic: str, selection: Selection,
                 **consumer_overrides) -> list[ConsumerRecord]:
    """The selected records of a dead-letter topic, from its beginning (or the selection's
    from_offset) up to its end offsets as of now; read without a consumer group."""
    with TopicReader(bootstrap_servers, topic, selection.partition,
                     **consumer_overrides) as reader:
        if selection.from_offset is not None:
            reader.seek({tp: selection.from_offset for tp in reader.partitions})
        return [record for record in reader.records() if selection.matches(record)]


def describe(record: ConsumerRecord) -> dict[str, Any]:
    """Where a dead letter is, where it came from, which event it carries and why it failed."""

    def number(name: str) -> int | None:
        text = header(record, name)
        return int(text) if text.isdigit() else None

    return {
        "topic": record.topic, "partition": record.partition, "offset": record.offset,
        "failed_at": header(record, DLQ_FAILED_AT) or None,
        "consumer_group": header(record, DLQ_CONSUMER_GROUP) or None,
        "source_topic": header(record, DLQ_SOURCE_TOPIC) or None,
        "source_partition": number(DLQ_SOURCE_PARTITION),
        "source_offset": number(DLQ_SOURCE_OFFSET),
        "ce_type": header(record, "ce_type") or None,
        "ce_id": header(record, "ce_id") or None,
        "key": None if record.key is None else record.key.decode("utf-8", "replace"),
        "reason": header(record, DLQ_REASON),
    }


def replayable(record: ConsumerRecord) -> tuple[str, Headers]:
    """Returns the topic to re-produce to and the record's headers without the dlq_* ones;
    raises ValueError for a record that has no usable source topic."""
    source = header(record, DLQ_SOURCE_TOPIC)
    if not source:
        raise ValueError("no dlq_source_topic header")
    if source.startswith("policy.dlq.") or source.endswith(".dlq"):
        raise ValueError(f"source {source} is itself a dead-letter topic")
    return source, [(key, value) for key, value in record.headers or ()
                    if not key.startswith("dlq_")]


def replay(bootstrap_servers: str, records: Iterable[ConsumerRecord],
           **producer_overrides) -> Iterator[tuple[ConsumerRecord, str]]:
    """Re-produces each record to its source topic and yields it with that topic once the
    broker has stored it, so a replay cut short says how far it got. Every record must be
    replayable()."""
    producer = create_producer(bootstrap_servers, **{"client_id": "policy-replay",
                                                     **producer_overrides})
    try:
        for record in records:
            topic, headers = replayable(record)
            # Keyed like the original, so it lands on the regulation's partition and stays in
            # order with that regulation's later events.
            producer.send(topic, key=record.key, value=record.value,
                          headers=headers).get(timeout=30)
            yield record, topic
    finally:
        producer.close()
