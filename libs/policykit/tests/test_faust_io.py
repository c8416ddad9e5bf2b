"""A faust-streaming agent on the real broker decodes the envelope and dead-letters what it
cannot decode, then goes on; the app's consumer seeks back to the committed offsets, or to the
start of a partition with none."""

import asyncio
import uuid

import aiokafka

from policy.drafting.v1 import events_pb2 as drafting
from policykit import kafka_io
from policykit.envelope import new_event
from policykit.faust_io import add_event_agent, create_app, seek_to_committed_or_start
from policykit.kafka_io import create_producer, publish
from tests.support import read_topic


async def test_agent_handles_good_events_and_dead_letters_bad_ones(kafka_bootstrap, topic_name):
    producer = create_producer(kafka_bootstrap)
    publish(producer, topic_name, new_event(
        drafting.DraftRegistered(regulation_id="reg-f", title="Nghị định về đất trồng lúa"),
        "policy/test")).get(timeout=30)
    producer.send(topic_name, key=b"reg-f", value=b"\x08\x96\x01not an envelope").get(timeout=30)
    publish(producer, topic_name, new_event(
        drafting.DraftWithdrawn(regulation_id="reg-f", reason="Rút để sửa đổi"),
        "policy/test")).get(timeout=30)
    producer.close()

    handled = []
    done = asyncio.Event()

    async def handle(event):
        handled.append(event.type)
        if len(handled) == 2:
            done.set()

    app = create_app(f"faust-test-{uuid.uuid4().hex[:8]}", kafka_bootstrap)
    add_event_agent(app, [topic_name], f"{topic_name}.dlq", handle)
    await app.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=60)
    finally:
        await app.stop()

    assert handled == ["policy.drafting.v1.DraftRegistered", "policy.drafting.v1.DraftWithdrawn"]
    [dead] = read_topic(kafka_bootstrap, [f"{topic_name}.dlq"], lambda r: len(r) >= 1)
    headers = dict(dead.headers)
    assert headers[kafka_io.DLQ_REASON] == b"missing header ce_specversion"
    assert headers[kafka_io.DLQ_SOURCE_TOPIC] == topic_name.encode()
    assert dead.value == b"\x08\x96\x01not an envelope"


async def test_a_partition_without_a_committed_offset_is_sought_back_to_its_start(kafka_bootstrap,
                                                                               topic_name):
    """Faust seeks back to the committed offsets after throwing fetched records away (a
    rebalance suspended its flow): aiokafka leaves a partition with no committed offset, or 0,
    where the fetch left it, so those records were not read again until the next rebalance
    (the network fault test's intake event, 4 minutes late)."""
    producer = create_producer(kafka_bootstrap)
    for n in range(6):
        producer.send(topic_name, key=b"k", value=b"v", partition=n % 3).get(timeout=30)
    producer.close()
    consumer = aiokafka.AIOKafkaConsumer(
        topic_name, bootstrap_servers=kafka_bootstrap, group_id=f"seek-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        fetched = 0
        while fetched < 6:
            fetched += sum(map(len, (await consumer.getmany(timeout_ms=1000)).values()))
        first, second, third = partitions = sorted(consumer.assignment())
        await consumer.commit({first: 1, second: 0})  # the third has no committed offset

        async def positions() -> list[int]:
            return [await consumer.position(partition) for partition in partitions]

        await consumer.seek_to_committed()
        assert await positions() == [1, 2, 2]  # aiokafka's own: only offsets above 0
        committed = await seek_to_committed_or_start(consumer)
        assert committed == {first: 1, second: 0, third: None}
        assert await positions() == [1, 0, 0]
    finally:
        await consumer.stop()
