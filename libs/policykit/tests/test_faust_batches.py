"""A faust-streaming agent taking batches on the real broker: a batch that fails is handled
event by event, so a poison event is dead-lettered alone and the others are applied once."""

import asyncio
import uuid

from policy.drafting.v1 import events_pb2 as drafting
from policykit import kafka_io
from policykit.envelope import new_event
from policykit.faust_io import add_event_agent, create_app
from policykit.jsonlog import current_event_id
from policykit.kafka_io import RejectedEvent, create_producer, publish
from tests.support import read_topic

POISON = "Dự thảo không hợp lệ"


async def test_a_poison_event_is_dead_lettered_alone_and_the_others_applied_once(
        kafka_bootstrap, topic_name):
    events = [new_event(drafting.DraftRevised(regulation_id=f"reg-{n % 3}",
                                              title=POISON if n == 4 else f"Dự thảo lần {n}"),
                        "policy/test") for n in range(9)]
    producer = create_producer(kafka_bootstrap)
    for event in events:
        publish(producer, topic_name, event)
    producer.flush(timeout=30)
    producer.close()

    applied: list[str] = []
    batches: list[int] = []
    named: list[str | None] = []
    done = asyncio.Event()

    def apply(event) -> None:
        if event.payload.title == POISON:
            raise RejectedEvent("tiêu đề không hợp lệ")
        applied.append(event.id)
        if len(applied) == len(events) - 1:
            done.set()

    async def handle(event) -> None:
        named.append(current_event_id.get())
        apply(event)

    async def handle_batch(batch) -> None:
        batches.append(len(batch))
        await asyncio.sleep(0.2)  # a transaction's time, while the next records queue up
        for event in batch:  # all or none, as in one transaction
            if event.payload.title == POISON:
                raise RejectedEvent("tiêu đề không hợp lệ")
        for event in batch:
            apply(event)

    app = create_app(f"faust-test-{uuid.uuid4().hex[:8]}", kafka_bootstrap)
    add_event_agent(app, [topic_name], f"{topic_name}.dlq", handle, batch_handler=handle_batch)
    await app.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=60)
        # Every other event applied and the poison one dead-lettered: the batch is fully
        # handled, so anything applied twice would already show.
        [dead] = await asyncio.to_thread(read_topic, kafka_bootstrap, [f"{topic_name}.dlq"],
                                         lambda r: len(r) >= 1)
    finally:
        await app.stop()

    assert sorted(applied) == sorted(e.id for e in events if e.payload.title != POISON)
    assert sum(batches) >= len(events) and len(batches) < len(events)
    assert events[4].id in named, "the failed batch's events were handled one by one"
    assert dict(dead.headers)[kafka_io.DLQ_REASON] == "tiêu đề không hợp lệ".encode()
    assert dict(dead.headers)["ce_id"] == events[4].id.encode()
