"""The pool rides out a database restart: a new connection waits for the server to accept it,
and the errors of an outage are told from those of a statement (tests/faults restarts a real
server under load)."""

import asyncio
import logging
from urllib.parse import urlsplit

import asyncpg
import pytest

from deploy.local.kafka_broker import free_port
from policykit import db


async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def test_a_pool_waits_for_the_server_to_accept_connections(database_url, schema_name,
                                                                 caplog):
    """The server's address refuses connections until a proxy to the real server opens."""
    server = urlsplit(database_url)
    port = free_port()

    async def proxy(reader, writer):
        upstream_reader, upstream_writer = await asyncio.open_connection(server.hostname,
                                                                         server.port)
        await asyncio.gather(forward(reader, upstream_writer), forward(upstream_reader, writer))

    caplog.set_level(logging.WARNING, logger="policykit.db")
    creating = asyncio.ensure_future(db.create_pool(
        database_url.replace(f":{server.port}/", f":{port}/"), schema_name, connect_wait_s=60))
    for _ in range(200):
        if "database not accepting connections" in caplog.text:
            break
        await asyncio.sleep(0.05)
    assert not creating.done(), "the pool gave up on a refused connection"
    listener = await asyncio.start_server(proxy, "127.0.0.1", port)
    try:
        pool = await asyncio.wait_for(creating, 60)
        assert await pool.fetchval("SELECT 1") == 1
        await pool.close()
    finally:
        listener.close()


def during(outage: Exception, then: Exception) -> Exception:
    """`then`, raised while `outage` was being handled."""
    try:
        try:
            raise outage
        except Exception:
            raise then
    except Exception as raised:
        return raised


@pytest.mark.parametrize("error, transient", [
    (ConnectionRefusedError(111, "Connect call failed"), True),
    (asyncpg.CannotConnectNowError("the database system is starting up"), True),
    (asyncpg.AdminShutdownError("terminating connection due to administrator command"), True),
    (asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
     True),
    (asyncpg.InterfaceError("cannot call Transaction.__aexit__(): the underlying connection is "
                            "closed"), True),
    (asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in "
                                 "progress"), True),
    (during(asyncpg.ConnectionDoesNotExistError("closed"), RuntimeError("while rolling back")),
     True),
    (asyncpg.InterfaceError("cannot perform operation: another operation is in progress"), False),
    (asyncpg.UniqueViolationError("duplicate key value violates unique constraint"), False),
    (ValueError("not a database error"), False),
])
def test_an_outage_is_told_from_a_failing_statement(error, transient):
    assert db.unavailable(error) is transient
