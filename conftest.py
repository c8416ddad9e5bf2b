"""Fixtures every test suite shares: a real Kafka broker and a real PostgreSQL server, each
started once per test session in a temporary directory on free ports, unless
KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL name external ones."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from deploy.local.kafka_broker import KafkaBroker, ensure_jars, free_port
from deploy.local.postgres_server import PostgresServer

REPO = Path(__file__).parent


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory) -> str:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"), free_port(), free_port(),
                         ensure_jars(REPO / ".cache"))
    broker.start()
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    server = PostgresServer(tmp_path_factory.mktemp("postgres"), free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def platform_topics(kafka_bootstrap) -> str:
    """Creates the declared topics; returns the bootstrap servers."""
    from policykit.topics import ensure_topics
    ensure_topics(kafka_bootstrap)
    return kafka_bootstrap


@pytest.fixture
def schema_name(database_url) -> str:
    """A schema name no other test uses, dropped afterwards."""
    import asyncio

    import asyncpg

    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name

    async def drop():
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        finally:
            await conn.close()
    asyncio.run(drop())


@pytest.fixture
async def migrated_pool(database_url, schema_name):
    """Opens a pool on the test's own schema after applying a service's migrations there:
    `pool = await migrated_pool(migrations_dir)`. Closed after the test."""
    from policykit import db

    pools = []

    async def open_pool(migrations: Path):
        await db.migrate(database_url, schema_name, [migrations])
        pools.append(await db.create_pool(database_url, schema_name))
        return pools[-1]
    yield open_pool
    for pool in pools:
        await pool.close()


@pytest.fixture
def topic_name(kafka_bootstrap) -> str:
    """A fresh three-partition topic for this test only, with its dead-letter topic
    `<name>.dlq` (the broker does not create topics on first use)."""
    from kafka.admin import KafkaAdminClient

    name = f"test.{uuid.uuid4().hex[:12]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics({topic: {"num_partitions": 3, "replication_factor": 1}
                             for topic in (name, f"{name}.dlq")}, wait_for_metadata=True)
    finally:
        admin.close()
    return name
