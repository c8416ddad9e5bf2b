"""Idempotency keys against real PostgreSQL: one change per caller and key, and a key reused
for a different request refused rather than silently answered with the first response."""

import pytest

from policy.drafting.v1 import drafting_service_pb2 as api
from policykit import auth, db, idempotency
from policykit.errors import FieldViolations

AGENCY = auth.Principal("bnnmt", frozenset({auth.DRAFTING_AGENCY}), "token")
OTHER_AGENCY = auth.Principal("byt", frozenset({auth.DRAFTING_AGENCY}), "token")


@pytest.fixture
async def pool(database_url, schema_name):
    await db.migrate(database_url, schema_name, [])
    pool = await db.create_pool(database_url, schema_name)
    await pool.execute("CREATE TABLE changes (n serial PRIMARY KEY, title text)")
    yield pool
    await pool.close()


def revise(title: str, key: str = "key-1") -> api.ReviseDraftRequest:
    return api.ReviseDraftRequest(idempotency_key=key, regulation_id="nd-2026-01", title=title)


async def call(pool, principal: auth.Principal, request: api.ReviseDraftRequest,
               method: str = "ReviseDraft") -> api.ReviseDraftResponse:
    async def change(conn):
        number = await conn.fetchval("INSERT INTO changes (title) VALUES ($1) RETURNING n",
                                     request.title)
        return api.ReviseDraftResponse(draft={"regulation_id": str(number)})

    with auth.calling_as(principal):
        return await idempotency.once(pool, request, method, api.ReviseDraftResponse, change)


async def test_a_retry_gets_the_first_response_and_changes_nothing(pool):
    first = await call(pool, AGENCY, revise("Nghị định về đất đai"))
    again = await call(pool, AGENCY, revise("Nghị định về đất đai"))
    assert again == first
    assert await pool.fetchval("SELECT count(*) FROM changes") == 1


async def test_a_key_reused_for_a_different_request_is_refused(pool):
    await call(pool, AGENCY, revise("Nghị định về đất đai"))
    with pytest.raises(FieldViolations) as refused:
        await call(pool, AGENCY, revise("Nghị định về tài nguyên nước"))
    assert refused.value.violations == [
        ("idempotency_key", "already used for a different request; a new change needs a new key")]
    with pytest.raises(FieldViolations) as refused:
        await call(pool, AGENCY, revise("Nghị định về đất đai"), method="WithdrawDraft")
    assert refused.value.violations == [("idempotency_key", "already used for ReviseDraft")]
    assert await pool.fetchval("SELECT count(*) FROM changes") == 1


async def test_two_organisations_keys_never_meet(pool):
    ours = await call(pool, AGENCY, revise("Nghị định về đất đai"))
    theirs = await call(pool, OTHER_AGENCY, revise("Nghị định về đất đai"))
    assert ours != theirs
    assert await pool.fetchval("SELECT count(*) FROM changes") == 2
