"""The evaluation service's tables for what it learns from events: regulations, the scored
items (tasks, comments, survey results, alerts), consultations, the timeline, deferred events
and surge detectors. Scorecard queries are in scorecards.py, delivery aggregates in
delivery.py."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

import asyncpg

from policy.drafting.v1 import events_pb2 as drafting

from services.evaluation.scoring import (AlertItem, CommentItem, RegulationContext,
                                         SurveyItem, TaskItem)
from services.evaluation.surge import Detector
from services.evaluation.units import NATIONAL


async def lock_regulation(conn: asyncpg.Connection, regulation_id: str) -> None:
    """Serialises changes to one regulation's items until the transaction ends; the delivery
    aggregator takes the same lock before it marks the regulation's targets reached."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                       f"evaluation/regulation/{regulation_id}")


@dataclass(frozen=True)
class Regulation:
    regulation_id: str
    title: str
    lead_agency_id: str
    planned_consultation_start: datetime | None
    consultation_opened_at: datetime | None
    withdrawn: bool

    @property
    def context(self) -> RegulationContext:
        return RegulationContext(self.lead_agency_id, self.consultation_opened_at)


def time_of(timestamp) -> datetime | None:
    """A protobuf Timestamp as an aware datetime; None when unset."""
    return timestamp.ToDatetime(tzinfo=timezone.utc) if timestamp.ByteSize() else None


async def insert_regulation(conn: asyncpg.Connection, registered: drafting.DraftRegistered,
                            at: datetime) -> None:
    await conn.execute(
        "INSERT INTO regulations (regulation_id, title, lead_agency_id, impact_level,"
        " affected_province_codes, planned_consultation_start, registered_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (regulation_id) DO NOTHING",
        registered.regulation_id, registered.title, registered.lead_agency_id,
        registered.impact_level, list(registered.affected_province_codes),
        time_of(registered.planned_consultation_start), at)


async def get_regulation(conn: asyncpg.Connection, regulation_id: str) -> Regulation | None:
    row = await conn.fetchrow(
        "SELECT regulation_id, title, lead_agency_id, planned_consultation_start,"
        " consultation_opened_at, withdrawn FROM regulations WHERE regulation_id = $1",
        regulation_id)
    return Regulation(**row) if row else None


async def revise_regulation(conn: asyncpg.Connection, regulation_id: str, *,
                            title: str = "", impact_level: int = 0,
                            affected_province_codes: list[str] = ()) -> None:
    """Keeps what a revision or assessment changed; empty values keep the current ones."""
    await conn.execute(
        "UPDATE regulations SET title = coalesce(nullif($2, ''), title),"
        " impact_level = coalesce(nullif($3, 0), impact_level),"
        " affected_province_codes = CASE WHEN cardinality($4::text[]) > 0 THEN $4"
        " ELSE affected_province_codes END WHERE regulation_id = $1",
        regulation_id, title, impact_level, list(affected_province_codes))


async def withdraw_regulation(conn: asyncpg.Connection, regulation_id: str) -> None:
    await conn.execute("UPDATE regulations SET withdrawn = true WHERE regulation_id = $1",
                       regulation_id)


async def open_consultation(conn: asyncpg.Connection, regulation_id: str,
                            consultation_id: str, opens_at: datetime,
                            closes_at: datetime | None) -> None:
    """Records the consultation; the regulation's first opening is the one goes-first
    tasks are measured against."""
    await conn.execute(
        "INSERT INTO consultations (regulation_id, consultation_id, opens_at, closes_at)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (regulation_id, consultation_id) DO NOTHING",
        regulation_id, consultation_id, opens_at, closes_at)
    # least() passes over NULL: the first opening sets it.
    await conn.execute(
        "UPDATE regulations SET consultation_opened_at = least(consultation_opened_at, $2)"
        " WHERE regulation_id = $1", regulation_id, opens_at)


async def extend_consultation(conn: asyncpg.Connection, regulation_id: str,
                              consultation_id: str, closes_at: datetime | None) -> None:
    await conn.execute("UPDATE consultations SET closes_at = $3"
                       " WHERE regulation_id = $1 AND consultation_id = $2",
                       regulation_id, consultation_id, closes_at)


async def close_consultation(conn: asyncpg.Connection, regulation_id: str,
                             consultation_id: str, closed_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO consultations (regulation_id, consultation_id, opens_at, closed_at)"
        " VALUES ($1, $2, $3, $3) ON CONFLICT (regulation_id, consultation_id)"
        " DO UPDATE SET closed_at = $3", regulation_id, consultation_id, closed_at)


async def consultation_closed(conn: asyncpg.Connection, regulation_id: str,
                              consultation_id: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT closed_at IS NOT NULL FROM consultations"
        " WHERE regulation_id = $1 AND consultation_id = $2", regulation_id, consultation_id))


# Tasks.

_TASK_COLUMNS = ("task_id, regulation_id, kind, owner_org_id, channel, targets, unreached,"
                 " due_at, status, goes_first, overdue_at, completed_at, late, evidence_reach")


