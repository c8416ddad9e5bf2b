"""A faust-streaming agent on the real broker decodes the envelope and dead-letters what it
cannot decode, then goes on; the app's consumer seeks back to the committed offsets, or to the
start of a partition with none; its fetches wait for more only while records keep coming."""

import asyncio
import uuid

import aiokafka

from policy.drafting.v1 import events_pb2 as drafting
from policykit import faust_io, kafka_io
from policykit.envelope import new_event
from policykit.faust_io import (add_event_agent, create_app, seek_to_committed_or_start,
                                wait_for_more_while_records_flow)
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
        fetcher = app.consumer._thread._consumer._fetcher
        assert fetcher._proc_fetch_request.__name__ == "fetch_then_choose_next_wait"
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


class _ScriptedFetcher:
    """Stands in for aiokafka's Fetcher: each fetch brings records or not, as scripted, and
    records the wait it was sent with."""

    def __init__(self, brings_records: list[bool]):
        self._fetch_min_bytes, self._fetch_max_wait_ms = 1, 1500
        self.brings_records = brings_records
        self.sent_with: list[tuple[int, int]] = []

    async def _proc_fetch_request(self, assignment, node_id, request) -> bool:
        self.sent_with.append((self._fetch_min_bytes, self._fetch_max_wait_ms))
        return self.brings_records.pop(0)


async def test_fetches_wait_for_more_only_after_a_fetch_that_brought_records():
    fetcher = _ScriptedFetcher([True, True, False, False, True, False])
    wait_for_more_while_records_flow(fetcher)
    for _ in range(6):
        await fetcher._proc_fetch_request(None, 0, None)
    flowing = (faust_io.FLOWING_FETCH_MIN_BYTES, faust_io.FLOWING_FETCH_MAX_WAIT_MS)
    idle = (1, 1500)
    assert fetcher.sent_with == [idle, flowing, flowing, idle, idle, flowing]
