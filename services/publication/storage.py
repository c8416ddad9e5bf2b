"""The publication service's tables: the regulations it knows, their promulgations and links,
their timeline entries, and the views of tasks and consultations the timeline shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import asyncpg
from google.protobuf.message import Message

from policy.communication.v1 import events_pb2 as communication
from policy.communication.v1 import task_pb2
from policy.consultation.v1 import events_pb2 as consultation
from policy.drafting.v1 import events_pb2 as drafting
from policy.publication.v1 import publication_service_pb2 as api
from policykit.envelope import Event

# The statuses the drafting events move a regulation through; promulgation ends them.
DRAFT_STATUSES = (api.REGULATION_STATUS_DRAFTING, api.REGULATION_STATUS_IN_CONSULTATION,
                  api.REGULATION_STATUS_ADOPTED, api.REGULATION_STATUS_WITHDRAWN)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def optional_time(message: Message, field: str) -> datetime | None:
    """Returns the Timestamp field as an aware datetime, None when it is unset."""
    if not message.HasField(field):
        return None
    return getattr(message, field).ToDatetime(tzinfo=timezone.utc)


def set_time(target, value: datetime | None) -> None:
    if value is not None:
        target.FromDatetime(value)


def status_name(status: int) -> str:
    return api.RegulationStatus.Name(status).removeprefix("REGULATION_STATUS_")


@dataclass(frozen=True)
class Regulation:
    regulation_id: str
    regulation_type: int
    title: str
    lead_agency_id: str
    status: int
    document_number: str  # empty until promulgated

    @property
    def label(self) -> str:
        """How other regulations' timelines name it: its document number once promulgated."""
        return self.document_number or self.title


async def get_regulation(conn: asyncpg.Connection, regulation_id: str, *,
                         lock: bool = False) -> Regulation | None:
    """Returns the regulation, locked until the transaction ends if asked, so that changes
    to one regulation apply one after the other."""
    row = await conn.fetchrow(
        "SELECT r.regulation_id, r.regulation_type, r.title, r.lead_agency_id, r.status,"
        " coalesce(p.document_number, '') AS document_number"
        " FROM regulations r LEFT JOIN promulgations p USING (regulation_id)"
        " WHERE r.regulation_id = $1" + (" FOR UPDATE OF r" if lock else ""), regulation_id)
    return Regulation(**row) if row else None


async def register(conn: asyncpg.Connection, registered: drafting.DraftRegistered,
                   time: datetime) -> None:
    await conn.execute(
        "INSERT INTO regulations (regulation_id, regulation_type, title, summary,"
        " lead_agency_id, status, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (regulation_id) DO NOTHING",
        registered.regulation_id, registered.regulation_type, registered.title,
        registered.summary, registered.lead_agency_id, api.REGULATION_STATUS_DRAFTING, time)


async def revise(conn: asyncpg.Connection, revised: drafting.DraftRevised, time: datetime) -> None:
    await conn.execute(
        "UPDATE regulations SET title = coalesce(nullif($2, ''), title),"
        " summary = coalesce(nullif($3, ''), summary), updated_at = $4 WHERE regulation_id = $1",
        revised.regulation_id, revised.title, revised.summary, time)


async def move_draft(conn: asyncpg.Connection, regulation_id: str, status: int,
                     time: datetime) -> None:
    """Sets a drafting status; a regulation already promulgated keeps its own."""
    await conn.execute(
        "UPDATE regulations SET status = $2, updated_at = $3"
        " WHERE regulation_id = $1 AND status = ANY($4::smallint[])",
        regulation_id, status, time, list(DRAFT_STATUSES))


async def set_status(conn: asyncpg.Connection, regulation_id: str, status: int,
                     time: datetime) -> None:
    await conn.execute("UPDATE regulations SET status = $2, updated_at = $3"
                       " WHERE regulation_id = $1", regulation_id, status, time)


_PROMULGATION_COLUMNS = ("regulation_id, document_number, signer, signed_at, gazette_number,"
                         " gazette_published_at, effective_at, effective_date_rule,"
                         " effective_date_override_reason")


async def insert_promulgation(conn: asyncpg.Connection, promulgation: api.Promulgation,
                              recorded_at: datetime) -> str | None:
    """Stores the promulgation; returns the regulation that already has its document
    number instead, if one does."""
    p = promulgation
    status = await conn.execute(
        f"INSERT INTO promulgations ({_PROMULGATION_COLUMNS}, recorded_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (document_number) DO NOTHING",
        p.regulation_id, p.document_number, p.signer, optional_time(p, "signed_at"),
        p.gazette_number, optional_time(p, "gazette_published_at"),
        optional_time(p, "effective_at"), p.effective_date_rule,
        p.effective_date_override_reason, recorded_at)
    if status.endswith(" 0"):
        return await conn.fetchval(
            "SELECT regulation_id FROM promulgations WHERE document_number = $1",
            p.document_number)
    return None


