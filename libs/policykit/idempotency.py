"""Idempotency keys for mutating gRPC calls: a retry with the same key gets the first
response back and changes nothing."""

from __future__ import annotations

from typing import Awaitable, Callable, TypeVar

import asyncpg
from google.protobuf.message import Message

from policykit.errors import FieldViolations

Response = TypeVar("Response", bound=Message)
MAX_KEY_LENGTH = 200


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH:
        violations = FieldViolations()
        violations.add("idempotency_key",
                       f"must be 1 to {MAX_KEY_LENGTH} characters, unique per intended change")
        raise violations


async def once(pool: asyncpg.Pool, key: str, method: str, response_type: type[Response],
               change: Callable[[asyncpg.Connection], Awaitable[Response]]) -> Response:
    """Runs `change` in a transaction unless the key was seen: then returns the response
    remembered for it. Concurrent calls with one key wait for each other on a lock."""
    check_key(key)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)
        row = await conn.fetchrow(
            "SELECT method, response FROM idempotent_requests WHERE idempotency_key = $1", key)
        if row is not None:
            if row["method"] != method:
                violations = FieldViolations()
                violations.add("idempotency_key", f"already used for {row['method']}")
                raise violations
            return response_type.FromString(row["response"])
        response = await change(conn)
        await conn.execute(
            "INSERT INTO idempotent_requests (idempotency_key, method, response)"
            " VALUES ($1, $2, $3)", key, method, response.SerializeToString())
        return response
