"""Idempotency keys for mutating gRPC calls: a retry with the same key gets the first
response back and changes nothing.

A key belongs to the organisation that sent it (two organisations' keys never meet, so no one
is handed another's response) and to one request: the same key again with a different request
is a client bug that would otherwise silently lose the second change, and is refused."""

from __future__ import annotations

import hashlib
from typing import Awaitable, Callable, TypeVar

import asyncpg
from google.protobuf.message import Message

from policykit import auth
from policykit.errors import FieldViolations

Response = TypeVar("Response", bound=Message)
MAX_KEY_LENGTH = 200


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH:
        violations = FieldViolations()
        violations.add("idempotency_key",
                       f"must be 1 to {MAX_KEY_LENGTH} characters, unique per intended change")
        raise violations


def _refuse(problem: str):
    violations = FieldViolations()
    violations.add("idempotency_key", problem)
    raise violations


async def once(pool: asyncpg.Pool, request: Message, method: str, response_type: type[Response],
               change: Callable[[asyncpg.Connection], Awaitable[Response]]) -> Response:
    """Runs `change` in a transaction unless the caller sent the request's key before: then
    returns the response remembered for it. Concurrent calls with one key wait for each other
    on a lock."""
    key = request.idempotency_key
    check_key(key)
    caller = auth.current_principal().org
    digest = hashlib.sha256(request.SerializeToString(deterministic=True)).digest()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                           f"{caller}\n{key}")
        row = await conn.fetchrow(
            "SELECT method, request_digest, response FROM idempotent_requests"
            " WHERE caller = $1 AND idempotency_key = $2", caller, key)
        if row is not None:
            if row["method"] != method:
                _refuse(f"already used for {row['method']}")
            if row["request_digest"] not in (None, digest):
                _refuse("already used for a different request; a new change needs a new key")
            return response_type.FromString(row["response"])
        response = await change(conn)
        await conn.execute(
            "INSERT INTO idempotent_requests"
            " (caller, idempotency_key, method, request_digest, response)"
            " VALUES ($1, $2, $3, $4, $5)",
            caller, key, method, digest, response.SerializeToString())
        return response