def task_from_row(row: asyncpg.Record) -> TaskItem:
    return TaskItem(
        task_id=str(row["task_id"]), regulation_id=row["regulation_id"], kind=row["kind"],
        owner_org_id=row["owner_org_id"], channel=row["channel"],
        targets=tuple(row["targets"]), unreached=tuple(row["unreached"]),
        due_at=row["due_at"], status=row["status"], goes_first=row["goes_first"],
        overdue=row["overdue_at"] is not None, completed_at=row["completed_at"],
        late=row["late"], evidence_reach=row["evidence_reach"])


async def insert_task(conn: asyncpg.Connection, task: TaskItem, *, trigger_event_id: str,
                      title: str, audience: str, created_at: datetime) -> bool:
    """Stores a new task; False when it was already known."""
    status = await conn.execute(
        "INSERT INTO tasks (task_id, regulation_id, trigger_event_id, kind, title, channel,"
        " owner_org_id, audience, targets, unreached, due_at, created_at, status, goes_first)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        " ON CONFLICT (task_id) DO NOTHING",
        task.task_id, task.regulation_id, trigger_event_id, task.kind, title, task.channel,
        task.owner_org_id, audience, list(task.targets), list(task.unreached), task.due_at,
        created_at, task.status, task.goes_first)
    return status.endswith(" 1")


async def lock_task(conn: asyncpg.Connection, task_id: str) -> tuple[TaskItem, str] | None:
    """Returns the task and the id of the event that triggered it, locked."""
    row = await conn.fetchrow(
        f"SELECT {_TASK_COLUMNS}, trigger_event_id FROM tasks WHERE task_id = $1::uuid"
        " FOR UPDATE", task_id)
    return (task_from_row(row), row["trigger_event_id"]) if row else None


async def lock_tasks(conn: asyncpg.Connection, condition: str, *args) -> list[TaskItem]:
    """Returns the tasks matching an SQL condition over the tasks table, locked."""
    rows = await conn.fetch(
        f"SELECT {_TASK_COLUMNS} FROM tasks WHERE {condition} ORDER BY task_id FOR UPDATE",
        *args)
    return [task_from_row(row) for row in rows]


async def tasks_of(conn: asyncpg.Connection, regulation_id: str) -> list[TaskItem]:
    rows = await conn.fetch(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE regulation_id = $1"
                            " ORDER BY due_at, task_id", regulation_id)
    return [task_from_row(row) for row in rows]


async def save_task(conn: asyncpg.Connection, task: TaskItem, *,
                    overdue_at: datetime | None = None, escalated_to: str | None = None) -> None:
    await conn.execute(
        "UPDATE tasks SET status = $2, completed_at = $3, late = $4, evidence_reach = $5,"
        " unreached = $6, overdue_at = coalesce(overdue_at, $7),"
        " escalated_to_org_id = coalesce($8, escalated_to_org_id) WHERE task_id = $1::uuid",
        task.task_id, task.status, task.completed_at, task.late, task.evidence_reach,
        list(task.unreached), overdue_at, escalated_to)


async def reached_regions(conn: asyncpg.Connection, regulation_id: str,
                          channel: int) -> set[str]:
    """The regions (units in force today, or NATIONAL) that delivery reports reached on the
    channel for the regulation."""
    rows = await conn.fetch("SELECT region_id FROM reached WHERE regulation_id = $1"
                            " AND channel = $2", regulation_id, channel)
    return {row["region_id"] for row in rows}


def unreached_targets(targets: tuple[str, ...], reached: set[str]) -> tuple[str, ...]:
    """A national delivery reaches every target; any delivery reaches a national target."""
    if NATIONAL in reached:
        return ()
    return tuple(t for t in targets if t not in reached and not (t == NATIONAL and reached))


# Comments.

_COMMENT_COLUMNS = ("regulation_id, comment_id, province_code, article_ref, received_at,"
                    " answered_at, owed")


def _comment(row: asyncpg.Record) -> CommentItem:
    return CommentItem(**row)


async def insert_comment(conn: asyncpg.Connection, comment: CommentItem, *,
                         consultation_id: str, campaign_id: str, stakeholder_type: int) -> bool:
    status = await conn.execute(
        f"INSERT INTO comments ({_COMMENT_COLUMNS}, consultation_id, campaign_id,"
        " stakeholder_type) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (regulation_id, comment_id) DO NOTHING",
        comment.regulation_id, comment.comment_id, comment.province_code, comment.article_ref,
        comment.received_at, comment.answered_at, comment.owed, consultation_id, campaign_id,
        stakeholder_type)
    return status.endswith(" 1")


async def lock_comments(conn: asyncpg.Connection, condition: str, *args) -> list[CommentItem]:
    rows = await conn.fetch(f"SELECT {_COMMENT_COLUMNS} FROM comments WHERE {condition}"
                            " ORDER BY comment_id FOR UPDATE", *args)
    return [_comment(row) for row in rows]


