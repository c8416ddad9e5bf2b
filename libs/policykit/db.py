"""PostgreSQL access: an asyncpg pool bound to the service's own schema, that waits for a
restarting server instead of failing, and versioned SQL migrations applied at start."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import asyncpg

log = logging.getLogger(__name__)
T, W = TypeVar("T"), TypeVar("W")

# Migrations every service gets: the outbox and the inbox tables.
SHARED_MIGRATIONS = Path(__file__).parent / "migrations"
_SCHEMA_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


# How long a new connection waits for a server that refuses connections or is starting up
# (a restart, a failover) before the work that needs it fails. Consumers stop on it rather
# than spending their handling attempts on the outage.
CONNECT_WAIT_S = 60.0
# What a server that is down, shutting down or starting up answers a connection attempt with.
_NOT_ACCEPTING = (ConnectionError, asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError,
                  asyncpg.CrashShutdownError, asyncpg.PostgresConnectionError)


class MigrationError(RuntimeError):
    """A migration file changed after it was applied, or is misnamed."""


def unavailable(error: BaseException | None) -> bool:
    """Whether the error, or one it arose from, is the database refusing or dropping the
    connection: transient, unlike an error of the statement itself."""
    while error is not None:
        # A connection the server dropped between two statements (before the COMMIT, say) is
        # closed, which asyncpg tells from a misuse of the connection only in the message, or
        # still holds the server's last error, which makes it refuse the next statement as an
        # internal error.
        dropped = (isinstance(error, asyncpg.InternalClientError)
                   or (isinstance(error, asyncpg.InterfaceError)
                       and str(error).endswith("connection is closed")))
        if dropped or isinstance(error, _NOT_ACCEPTING):
            return True
        error = error.__cause__ or error.__context__
    return False


async def _connect_patiently(*args, wait_s: float, **kwargs) -> asyncpg.Connection:
    """asyncpg.connect, tried again with growing pauses while the server does not accept
    connections, for up to `wait_s` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    pause = 0.1
    while True:
        try:
            return await asyncpg.connect(*args, **kwargs)
        except _NOT_ACCEPTING as error:
            if loop.time() + pause > deadline:
                raise
            log.warning("database not accepting connections (%s); trying again in %.1f s",
                        error, pause)
        await asyncio.sleep(pause)
        pause = min(2 * pause, 2.0)


# The separator of a text list (`text_list`): the unit separator, a control character that no
# text the platform takes may hold (policykit.wellformed).
_LIST_SEPARATOR = "\x1f"


def text_list(values: Sequence[str]) -> str:
    """The texts as one text parameter, for a statement that splits it with `split_text_list`.

    asyncpg tests every element of an array parameter against abstract base classes before it
    encodes it, ~0.3 µs an element: binding the ten text columns of the task engine's task
    rows as arrays cost ~8 µs a task of the engine's CPU more than this. Raises ValueError
    when a text holds the separator."""
    if not values:
        return ""
    # Led by a separator that split_text_list drops, so that [""] is not [].
    joined = _LIST_SEPARATOR + _LIST_SEPARATOR.join(values)
    if joined.count(_LIST_SEPARATOR) != len(values):
        raise ValueError("a text of the list holds U+001F, the list's separator")
    return joined


def split_text_list(parameter: str, *, empty_is_null: bool = False) -> str:
    """SQL for the text[] that `text_list` made of a parameter, e.g. split_text_list("$4");
    with `empty_is_null`, its empty texts are NULL."""
    null = ", ''" if empty_is_null else ""
    return f"(string_to_array({parameter}, E'\\x1f'{null}))[2:]"


async def meanwhile(statement: Awaitable[T], work: Callable[[], W]) -> tuple[T, W]:
    """Sends a statement, does `work` while the server runs it, then waits for its answer;
    returns both results. On a 2-core machine the server's part and the service's run on
    different cores: a batch's largest statement overlaps the Python that does not depend on
    its answer, rather than each waiting for the other. The statement is awaited even when
    `work` fails or the caller is cancelled, so that the connection is free again (for the
    transaction's rollback) before the error propagates."""
    sending = asyncio.ensure_future(statement)
    try:
        await asyncio.sleep(0)  # the statement's task runs until it has sent its query
        done = work()
    finally:
        answer = await sending
    return answer, done


def _check_schema(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"schema name {schema!r} must match {_SCHEMA_NAME.pattern}")
    return schema


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What the pool does to a connection given back, besides asyncpg's rollback of a
    transaction left open: nothing. asyncpg's default reset is a query (unlock advisory locks,
    close cursors, unlisten, reset settings), a round trip each release — two of the ~18 a
    task-engine batch and its relay pass made — and the services keep no such state: their
    advisory locks are transaction-scoped, their cursors live in transactions, they listen
    to nothing and change no setting of a pooled session."""


async def create_pool(database_url: str, schema: str, *, min_size: int = 1,
                      max_size: int = 10, connect_wait_s: float = CONNECT_WAIT_S) -> asyncpg.Pool:
    """Opens a pool whose connections see the service's schema first and speak UTF-8. It
    outlives a database restart: connections the server dropped are replaced when next
    acquired, and a new connection waits up to `connect_wait_s` for the server to accept it.
    A connection goes back to the pool as it is (`_keep_session`): use no session state."""
    return await asyncpg.create_pool(
        database_url, min_size=min_size, max_size=max_size, reset=_keep_session,
        connect=functools.partial(_connect_patiently, wait_s=connect_wait_s),
        server_settings={"search_path": _check_schema(schema), "client_encoding": "UTF8",
                         "application_name": schema})


def _migration_files(directories: list[Path]) -> list[tuple[str, str]]:
    """Lists (qualified name, SQL) in order: shared ones first, then each directory's."""
    found = []
    for directory in directories:
        for path in sorted(directory.glob("*.sql")):
            if not _MIGRATION_NAME.match(path.name):
                raise MigrationError(f"{path}: migration files are named NNNN_what.sql")
            found.append((f"{directory.parent.name}/{path.name}", path.read_text("utf-8")))
    return found


async def migrate(database_url: str, schema: str, directories: list[Path]) -> list[str]:
    """Creates the schema and applies the shared and the given migrations not applied yet,
    each in its own transaction; returns the names applied now. Concurrent starts of the same
    service wait for each other on an advisory lock."""
    _check_schema(schema)
    conn = await _connect_patiently(database_url, wait_s=CONNECT_WAIT_S,
                                    server_settings={"search_path": schema})
    try:
        lock_id = int.from_bytes(hashlib.sha256(schema.encode()).digest()[:8], "big", signed=True)
        await conn.execute("SELECT pg_advisory_lock($1)", lock_id)
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())")
            applied = {r["name"]: r["checksum"]
                       for r in await conn.fetch("SELECT name, checksum FROM schema_migrations")}
            done = []
            for name, sql in _migration_files([SHARED_MIGRATIONS, *directories]):
                checksum = hashlib.sha256(sql.encode()).hexdigest()
                if name in applied:
                    if applied[name] != checksum:
                        raise MigrationError(
                            f"{name} was changed after it was applied to schema {schema}; "
                            "add a new migration instead")
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                        name, checksum)
                log.info("applied migration %s to schema %s", name, schema)
                done.append(name)
            return done
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock_id)
    finally:
        await conn.close()
