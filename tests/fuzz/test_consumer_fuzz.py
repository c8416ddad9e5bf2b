"""Every topic the services consume (topics.yaml) gets random and mutated records — random
bytes, sound envelopes with a header dropped or replaced (a wrong ce_type among them), a
carried type with a garbage payload, payloads of the carried types with hostile text and
numbers — then one valid event. Every consumer group of the topic, on the running services:

- dead-letters each record its decoder refuses, on policy.dlq.<group>, with the decoder's
  reason as dlq_reason;
- handles or rejects with a reason each record it decodes: no handler fails on one;
- moves on: it commits past every record, and handles the valid event after them;

and every service is still serving."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

import pytest
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2
from hypothesis import assume, example, given
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient

from policykit.envelope import EnvelopeError, from_record, new_event, to_record
from policykit.reference import default as reference_data
from policykit.text import has_control_characters
from policykit.topics import load as load_topics
from services.evaluation.delivery import TOPIC as DELIVERY_TOPIC
from services.evaluation.delivery import ReportReader
from services.evaluation.units import Units
from tests.fuzz import seeds, strategies
from tests.fuzz.messages import delivery_record
from tests.fuzz.profiles import examples
from tests.support import eventually, health_status

DECLARATION = load_topics()
# Each consumed topic, with its consumer groups and the Kafka group id each reads it under.
CONSUMERS = {topic: [(group, DECLARATION.kafka_group_id(group, topic))
                     for group, consumed in DECLARATION.consumes.items() if topic in consumed]
             for topic in sorted({t for topics in DECLARATION.consumes.values() for t in topics})}
DELIVERY_READER = ReportReader(Units(reference_data()))
HANDLER_FAILED = "handler failed"


@dataclass(frozen=True)
class Sent:
    topic: str
    partition: int
    offset: int
    record: tuple  # key, value, headers


def refusal(topic: str, record: tuple) -> str | None:
    """The reason the topic's consumers' decoder refuses the record, None when it decodes.
    Delivery reports are read by services/evaluation/delivery.py, the rest by from_record."""
    try:
        if topic == DELIVERY_TOPIC:
            DELIVERY_READER.read(delivery_record(*record))
        else:
            from_record(*record)
    except EnvelopeError as error:
        return error.reason
    return None


def stops_the_delivery_path(record: tuple) -> bool:
    """Reports delivery.py counts but cannot store, which would stop the path for good: a
    regulation id with control characters or too long for an index, a day past year 9999,
    sums past bigint. Filtered out here until delivery.py refuses them (test_decoders)."""
    try:
        (regulation_id, _, _, day), reach = DELIVERY_READER.read(delivery_record(*record))
    except EnvelopeError:
        return False
    return (has_control_characters(regulation_id) or len(regulation_id.encode()) > 1000
            or not date.min.toordinal() <= date(1970, 1, 1).toordinal() + day
            <= date.max.toordinal() or abs(reach) > 2**40)


def records_for(topic: str):
    sound = strategies.sound_records(strategies.events(
        strategies.event_types(DECLARATION.topics[topic].carries)))
    return strategies.random_records | sound | strategies.mutated_records(sound)


@pytest.fixture(scope="module")
def producer(platform_topics):
    producer = KafkaProducer(bootstrap_servers=platform_topics, acks="all")
    yield producer
    producer.close()


def send(producer: KafkaProducer, topic: str, record: tuple) -> Sent:
    key, value, headers = record
    # kafka-python sends no record without both a key and a value, and a null header value as
    # an empty one: the record the consumers see.
    if key is None and value is None:
        value = b""
    record = key, value, [(name, raw or b"") for name, raw in headers]
    metadata = producer.send(topic, key=key, value=value, headers=record[2]).get(timeout=30)
    return Sent(topic, metadata.partition, metadata.offset, record)


@dataclass(frozen=True)
class Produced:
    before: dict[TopicPartition, int]  # where the consumed topics ended before
    garbage: list[Sent]
    valid: list[Sent]


@pytest.fixture(scope="module")
def sent(platform, platform_topics, producer) -> Produced:
    """The records produced to every consumed topic, and after them the valid events."""
    before = end_offsets(platform_topics, CONSUMERS)
    garbage: list[Sent] = []
    def sound_events() -> dict[str, Message]:
        return seeds.events(f"fuzz-{uuid.uuid4().hex[:12]}", str(uuid.uuid4()))
    edged = sound_events()
    for topic in CONSUMERS:
        @examples(30)
        @given(record=records_for(topic))
        def produce(record):
            assume(topic != DELIVERY_TOPIC or not stops_the_delivery_path(record))
            garbage.append(send(producer, topic, record))
        for record in strategies.edge_records(edged[topic]):
            produce = example(record)(produce)
        produce()
    valid = [send(producer, topic, to_record(new_event(payload, "policy/fuzz")))
             for topic, payload in sound_events().items()]
    return Produced(before, garbage, valid)


def end_offsets(bootstrap: str, topics) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return consumer.end_offsets([TopicPartition(topic, partition) for topic in topics
                                     for partition in consumer.partitions_for_topic(topic)])
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def dead_letters(platform_topics, sent) -> dict[tuple[str, str, int, int], str]:
    """Once every consumer group committed past what was sent: the reason of each dead
    letter, by (group, source topic, partition, offset)."""
    ends = end_offsets(platform_topics, CONSUMERS)  # past what was sent
    admin = KafkaAdminClient(bootstrap_servers=platform_topics)
    try:
        for topic, consumers in CONSUMERS.items():
            for group, group_id in consumers:
                def behind() -> list:
                    committed = admin.list_group_offsets({group_id: None})[group_id]
                    return [tp for tp, end in ends.items() if tp.topic == topic
                            and (committed[tp].offset if tp in committed else 0) < end]
                eventually(lambda: not behind(), timeout=180,
                           what=f"{group} to commit past {topic}")
    finally:
        admin.close()
    topics = [DECLARATION.dead_letter_topic(group) for group in DECLARATION.consumes]
    found = {}
    for record in every_record(platform_topics, topics):
        # The record's own headers are kept as they came, garbage among them.
        headers = {name: raw.decode() for name, raw in record.headers if name.startswith("dlq_")}
        if "dlq_source_topic" in headers:
            found[(headers["dlq_consumer_group"], headers["dlq_source_topic"],
                   int(headers["dlq_source_partition"]), int(headers["dlq_source_offset"]))] = \
                headers.get("dlq_reason", "")
    return found


def every_record(bootstrap: str, topics: list[str]) -> list:
    """Every record of the topics, read to their current ends."""
    ends = end_offsets(bootstrap, topics)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        consumer.assign(list(ends))
        consumer.seek_to_beginning(*ends)
        records = []
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def test_every_refused_record_is_dead_lettered_by_each_consumer_with_the_reason(
        sent, dead_letters):
    missing = [f"{group} {s.topic}[{s.partition}]@{s.offset}: expected {reason!r}, got "
               f"{dead_letters.get((group, s.topic, s.partition, s.offset))!r}"
               for s in sent.garbage if (reason := refusal(s.topic, s.record))
               for group, _ in CONSUMERS[s.topic]
               if dead_letters.get((group, s.topic, s.partition, s.offset)) != reason]
    assert not missing, "\n".join(missing[:20])
    assert any(refusal(s.topic, s.record) for s in sent.garbage)


def test_no_handler_fails_on_what_it_consumed(sent, dead_letters):
    """Neither on the records sent nor on what the services made of them meanwhile."""
    failed = [f"{key}: {reason}" for key, reason in dead_letters.items()
              if reason.startswith(HANDLER_FAILED)
              and key[3] >= sent.before.get(TopicPartition(key[1], key[2]), 0)]
    assert not failed, "\n".join(failed[:20])


def test_a_valid_event_after_the_garbage_is_handled_by_every_consumer(sent, dead_letters):
    valid = sent.valid
    parked = [f"{group} {s.topic}: {dead_letters[(group, s.topic, s.partition, s.offset)]}"
              for s in valid for group, _ in CONSUMERS[s.topic]
              if (group, s.topic, s.partition, s.offset) in dead_letters]
    assert not parked, "\n".join(parked)


def test_every_service_still_serves_after_the_garbage(platform, dead_letters):
    for name, service in platform.items():
        assert service.process.poll() is None, f"{name} exited:\n{service.log.read_text()[-3000:]}"
        assert health_status(service.grpc_target) == health_pb2.HealthCheckResponse.SERVING