async def save_comments(conn: asyncpg.Connection, comments: list[CommentItem]) -> None:
    await conn.executemany(
        "UPDATE comments SET answered_at = $3, owed = $4 WHERE regulation_id = $1"
        " AND comment_id = $2",
        [(c.regulation_id, c.comment_id, c.answered_at, c.owed) for c in comments])


# Survey results.

async def lock_survey(conn: asyncpg.Connection, regulation_id: str, survey_id: str,
                      region_id: str, stage: int) -> SurveyItem | None:
    row = await conn.fetchrow(
        "SELECT regulation_id, survey_id, region_id, stage, respondents, positive, recorded_at"
        " FROM survey_results WHERE regulation_id = $1 AND survey_id = $2 AND region_id = $3"
        " AND stage = $4 FOR UPDATE", regulation_id, survey_id, region_id, stage)
    return SurveyItem(**row) if row else None


async def save_survey(conn: asyncpg.Connection, survey: SurveyItem) -> None:
    await conn.execute(
        "INSERT INTO survey_results (regulation_id, survey_id, region_id, stage, respondents,"
        " positive, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (regulation_id, survey_id, region_id, stage) DO UPDATE SET"
        " respondents = $5, positive = $6, recorded_at = $7",
        survey.regulation_id, survey.survey_id, survey.region_id, survey.stage,
        survey.respondents, survey.positive, survey.recorded_at)


# Alerts.

_ALERT_COLUMNS = ("alert_id, regulation_id, claim, region_id, raised_at, rebuttal_task_id,"
                  " rebuttal_due_at, rebutted_at, missed")


async def insert_alert(conn: asyncpg.Connection, alert: AlertItem, *, source: str,
                       observed_rate: float, baseline_rate: float,
                       window_start: datetime) -> None:
    await conn.execute(
        "INSERT INTO alerts (alert_id, regulation_id, claim, region_id, raised_at, source,"
        " observed_rate, baseline_rate, window_start) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
        " $9)", alert.alert_id, alert.regulation_id, alert.claim, alert.region_id,
        alert.raised_at, source, observed_rate, baseline_rate, window_start)


async def lock_alert(conn: asyncpg.Connection, alert_id: str) -> AlertItem | None:
    row = await conn.fetchrow(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE alert_id = $1"
                              " FOR UPDATE", alert_id)
    return AlertItem(**row) if row else None


async def save_alert(conn: asyncpg.Connection, alert: AlertItem) -> None:
    await conn.execute(
        "UPDATE alerts SET rebuttal_task_id = $2, rebuttal_due_at = $3, rebutted_at = $4,"
        " missed = $5 WHERE alert_id = $1", alert.alert_id, alert.rebuttal_task_id,
        alert.rebuttal_due_at, alert.rebutted_at, alert.missed)


# Surge detectors.

async def lock_detector(conn: asyncpg.Connection, regulation_id: str) -> Detector:
    state = await conn.fetchval(
        "SELECT state FROM surge_detectors WHERE regulation_id = $1 FOR UPDATE", regulation_id)
    return Detector.from_json(json.loads(state)) if state else Detector()


async def save_detector(conn: asyncpg.Connection, regulation_id: str,
                        detector: Detector) -> None:
    await conn.execute(
        "INSERT INTO surge_detectors (regulation_id, state) VALUES ($1, $2)"
        " ON CONFLICT (regulation_id) DO UPDATE SET state = $2",
        regulation_id, json.dumps(detector.to_json(), ensure_ascii=False))


# The timeline.

async def add_to_timeline(conn: asyncpg.Connection, event_id: str, regulation_id: str,
                          event_type: str, at: datetime, summary: str) -> None:
    await conn.execute(
        "INSERT INTO timeline (regulation_id, event_id, event_type, occurred_at, summary)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        regulation_id, event_id, event_type, at, summary)


# What the dashboard lists.

async def overdue_tasks(conn: asyncpg.Connection, limit: int) -> tuple[list[asyncpg.Record], int]:
    """The tasks found overdue and still open, oldest due first, and how many there are."""
    condition = "t.overdue_at IS NOT NULL AND t.status NOT IN (5, 7)"
    rows = await conn.fetch(
        "SELECT t.task_id, t.regulation_id, t.kind, t.title, t.owner_org_id, t.due_at,"
        " t.escalated_to_org_id, r.title AS regulation_title FROM tasks t"
        f" JOIN regulations r USING (regulation_id) WHERE {condition}"
        " ORDER BY t.due_at, t.task_id LIMIT $1", limit)
    total = await conn.fetchval(f"SELECT count(*) FROM tasks t WHERE {condition}")
    return rows, total


async def recent_regulations(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT regulation_id, title, lead_agency_id, registered_at, consultation_opened_at,"
        " withdrawn FROM regulations ORDER BY registered_at DESC, regulation_id LIMIT $1", limit)


async def timeline_of(conn: asyncpg.Connection, regulation_id: str,
                      limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT event_type, occurred_at, summary FROM timeline WHERE regulation_id = $1"
        " ORDER BY occurred_at, seq LIMIT $2", regulation_id, limit)
