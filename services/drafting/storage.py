"""The drafting service's tables: drafts, their versions and their impact assessments."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timezone

import asyncpg
from google.protobuf.message import Message

from policy.drafting.v1 import drafting_service_pb2 as api
from policy.drafting.v1 import events_pb2 as events

_COLUMNS = ("regulation_id, regulation_type, title, summary, lead_agency_id, impact_level,"
            " affected_groups, affected_province_codes, planned_consultation_start,"
            " planned_adoption, state, version, created_at, updated_at, withdrawal_reason")


def _timestamp(value: datetime | None, target) -> None:
    if value is not None:
        target.FromDatetime(value)


def draft_from_row(row: asyncpg.Record) -> api.Draft:
    draft = api.Draft(
        regulation_id=row["regulation_id"], regulation_type=row["regulation_type"],
        title=row["title"], summary=row["summary"], lead_agency_id=row["lead_agency_id"],
        impact_level=row["impact_level"], affected_groups=row["affected_groups"],
        affected_province_codes=row["affected_province_codes"], state=row["state"],
        version=row["version"], withdrawal_reason=row["withdrawal_reason"])
    _timestamp(row["planned_consultation_start"], draft.planned_consultation_start)
    _timestamp(row["planned_adoption"], draft.planned_adoption)
    _timestamp(row["created_at"], draft.created_at)
    _timestamp(row["updated_at"], draft.updated_at)
    return draft


def optional_time(message: Message, field: str) -> datetime | None:
    """Returns the Timestamp field as an aware datetime, None when it is unset."""
    if not message.HasField(field):
        return None
    return getattr(message, field).ToDatetime(tzinfo=timezone.utc)


async def insert_draft(conn: asyncpg.Connection, draft: api.Draft) -> bool:
    """Stores a new draft and its first version; False when the regulation id is taken."""
    status = await conn.execute(
        f"INSERT INTO drafts ({_COLUMNS})"
        " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)"
        " ON CONFLICT (regulation_id) DO NOTHING",
        draft.regulation_id, draft.regulation_type, draft.title, draft.summary,
        draft.lead_agency_id, draft.impact_level, list(draft.affected_groups),
        list(draft.affected_province_codes),
        optional_time(draft, "planned_consultation_start"),
        optional_time(draft, "planned_adoption"), draft.state, draft.version,
        optional_time(draft, "created_at"), optional_time(draft, "updated_at"),
        draft.withdrawal_reason)
    if status.endswith(" 0"):
        return False
    await insert_version(conn, draft, change_summary="")
    return True


async def insert_version(conn: asyncpg.Connection, draft: api.Draft, change_summary: str) -> None:
    """Keeps the draft's current version: its title and summary, and what changed."""
    await conn.execute(
        "INSERT INTO draft_versions (regulation_id, version, title, summary, change_summary,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        draft.regulation_id, draft.version, draft.title, draft.summary, change_summary,
        optional_time(draft, "updated_at"))


async def insert_assessment(conn: asyncpg.Connection, assessed: events.ImpactAssessed) -> None:
    await conn.execute(
        "INSERT INTO impact_assessments (regulation_id, assessed_at, impact_level,"
        " assessment_summary, affected_groups, affected_province_codes)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        assessed.regulation_id, optional_time(assessed, "assessed_at"), assessed.impact_level,
        assessed.assessment_summary, list(assessed.affected_groups),
        list(assessed.affected_province_codes))


async def update_draft(conn: asyncpg.Connection, draft: api.Draft) -> None:
    """Stores what a change may alter in a draft; its identity and origin stay."""
    await conn.execute(
        "UPDATE drafts SET title = $2, summary = $3, impact_level = $4, affected_groups = $5,"
        " affected_province_codes = $6, state = $7, version = $8, updated_at = $9,"
        " withdrawal_reason = $10 WHERE regulation_id = $1",
        draft.regulation_id, draft.title, draft.summary, draft.impact_level,
        list(draft.affected_groups), list(draft.affected_province_codes), draft.state,
        draft.version, optional_time(draft, "updated_at"), draft.withdrawal_reason)


async def get_draft(conn: asyncpg.Connection, regulation_id: str) -> api.Draft | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM drafts WHERE regulation_id = $1",
                              regulation_id)
    return draft_from_row(row) if row else None


async def lock_draft(conn: asyncpg.Connection, regulation_id: str) -> api.Draft | None:
    """Returns the draft locked until the transaction ends, so that concurrent changes to
    one draft apply one after the other, each to the state the previous one left."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM drafts WHERE regulation_id = $1 FOR UPDATE", regulation_id)
    return draft_from_row(row) if row else None


@dataclass(frozen=True)
class DraftQuery:
    """One page of ListDrafts: filters (empty or 0 means any) and where the page starts."""

    lead_agency_id: str
    state: int
    impact_level: int
    page_size: int
    # (created_at, regulation_id) of the last draft of the previous page.
    after: tuple[datetime, str] | None


def encode_page_token(created_at: datetime, regulation_id: str) -> str:
    text = json.dumps([created_at.isoformat(), regulation_id], ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii")


def decode_page_token(token: str) -> tuple[datetime, str]:
    """Reads a token of encode_page_token; raises ValueError for anything else."""
    try:
        created_at, regulation_id = json.loads(
            base64.b64decode(token, altchars=b"-_", validate=True))
        created_at = datetime.fromisoformat(created_at)
        # In UTC, as the query takes it: a time at the calendar's edge may not fit.
        after = created_at.astimezone(timezone.utc), regulation_id
    except (binascii.Error, UnicodeDecodeError, TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"not a page token: {error}") from None
    if created_at.tzinfo is None or not isinstance(regulation_id, str):
        raise ValueError("not a page token")
    return after


async def list_drafts(conn: asyncpg.Connection,
                      query: DraftQuery) -> tuple[list[api.Draft], str]:
    """Returns one page of drafts, newest first, and the token of the next page ('' after
    the last). Pages follow (created_at, regulation_id), so drafts registered meanwhile
    neither repeat nor shift a page."""
    after_time, after_id = query.after or (None, "")
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM drafts"
        " WHERE ($1 = '' OR lead_agency_id = $1) AND ($2 = 0 OR state = $2)"
        " AND ($3 = 0 OR impact_level = $3)"
        " AND ($4::timestamptz IS NULL OR (created_at, regulation_id) < ($4, $5))"
        " ORDER BY created_at DESC, regulation_id DESC LIMIT $6",
        query.lead_agency_id, query.state, query.impact_level, after_time, after_id,
        query.page_size + 1)
    page = rows[:query.page_size]
    next_token = ""
    if len(rows) > query.page_size:
        next_token = encode_page_token(page[-1]["created_at"], page[-1]["regulation_id"])
    return [draft_from_row(row) for row in page], next_token
