"""The drafting service's tables: drafts, their versions and idempotency keys."""

from __future__ import annotations

from datetime import datetime, timezone

import asyncpg
from google.protobuf.message import Message

from policy.drafting.v1 import drafting_service_pb2 as api
from policykit.errors import FieldViolations

_COLUMNS = ("regulation_id, regulation_type, title, summary, lead_agency_id, impact_level,"
            " affected_groups, affected_province_codes, planned_consultation_start,"
            " planned_adoption, state, version, created_at, updated_at")


def _timestamp(value: datetime | None, target) -> None:
    if value is not None:
        target.FromDatetime(value)


def draft_from_row(row: asyncpg.Record) -> api.Draft:
    draft = api.Draft(
        regulation_id=row["regulation_id"], regulation_type=row["regulation_type"],
        title=row["title"], summary=row["summary"], lead_agency_id=row["lead_agency_id"],
        impact_level=row["impact_level"], affected_groups=row["affected_groups"],
        affected_province_codes=row["affected_province_codes"], state=row["state"],
        version=row["version"])
    _timestamp(row["planned_consultation_start"], draft.planned_consultation_start)
    _timestamp(row["planned_adoption"], draft.planned_adoption)
    _timestamp(row["created_at"], draft.created_at)
    _timestamp(row["updated_at"], draft.updated_at)
    return draft


def _optional_time(message: Message, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    return getattr(message, field).ToDatetime(tzinfo=timezone.utc)


async def insert_draft(conn: asyncpg.Connection, draft: api.Draft, now: datetime) -> None:
    """Stores a new draft and its first version."""
    await conn.execute(
        f"INSERT INTO drafts ({_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$13)",
        draft.regulation_id, draft.regulation_type, draft.title, draft.summary,
        draft.lead_agency_id, draft.impact_level, list(draft.affected_groups),
        list(draft.affected_province_codes),
        _optional_time(draft, "planned_consultation_start"),
        _optional_time(draft, "planned_adoption"), draft.state, draft.version, now)
    await conn.execute(
        "INSERT INTO draft_versions (regulation_id, version, title, summary, change_summary,"
        " created_at) VALUES ($1, $2, $3, $4, '', $5)",
        draft.regulation_id, draft.version, draft.title, draft.summary, now)


async def get_draft(conn: asyncpg.Connection, regulation_id: str) -> api.Draft | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM drafts WHERE regulation_id = $1",
                              regulation_id)
    return draft_from_row(row) if row else None


async def remembered_response(conn: asyncpg.Connection, key: str, method: str,
                              response_type: type[Message]) -> Message | None:
    """Returns the first response given to this idempotency key, locking the key for the rest
    of the transaction so concurrent retries wait for the first one to finish."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)
    row = await conn.fetchrow(
        "SELECT method, response FROM idempotency_keys WHERE idempotency_key = $1", key)
    if row is None:
        return None
    if row["method"] != method:
        violations = FieldViolations()
        violations.add("idempotency_key", f"already used for {row['method']}")
        raise violations
    return response_type.FromString(row["response"])


async def remember_response(conn: asyncpg.Connection, key: str, method: str,
                            response: Message) -> None:
    await conn.execute(
        "INSERT INTO idempotency_keys (idempotency_key, method, response) VALUES ($1, $2, $3)",
        key, method, response.SerializeToString())
