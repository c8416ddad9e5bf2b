"""A faust-streaming agent on the real broker decodes the envelope and dead-letters what it
cannot decode, then goes on."""

import asyncio
import uuid

from policy.drafting.v1 import events_pb2 as drafting
from policykit import kafka_io
from policykit.envelope import new_event
from policykit.faust_io import add_event_agent, create_app
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
