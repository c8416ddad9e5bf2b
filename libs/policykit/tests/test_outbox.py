"""The transactional outbox and the inbox against real PostgreSQL and Kafka."""

import functools
import os
import signal
import subprocess
import sys

import pytest
from aiokafka.errors import KafkaTimeoutError

from policy.drafting.v1 import events_pb2 as drafting
from policykit import db
from policykit.envelope import from_record, new_event
from policykit.outbox import (OutboxError, OutboxRelay, create_relay_producer, enqueue,
                              enqueue_many, first_delivery)
from tests.support import PYTHONPATH, REPO, read_topic, topic_size


def event(regulation_id: str, title: str = "Thông tư hướng dẫn"):
    return new_event(drafting.DraftRevised(regulation_id=regulation_id, title=title), "policy/test")


@pytest.fixture
async def pool(database_url, schema_name):
    await db.migrate(database_url, schema_name, [])
    pool = await db.create_pool(database_url, schema_name)
    yield pool
    await pool.close()


async def test_rolled_back_rows_are_never_published_committed_ones_once(
        pool, schema_name, kafka_bootstrap, topic_name):
    rolled_back, committed = event("reg-1"), event("reg-1")
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, topic_name, rolled_back)
            raise RuntimeError("the state change failed")
    async with pool.acquire() as conn, conn.transaction():
        await enqueue(conn, topic_name, committed)

    relay = OutboxRelay(pool, functools.partial(create_relay_producer, kafka_bootstrap),
                        schema_name)
    assert await relay.publish_batch() == 1
    assert await relay.publish_batch() == 0
    await relay.close()

    assert topic_size(kafka_bootstrap, topic_name) == 1
    records = read_topic(kafka_bootstrap, [topic_name], lambda r: len(r) >= 1)
    assert [from_record(r.key, r.value, r.headers).id for r in records] == [committed.id]


async def test_a_pass_kafka_did_not_acknowledge_leaves_its_rows_for_the_next(
        pool, schema_name, kafka_bootstrap, topic_name):
    written = [event("reg-unacknowledged"), event("reg-unacknowledged")]
    async with pool.acquire() as conn, conn.transaction():
        await enqueue_many(conn, topic_name, written)
    relay = OutboxRelay(pool, functools.partial(create_relay_producer, kafka_bootstrap),
                        schema_name)

    async def refused(rows):
        raise KafkaTimeoutError("no acknowledgement")
    relay._send = refused
    with pytest.raises(KafkaTimeoutError):
        await relay.publish_batch()
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 2
    del relay._send
    assert await relay.publish_batch() == 2
    await relay.close()

    records = read_topic(kafka_bootstrap, [topic_name], lambda r: len(r) >= 2)
    assert [from_record(r.key, r.value, r.headers).id for r in records] == [
        e.id for e in written]


async def test_enqueue_outside_a_transaction_is_refused(pool, topic_name):
    async with pool.acquire() as conn:
        with pytest.raises(OutboxError):
            await enqueue(conn, topic_name, event("reg-1"))


async def test_relay_killed_mid_batch_leaves_no_gap_and_the_inbox_absorbs_resends(
        pool, schema_name, database_url, kafka_bootstrap, topic_name):
    written = [event(f"reg-{i % 17}", f"Dự thảo số {i}") for i in range(3000)]
    async with pool.acquire() as conn, conn.transaction():
        for e in written:
            await enqueue(conn, topic_name, e)

    env = {**os.environ, "PYTHONPATH": PYTHONPATH, "DATABASE_URL": database_url,
           "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    command = [sys.executable, "-m", "policykit.outbox", "--schema", schema_name,
               "--batch-size", "50"]
    relay = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    read_topic(kafka_bootstrap, [topic_name], lambda r: len(r) >= 500)
    relay.send_signal(signal.SIGKILL)
    relay.wait()
    async with pool.acquire() as conn:
        unsent = await conn.fetchval("SELECT count(*) FROM outbox")
    assert unsent > 0, "the relay finished before it was killed; the test proved nothing"

    finished = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=120)
    assert finished.returncode == 0, finished.stdout + finished.stderr

    def every_id_seen(records):
        return len({dict(r.headers)["ce_id"] for r in records}) >= len(written)

    records = read_topic(kafka_bootstrap, [topic_name], every_id_seen)
    received = [from_record(r.key, r.value, r.headers) for r in records]
    assert {e.id for e in received} == {e.id for e in written}  # no gap

    # Per regulation, the order written is the order published.
    for regulation in {e.regulation_id for e in written}:
        wanted = [e.id for e in written if e.regulation_id == regulation]
        seen = list(dict.fromkeys(e.id for e in received if e.regulation_id == regulation))
        assert seen == wanted

    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE applied (event_id text PRIMARY KEY)")
        for e in received + received[:100]:  # every re-send, plus a redelivery of 100
            async with conn.transaction():
                if await first_delivery(conn, "test-consumer", e):
                    await conn.execute("INSERT INTO applied VALUES ($1)", e.id)
        assert await conn.fetchval("SELECT count(*) FROM applied") == len(written)


