"""Migrations and topic creation against the real servers."""

import asyncio

import asyncpg
import pytest

from policykit import db
from policykit.topics import TopicSpec, ensure_topics, load


async def test_migrations_apply_once_and_refuse_edits(database_url, schema_name, tmp_path):
    service = tmp_path / "svc" / "migrations"
    service.mkdir(parents=True)
    (service / "0001_things.sql").write_text("CREATE TABLE things (name text);")
    applied = await db.migrate(database_url, schema_name, [service])
    shared = sorted(f"policykit/{path.name}" for path in db.SHARED_MIGRATIONS.glob("*.sql"))
    assert "policykit/0001_outbox_inbox.sql" in shared
    assert applied == [*shared, "svc/0001_things.sql"]
    assert await db.migrate(database_url, schema_name, [service]) == []

    (service / "0001_things.sql").write_text("CREATE TABLE things (name text, extra int);")
    with pytest.raises(db.MigrationError, match="svc/0001_things.sql was changed"):
        await db.migrate(database_url, schema_name, [service])


async def test_pool_is_bound_to_the_schema_and_keeps_vietnamese(database_url, schema_name):
    await db.migrate(database_url, schema_name, [])
    pool = await db.create_pool(database_url, schema_name)
    try:
        title = "Luật Đất đai (sửa đổi): lấy ý kiến Nhân dân"
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE notes (body text)")
            await conn.execute("INSERT INTO notes VALUES ($1)", title)
            assert (await conn.fetchval("SELECT body FROM notes")).encode() == title.encode()
            assert await conn.fetchval("SELECT to_regclass('outbox')::text") == "outbox"
    finally:
        await pool.close()


async def test_a_connection_given_back_mid_transaction_returns_rolled_back(database_url,
                                                                         schema_name):
    # The pool skips asyncpg's reset query (db._keep_session); the rollback must remain.
    await db.migrate(database_url, schema_name, [])
    pool = await db.create_pool(database_url, schema_name, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE notes (body text)")
        conn = await pool.acquire()
        await conn.transaction().start()
        await conn.execute("INSERT INTO notes VALUES ('bỏ dở')")
        await pool.release(conn)
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM notes") == 0
    finally:
        await pool.close()


async def test_work_done_meanwhile_returns_with_the_statements_answer(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        done = []
        answer, made = await db.meanwhile(
            conn.fetchval("SELECT $1::text || ' đã lưu'", "Thông tư"),
            lambda: done.append("việc") or len(done))
        assert (answer, made, done) == ("Thông tư đã lưu", 1, ["việc"])

        # Work that fails still waits for the statement: the connection is free afterwards.
        with pytest.raises(ZeroDivisionError):
            await db.meanwhile(conn.execute("SELECT pg_sleep(0.05)"), lambda: 1 / 0)
        assert await conn.fetchval("SELECT 1") == 1

        # A caller cancelled while the statement runs gets the connection back free.
        call = asyncio.ensure_future(db.meanwhile(conn.execute("SELECT pg_sleep(0.05)"),
                                                  lambda: None))
        await asyncio.sleep(0)  # the call has sent its statement
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert await conn.fetchval("SELECT 2") == 2

        # A statement that fails fails the call, once the work is done.
        done.clear()
        with pytest.raises(asyncpg.UndefinedTableError):
            await db.meanwhile(conn.fetch("SELECT * FROM no_such_table"),
                               lambda: done.append("việc"))
        assert done == ["việc"]
    finally:
        await conn.close()


@pytest.mark.parametrize("texts", [[], [""], ["", ""], ["Thông tư"],
                                   ["Nghị định 01/2026/NĐ-CP", "", "dòng một\ndòng hai\t,"]])
async def test_a_text_list_comes_back_as_the_same_texts(database_url, texts):
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval(f"SELECT {db.split_text_list('$1')}",
                                   db.text_list(texts)) == texts
    finally:
        await conn.close()


def test_a_text_holding_the_separator_is_refused_from_a_text_list():
    with pytest.raises(ValueError, match="U\\+001F"):
        db.text_list(["Luật", "tách\x1fđôi"])


def test_declared_topics_are_created_idempotently(kafka_bootstrap):
    from kafka.admin import KafkaAdminClient

    declaration = load()
    extra = TopicSpec(name="test.topics-idempotent", partitions=2, replication_factor=3,
                      min_insync_replicas=2, retention_ms=60_000, cleanup_policy="delete",
                      description="")
    ensure_topics(kafka_bootstrap, declaration, [extra])
    assert ensure_topics(kafka_bootstrap, declaration, [extra]) == []
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        existing = set(admin.list_topics())
        assert set(declaration.topics) <= existing
        assert {"policy.dlq.communication", "policy.dlq.evaluation"} <= existing
        [described] = admin.describe_topics(["test.topics-idempotent"])
        assert len(described["partitions"]) == 2
    finally:
        admin.close()


def test_every_consumer_group_has_a_dead_letter_topic():
    declaration = load()
    for group in declaration.consumes:
        assert declaration.dead_letter_topic(group) in declaration.topics
