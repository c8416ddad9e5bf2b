"""Kafka I/O against the real broker: the envelope round trip, and dead-lettering."""

from policy.drafting.v1 import events_pb2 as drafting
from policykit import kafka_io
from policykit.envelope import new_event
from policykit.kafka_io import EventConsumer, RejectedEvent, create_producer, publish
from tests.support import read_topic

TITLE = "Luật Đất đai (sửa đổi): lấy ý kiến Nhân dân"


def draft(regulation_id: str, title: str = TITLE):
    return new_event(drafting.DraftRegistered(regulation_id=regulation_id, title=title),
                     "policy/test")


def test_event_round_trip_keeps_vietnamese_byte_for_byte(kafka_bootstrap, topic_name):
    producer = create_producer(kafka_bootstrap)
    sent = draft("reg-roundtrip")
    publish(producer, topic_name, sent).get(timeout=30)
    producer.close()

    received = []
    consumer = EventConsumer(kafka_bootstrap, "roundtrip", [topic_name], "unused.dlq",
                             received.append)
    try:
        while not received:
            consumer.poll_once()
    finally:
        consumer.close()

    [event] = received
    assert event == sent
    assert event.payload.title.encode("utf-8") == TITLE.encode("utf-8")


def test_undecodable_record_is_dead_lettered_and_the_consumer_goes_on(
        kafka_bootstrap, topic_name):
    dlq = f"{topic_name}.dlq"
    producer = create_producer(kafka_bootstrap)
    publish(producer, topic_name, draft("reg-a", "trước")).get(timeout=30)
    key, value, headers = kafka_io.to_record(draft("reg-a", "hỏng"))
    producer.send(topic_name, key=key, value=b"\xff\x00garbage", headers=headers).get(timeout=30)
    producer.send(topic_name, key=b"reg-a", value=b"no headers at all").get(timeout=30)
    rejected = draft("reg-a", "bị từ chối")
    publish(producer, topic_name, rejected).get(timeout=30)
    publish(producer, topic_name, draft("reg-a", "sau")).get(timeout=30)
    producer.close()

    def handle(event):
        if event.id == rejected.id:
            raise RejectedEvent("title is not acceptable")
        handled.append(event.payload.title)

    handled = []
    consumer = EventConsumer(kafka_bootstrap, "dlq-test", [topic_name], dlq, handle)
    try:
        while len(handled) < 2:
            consumer.poll_once()
    finally:
        consumer.close()
    assert handled == ["trước", "sau"]

    dead = read_topic(kafka_bootstrap, [dlq], lambda records: len(records) >= 3)
    reasons = [dict(r.headers)[kafka_io.DLQ_REASON].decode() for r in dead]
    assert "payload is not a valid policy.drafting.v1.DraftRegistered" in reasons[0]
    assert reasons[1] == "missing header ce_specversion"
    assert reasons[2] == "title is not acceptable"
    first = dict(dead[0].headers)
    assert first[kafka_io.DLQ_SOURCE_TOPIC] == topic_name.encode()
    assert first[kafka_io.DLQ_CONSUMER_GROUP] == b"dlq-test"
    assert int(first[kafka_io.DLQ_SOURCE_OFFSET]) == 1
    assert first[kafka_io.DLQ_SOURCE_PARTITION].isdigit()
    assert dead[0].value == b"\xff\x00garbage"  # the original bytes, for replay


def test_a_handler_that_keeps_failing_parks_the_event(kafka_bootstrap, topic_name):
    dlq = f"{topic_name}.dlq"
    producer = create_producer(kafka_bootstrap)
    publish(producer, topic_name, draft("reg-b", "lỗi")).get(timeout=30)
    publish(producer, topic_name, draft("reg-b", "ổn")).get(timeout=30)
    producer.close()
    handled = []

    def handle(event):
        if event.payload.title == "lỗi":
            raise ConnectionError("database unreachable")
        handled.append(event.payload.title)

    consumer = EventConsumer(kafka_bootstrap, "retry-test", [topic_name], dlq, handle,
                             max_attempts=3, retry_backoff_s=0.01)
    try:
        while not handled:
            consumer.poll_once()
    finally:
        consumer.close()
    [dead] = read_topic(kafka_bootstrap, [dlq], lambda records: len(records) >= 1)
    assert dict(dead.headers)[kafka_io.DLQ_REASON] == (
        b"handler failed 3 times: ConnectionError: database unreachable")
