"""The task engine's tables: the regulation projection, tasks and deferred events."""

from __future__ import annotations

from datetime import datetime, timezone

import asyncpg

from policy.communication.v1 import events_pb2 as task_events
from policy.communication.v1 import task_pb2
from policykit.db import split_text_list, text_list
from policykit.envelope import Event

from services.communication.planner import PlannedTask, Regulation

_REGULATION_COLUMNS = ("regulation_id, regulation_type, title, lead_agency_id, impact_level,"
                       " affected_groups, affected_province_codes, planned_consultation_start,"
                       " planned_adoption")
TASK_COLUMNS = ("task_id, regulation_id, trigger_event_id, playbook_rule, playbook_version, kind,"
                " title, channel, owner_org_id, audience, region_ids, due_at, priority, status,"
                " evidence_url, evidence_reach, evidence_note, created_at")


def regulation_from_row(row: asyncpg.Record) -> Regulation:
    return Regulation(
        regulation_id=row["regulation_id"], regulation_type=row["regulation_type"],
        title=row["title"], lead_agency_id=row["lead_agency_id"],
        impact_level=row["impact_level"], affected_groups=tuple(row["affected_groups"]),
        affected_province_codes=tuple(row["affected_province_codes"]),
        planned_consultation_start=row["planned_consultation_start"],
        planned_adoption=row["planned_adoption"])


async def get_regulations(conn: asyncpg.Connection,
                          regulation_ids: list[str]) -> dict[str, tuple[Regulation, bool]]:
    """Returns (regulation, withdrawn) by id for those of the regulations whose DraftRegistered
    was seen."""
    rows = await conn.fetch(
        f"SELECT {_REGULATION_COLUMNS}, withdrawn FROM regulations"
        " WHERE regulation_id = ANY($1::text[])", regulation_ids)
    return {row["regulation_id"]: (regulation_from_row(row), row["withdrawn"]) for row in rows}


async def mark_withdrawn(conn: asyncpg.Connection, regulation_ids: list[str]) -> None:
    await conn.execute("UPDATE regulations SET withdrawn = true"
                       " WHERE regulation_id = ANY($1::text[])", regulation_ids)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _timestamp(value: datetime | None, target) -> None:
    """Sets a Timestamp from an aware datetime as FromDatetime does, in a fifth of its time
    (every task the engine creates takes two)."""
    if value is not None:
        since = value - _EPOCH
        target.seconds = since.days * 86_400 + since.seconds
        target.nanos = since.microseconds * 1000


def task_from_row(row: asyncpg.Record) -> task_pb2.Task:
    task = task_pb2.Task(
        task_id=str(row["task_id"]), regulation_id=row["regulation_id"],
        trigger_event_id=row["trigger_event_id"], playbook_rule=row["playbook_rule"],
        playbook_version=row["playbook_version"], kind=row["kind"], title=row["title"],
        channel=row["channel"], owner_org_id=row["owner_org_id"], audience=row["audience"],
        region_ids=row["region_ids"], priority=row["priority"], status=row["status"])
    if row["evidence_url"] is not None:
        task.evidence.url = row["evidence_url"]
        task.evidence.reach_count = row["evidence_reach"]
        task.evidence.note = row["evidence_note"] or ""
    _timestamp(row["due_at"], task.due_at)
    _timestamp(row["created_at"], task.created_at)
    return task


def task_created(event: Event, planned: PlannedTask, playbook_version: str,
                 now: datetime) -> task_events.TaskCreated:
    """The TaskCreated of the task as store_tasks stores it; the task is made inside its
    event (made apart, it would be copied in)."""
    created = task_events.TaskCreated(regulation_id=event.regulation_id, task=dict(
        task_id=planned.task_id, regulation_id=event.regulation_id, trigger_event_id=event.id,
        playbook_rule=planned.rule_id, playbook_version=playbook_version, kind=planned.kind,
        title=planned.title, channel=planned.channel, owner_org_id=planned.owner_org_id,
        audience=planned.audience, region_ids=planned.region_ids, priority=planned.priority,
        status=task_pb2.TASK_STATUS_CREATED))
    _timestamp(planned.due_at, created.task.due_at)
    _timestamp(now, created.task.created_at)
    return created