async def get_promulgation(conn: asyncpg.Connection, regulation_id: str) -> api.Promulgation | None:
    row = await conn.fetchrow(
        f"SELECT {_PROMULGATION_COLUMNS} FROM promulgations WHERE regulation_id = $1",
        regulation_id)
    if row is None:
        return None
    promulgation = api.Promulgation(**{k: v for k, v in row.items()
                                       if not isinstance(v, datetime)})
    for field in ("signed_at", "gazette_published_at", "effective_at"):
        set_time(getattr(promulgation, field), row[field])
    return promulgation


async def insert_link(conn: asyncpg.Connection, event: Event, kind: str, by_regulation_id: str,
                      articles: list[str]) -> bool:
    """Stores that the event's regulation was `kind` (amended, repealed) by the other;
    False when that link exists already."""
    status = await conn.execute(
        "INSERT INTO regulation_links (event_id, kind, regulation_id, by_regulation_id,"
        " articles, linked_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        event.id, kind, event.regulation_id, by_regulation_id, articles, event.time)
    return not status.endswith(" 0")


# (stored kind, whether this regulation is the one amended or repealed) -> the link's kind.
_LINK_KINDS = {("amended", True): api.LINK_KIND_AMENDED_BY,
               ("amended", False): api.LINK_KIND_AMENDS,
               ("repealed", True): api.LINK_KIND_REPEALED_BY,
               ("repealed", False): api.LINK_KIND_REPEALS}


async def links_of(conn: asyncpg.Connection, regulation_id: str) -> list[api.RegulationLink]:
    """Returns the regulation's links either way, oldest first."""
    rows = await conn.fetch(
        "SELECT l.kind, l.regulation_id = $1 AS subject, l.articles, l.linked_at, l.event_id,"
        " o.regulation_id AS other, coalesce(p.document_number, '') AS other_number"
        " FROM regulation_links l"
        " JOIN regulations o ON o.regulation_id = CASE WHEN l.regulation_id = $1"
        "   THEN l.by_regulation_id ELSE l.regulation_id END"
        " LEFT JOIN promulgations p ON p.regulation_id = o.regulation_id"
        " WHERE l.regulation_id = $1 OR l.by_regulation_id = $1"
        " ORDER BY l.linked_at, l.event_id", regulation_id)
    links = []
    for row in rows:
        link = api.RegulationLink(
            kind=_LINK_KINDS[row["kind"], row["subject"]], other_regulation_id=row["other"],
            other_document_number=row["other_number"], articles=row["articles"],
            event_id=str(row["event_id"]))
        link.linked_at.FromDatetime(row["linked_at"])
        links.append(link)
    return links


async def regulation_summary(conn: asyncpg.Connection,
                             regulation_id: str) -> api.RegulationSummary | None:
    row = await conn.fetchrow(
        "SELECT regulation_id, regulation_type, title, summary, lead_agency_id, status"
        " FROM regulations WHERE regulation_id = $1", regulation_id)
    if row is None:
        return None
    summary = api.RegulationSummary(**row, links=await links_of(conn, regulation_id))
    promulgation = await get_promulgation(conn, regulation_id)
    if promulgation is not None:
        summary.promulgation.CopyFrom(promulgation)
    return summary


# The timeline.

async def insert_entry(conn: asyncpg.Connection, regulation_id: str, event: Event, topic: str,
                       description: str) -> None:
    await conn.execute(
        "INSERT INTO timeline_entries (regulation_id, event_id, event_type, topic, occurred_at,"
        " description) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        regulation_id, event.id, event.type, topic, event.time, description)


async def mark_changed(conn: asyncpg.Connection, regulation_id: str) -> None:
    """Queues the regulation's open-data document for republishing, if it is promulgated.

    A regulation already queued may be the one the publisher is reading right now, and the
    publisher unqueues it once read. DO NOTHING would not wait for that, so this change could
    be missing from the document and the regulation unqueued all the same. DO UPDATE ... WHERE
    false writes nothing but locks the queued row, so it waits for the publisher; then,
    finding the row gone, it queues the regulation again."""
    await conn.execute(
        "INSERT INTO open_data_pending (regulation_id)"
        " SELECT regulation_id FROM promulgations WHERE regulation_id = $1"
        " ON CONFLICT (regulation_id) DO UPDATE SET marked_at = open_data_pending.marked_at"
        " WHERE false", regulation_id)


async def entries(conn: asyncpg.Connection, regulation_id: str,
                  after: tuple[datetime, int] | None,
                  limit: int | None) -> list[tuple[api.TimelineEntry, tuple[datetime, int]]]:
    """Returns up to `limit` entries (all when None) after the position `after`, each with
    its own position (occurred_at, seq)."""
    after_time, after_seq = after or (None, 0)
    rows = await conn.fetch(
        "SELECT seq, event_id, event_type, topic, occurred_at, description FROM timeline_entries"
        " WHERE regulation_id = $1"
        " AND ($2::timestamptz IS NULL OR (occurred_at, seq) > ($2, $3))"
        " ORDER BY occurred_at, seq LIMIT $4", regulation_id, after_time, after_seq, limit)
    found = []
    for row in rows:
        entry = api.TimelineEntry(event_type=row["event_type"], event_id=row["event_id"],
                                  source=row["topic"], description=row["description"])
        entry.occurred_at.FromDatetime(row["occurred_at"])
        found.append((entry, (row["occurred_at"], row["seq"])))
    return found


# Communication tasks.

async def insert_task(conn: asyncpg.Connection, created: communication.TaskCreated,
                      time: datetime) -> None:
    task = created.task
    await conn.execute(
        "INSERT INTO tasks (task_id, regulation_id, task, kind, owner_org_id, created_at,"
        " status, status_changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $6)"
        " ON CONFLICT DO NOTHING",
        task.task_id, created.regulation_id, task.SerializeToString(), task.kind,
        task.owner_org_id, time, task.status or task_pb2.TASK_STATUS_CREATED)


async def update_task(conn: asyncpg.Connection, task_id: str, status: int, time: datetime,
                      **changes) -> None:
    """Records the task's new status and what else its event changed (column = value)."""
    columns = "".join(f", {name} = ${i}" for i, name in enumerate(changes, start=4))
    await conn.execute(f"UPDATE tasks SET status = $2, status_changed_at = $3{columns}"
                       " WHERE task_id = $1", task_id, status, time, *changes.values())


async def task_label(conn: asyncpg.Connection, task_id: str) -> tuple[str, str] | None:
    """Returns the task's (kind, owner), None for a task not seen created."""
    row = await conn.fetchrow("SELECT kind, owner_org_id FROM tasks WHERE task_id = $1", task_id)
    return (row["kind"], row["owner_org_id"]) if row else None


async def task_summaries(conn: asyncpg.Connection, regulation_id: str) -> list[api.TaskSummary]:
    rows = await conn.fetch(
        "SELECT task, owner_org_id, status, status_changed_at, evidence, escalated_to_org_id,"
        " completed_late, percent_done, cancel_reason FROM tasks WHERE regulation_id = $1"
        " ORDER BY created_at, task_id", regulation_id)
    summaries = []
    for row in rows:
        task = task_pb2.Task.FromString(row["task"])
        task.owner_org_id, task.status = row["owner_org_id"], row["status"]
        if row["evidence"] is not None:
            task.evidence.ParseFromString(row["evidence"])
        summary = api.TaskSummary(
            task=task, escalated_to_org_id=row["escalated_to_org_id"],
            completed_late=row["completed_late"], percent_done=row["percent_done"],
            cancel_reason=row["cancel_reason"])
        summary.status_changed_at.FromDatetime(row["status_changed_at"])
        summaries.append(summary)
    return summaries


# Consultations.

async def update_consultation(conn: asyncpg.Connection, regulation_id: str,
                              consultation_id: str, assignments: str, *values) -> None:
    """Applies `assignments` (SQL, parameters from $3) to the consultation's row, creating
    the row first if this is the first event of the consultation seen."""
    await conn.execute(
        "INSERT INTO consultations (regulation_id, consultation_id) VALUES ($1, $2)"
        " ON CONFLICT DO NOTHING", regulation_id, consultation_id)
    await conn.execute(f"UPDATE consultations SET {assignments} WHERE regulation_id = $1"
                       " AND consultation_id = $2", regulation_id, consultation_id, *values)


async def consultation_summaries(conn: asyncpg.Connection,
                                 regulation_id: str) -> list[api.ConsultationSummary]:
    rows = await conn.fetch(
        "SELECT consultation_id, opens_at, closes_at, closed_at, comments_received,"
        " comments_answered, closing, report_url, report_published_at FROM consultations"
        " WHERE regulation_id = $1 ORDER BY opens_at NULLS LAST, consultation_id",
        regulation_id)
    summaries = []
    for row in rows:
        summary = api.ConsultationSummary(
            consultation_id=row["consultation_id"], comments_received=row["comments_received"],
            comments_answered=row["comments_answered"], report_url=row["report_url"])
        for field in ("opens_at", "closes_at", "closed_at", "report_published_at"):
            set_time(getattr(summary, field), row[field])
        if row["closing"] is not None:
            closed = consultation.ConsultationClosed.FromString(row["closing"])
            summary.total_comments = closed.total_comments
            for field in ("by_stakeholder_type", "by_province", "by_article"):
                getattr(summary, field).extend(getattr(closed, field))
        summaries.append(summary)
    return summaries