async def test_a_pass_of_several_record_batches_a_partition_keeps_each_regulations_order(
        pool, schema_name, kafka_bootstrap, topic_name):
    """One pass hands its rows over as record batches, several a partition here (a 16 KiB
    batch holds a few dozen of these events): each regulation's events reach its partition in
    the order written, once each."""
    written = [event(f"reg-{i % 7}", f"Dự thảo số {i} " + "nội dung " * 20) for i in range(900)]
    async with pool.acquire() as conn, conn.transaction():
        await enqueue_many(conn, topic_name, written)
    relay = OutboxRelay(pool, functools.partial(create_relay_producer, kafka_bootstrap,
                                                max_batch_size=16 * 1024),
                        schema_name, batch_size=1000)
    assert await relay.publish_batch() == len(written)
    await relay.close()

    records = read_topic(kafka_bootstrap, [topic_name], lambda r: len(r) >= len(written))
    assert len(records) == len(written)
    for regulation in {e.regulation_id for e in written}:
        published = [from_record(r.key, r.value, r.headers) for r in records
                     if r.key == regulation.encode()]
        assert len({r.partition for r in records if r.key == regulation.encode()}) == 1
        assert [e.id for e in published] == [e.id for e in written
                                             if e.regulation_id == regulation]
        assert published[0].payload.title.startswith("Dự thảo số")


def test_the_relay_partitions_by_key_as_kafkas_default_partitioner():
    """A regulation's events go to the partition any Kafka client would choose for its key."""
    from aiokafka.partitioner import DefaultPartitioner

    from policykit.outbox import _partition_by_key

    default = DefaultPartitioner()
    for count in (1, 3, 6, 12):
        partitions = list(range(count))
        for n in range(500):
            key = f"reg-{n}-dự-thảo".encode()
            assert _partition_by_key(key, partitions, partitions) == default(key, partitions,
                                                                             partitions)


async def test_a_relay_that_cannot_take_the_lock_says_so_once_rows_wait(
        pool, schema_name, kafka_bootstrap, topic_name, caplog):
    async with pool.acquire() as conn, conn.transaction():
        await enqueue(conn, topic_name, event("reg-stall"))
    relay = OutboxRelay(pool, functools.partial(create_relay_producer, kafka_bootstrap),
                        schema_name)
    relay.stall_warning_s = 0.0
    async with pool.acquire() as other, other.transaction():
        # Another replica's relay holding the schema's lock for the length of its pass.
        await other.execute("SELECT pg_advisory_xact_lock($1)", relay._lock_id)
        assert await relay._publish_and_measure() == 0
    assert "outbox: 1 row(s) unsent" in caplog.text
    assert await relay._publish_and_measure() == 1
    await relay.close()


async def test_the_backlog_is_the_unsent_rows_and_the_age_of_the_next(
        pool, schema_name, kafka_bootstrap, topic_name):
    relay = OutboxRelay(pool, functools.partial(create_relay_producer, kafka_bootstrap),
                        schema_name)
    assert await relay.backlog() == (0, 0.0)
    async with pool.acquire() as conn, conn.transaction():
        for n in range(3):
            await enqueue(conn, topic_name, event(f"reg-backlog-{n}"))
    rows, age = await relay.backlog()
    assert rows == 3 and 0 <= age < 60
    assert await relay._publish_and_measure() == 3
    assert await relay.backlog() == (0, 0.0)
    await relay.close()