# What is known of the regulations (their withdrawal aside) inserted or replaced, and the
# tasks planned for them inserted, in one statement: a round trip fewer a batch of the engine,
# whose small batches under steady load each wait on ~9 of them. The tasks' foreign key is
# checked at the statement's end, once the regulations are written. The regulations come as
# the table's own row type ($17, its `withdrawn` ignored); the task rows' text columns as
# text lists (policykit.db.text_list), cheaper for the engine to send than arrays.
_STORE_TASKS = (
    f"WITH saved AS (INSERT INTO regulations ({_REGULATION_COLUMNS})"
    f" SELECT {_REGULATION_COLUMNS} FROM unnest($17::regulations[])"
    " ON CONFLICT (regulation_id) DO UPDATE SET regulation_type = EXCLUDED.regulation_type,"
    " title = EXCLUDED.title, lead_agency_id = EXCLUDED.lead_agency_id,"
    " impact_level = EXCLUDED.impact_level, affected_groups = EXCLUDED.affected_groups,"
    " affected_province_codes = EXCLUDED.affected_province_codes,"
    " planned_consultation_start = EXCLUDED.planned_consultation_start,"
    " planned_adoption = EXCLUDED.planned_adoption)"
    " INSERT INTO tasks (task_id, regulation_id, trigger_event_id, trigger_event_type,"
    " playbook_rule, playbook_version, kind, title, channel, owner_org_id, audience,"
    " region_ids, due_at, priority, status, created_at, updated_at)"
    " SELECT t.task_id::uuid, t.regulation_id, t.trigger_id, t.trigger_type, t.rule, $1, t.kind,"
    " t.title, t.channel, t.owner, t.audience, string_to_array(t.regions, ','), t.due_at,"
    " t.priority, $2, $3, $3"
    f" FROM unnest({', '.join(split_text_list(f'${n}') for n in range(4, 14))},"
    " $14::smallint[], $15::smallint[], $16::timestamptz[])"
    " AS t(task_id, regulation_id, trigger_id, trigger_type, rule, kind, title, owner,"
    " audience, regions, channel, priority, due_at)"
    " ON CONFLICT (task_id) DO NOTHING RETURNING task_id")


async def store_tasks(conn: asyncpg.Connection, regulations: list[Regulation],
                      planned: list[tuple[Event, PlannedTask]], playbook_version: str,
                      now: datetime) -> set[str]:
    """Inserts or replaces what is known of the regulations (their withdrawal aside) and
    stores the tasks planned for their trigger events, in one statement; returns the ids of
    the tasks that did not exist yet."""
    if not regulations and not planned:
        return set()
    text_columns = list(zip(*(
        (p.task_id, e.regulation_id, e.id, e.type, p.rule_id, p.kind, p.title, p.owner_org_id,
         p.audience,
         # Region ids are reference-data codes: never a comma.
         ",".join(p.region_ids))
        for e, p in planned))) or [()] * 10  # no task: ten empty lists
    rows = await conn.fetch(_STORE_TASKS, playbook_version, task_pb2.TASK_STATUS_CREATED, now,
                            *map(text_list, text_columns),
                            [p.channel for _, p in planned], [p.priority for _, p in planned],
                            [p.due_at for _, p in planned],
                            [(r.regulation_id, r.regulation_type, r.title, r.lead_agency_id,
                              r.impact_level, list(r.affected_groups),
                              list(r.affected_province_codes), r.planned_consultation_start,
                              r.planned_adoption, False) for r in regulations])
    return {str(row["task_id"]) for row in rows}


async def task_parties(conn: asyncpg.Connection, task_id: str) -> asyncpg.Record | None:
    """Who a task concerns: its owner_org_id, escalated_to_org_id (None until escalated) and
    its regulation's lead_agency_id; None for an unknown task."""
    return await conn.fetchrow(
        "SELECT t.owner_org_id, t.escalated_to_org_id, r.lead_agency_id FROM tasks t"
        " JOIN regulations r USING (regulation_id) WHERE t.task_id = $1::uuid", task_id)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
