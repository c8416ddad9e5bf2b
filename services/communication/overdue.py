"""Finds tasks past their due time, marks them overdue, escalates each to its owner's
superior organisation and emits TaskOverdue; the owner's scorecard counts it."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Callable

import asyncpg
from prometheus_client import Counter

from policy.communication.v1 import events_pb2 as task_events
from policy.communication.v1 import task_pb2
from policykit.envelope import new_event
from policykit.outbox import enqueue
from policykit.reference import ReferenceData, UnknownReference

from services.communication.handlers import OPEN_STATUSES, SOURCE, TASK_TOPIC
from services.communication.organisations import superior_of

log = logging.getLogger(__name__)

TASKS_OVERDUE = Counter("policy_communication_tasks_overdue_total",
                        "Tasks found past their due time and escalated.")


async def sweep(pool: asyncpg.Pool, reference: ReferenceData, now: datetime,
                batch_size: int = 500) -> int:
    """Marks up to batch_size open tasks due before `now` as overdue; returns how many."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT t.task_id, t.regulation_id, t.owner_org_id, t.due_at, r.lead_agency_id"
            " FROM tasks t JOIN regulations r USING (regulation_id)"
            " WHERE t.overdue_at IS NULL AND t.status = ANY($1::smallint[]) AND t.due_at < $2"
            " ORDER BY t.due_at LIMIT $3 FOR UPDATE OF t SKIP LOCKED",
            list(OPEN_STATUSES), now, batch_size)
        for row in rows:
            try:
                commissioner = reference.agency_on(row["lead_agency_id"], now.date()).id
            except UnknownReference:
                commissioner = row["lead_agency_id"]
            superior = superior_of(row["owner_org_id"], commissioner, reference)
            await conn.execute(
                "UPDATE tasks SET status = $2, overdue_at = $3, escalated_to_org_id = $4,"
                " updated_at = $3 WHERE task_id = $1",
                row["task_id"], task_pb2.TASK_STATUS_OVERDUE, now, superior)
            overdue = task_events.TaskOverdue(
                regulation_id=row["regulation_id"], task_id=str(row["task_id"]),
                owner_org_id=row["owner_org_id"], escalated_to_org_id=superior)
            overdue.due_at.FromDatetime(row["due_at"])
            await enqueue(conn, TASK_TOPIC, new_event(overdue, SOURCE, time=now))
    if rows:
        TASKS_OVERDUE.inc(len(rows))
        log.info("%d task(s) overdue and escalated", len(rows))
    return len(rows)


async def run(pool: asyncpg.Pool, reference: ReferenceData, stop: asyncio.Event,
              interval_s: float, clock: Callable[[], datetime]) -> None:
    """Sweeps every interval until `stop` is set; a failed sweep is logged and retried."""
    while not stop.is_set():
        try:
            while await sweep(pool, reference, clock()):
                pass
        except Exception:
            log.exception("overdue sweep failed; retrying")
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except asyncio.TimeoutError:
            pass
