"""The consultation outbox's relay in-process, against the session's PostgreSQL and Kafka: a
round Kafka did not take leaves its rows unsent, with their payloads, for the next."""

import uuid
from datetime import datetime, timezone

import pytest

from policy.consultation.v1 import events_pb2 as events
from policykit.envelope import from_record
from policykit.kafka_security import PLAINTEXT
from services.consultation import outbox
from services.consultation.intake import COMMENT_RECEIVED
from tests.support import read_topic


async def test_a_round_kafka_did_not_take_is_published_whole_by_the_next(
        pool, schema_name, platform_topics):
    regulation_id = f"reg-relay-{uuid.uuid4().hex[:8]}"
    comments = [events.CommentReceived(regulation_id=regulation_id, article_ref=f"Điều {n}.2")
                for n in range(3)]
    ids = [uuid.uuid4() for _ in comments]
    async with pool.acquire() as conn, conn.transaction():
        await outbox.enqueue_batch(conn, regulation_id, None, COMMENT_RECEIVED,
                                   datetime.now(timezone.utc), ids,
                                   [c.SerializeToString() for c in comments])
    relay = outbox.EventRelay(pool, platform_topics, schema=schema_name, security=PLAINTEXT)
    await relay.start()
    try:
        async def refused(topic):
            raise ConnectionError("the broker went away")
        relay.producer.partitions_for = refused
        with pytest.raises(ConnectionError):
            await relay.publish_pending()
        assert await relay.backlog() == 3
        del relay.producer.partitions_for
        assert await relay.publish_pending() == 3
        assert await relay.backlog() == 0
    finally:
        await relay.stop()

    def ours(records):
        return [r for r in records if r.key == regulation_id.encode()]
    records = ours(read_topic(platform_topics, [outbox.TOPIC], lambda r: len(ours(r)) >= 3))
    received = [from_record(r.key, r.value, r.headers) for r in records]
    assert [e.id for e in received] == [str(i) for i in ids]
    assert [e.payload.article_ref for e in received] == [c.article_ref for c in comments]
