"""Stream handlers: every lifecycle event the engine consumes becomes, through the playbook,
stored communication tasks and task events, exactly once however often it is delivered."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timezone

import asyncpg
from prometheus_client import Counter

from policy.communication.v1 import events_pb2 as task_events
from policy.communication.v1 import task_pb2
from policy.drafting.v1 import events_pb2 as drafting
from policykit import deferred
from policykit.envelope import Event, new_event
from policykit.kafka_io import RejectedEvent
from policykit.outbox import enqueue, first_delivery
from policykit.reference import ReferenceData, UnknownReference

from services.communication import storage
from services.communication.planner import Regulation, plan
from services.communication.playbook import Playbook

log = logging.getLogger(__name__)

TASKS_CREATED = Counter("policy_communication_tasks_created_total",
                        "Communication tasks created, by playbook rule.", ["rule"])

CONSUMER = "communication"
SOURCE = "policy/communication"
TASK_TOPIC = "policy.communication.v1"
OPEN_STATUSES = (task_pb2.TASK_STATUS_CREATED, task_pb2.TASK_STATUS_ASSIGNED,
                 task_pb2.TASK_STATUS_ACCEPTED, task_pb2.TASK_STATUS_IN_PROGRESS,
                 task_pb2.TASK_STATUS_OVERDUE)


def _time(timestamp):
    return timestamp.ToDatetime(tzinfo=timezone.utc) if timestamp.ByteSize() else None


def regulation_from_draft(payload: drafting.DraftRegistered) -> Regulation:
    return Regulation(
        regulation_id=payload.regulation_id, regulation_type=payload.regulation_type,
        title=payload.title, lead_agency_id=payload.lead_agency_id,
        impact_level=payload.impact_level, affected_groups=tuple(payload.affected_groups),
        affected_province_codes=tuple(payload.affected_province_codes),
        planned_consultation_start=_time(payload.planned_consultation_start),
        planned_adoption=_time(payload.planned_adoption))


class TaskEngine:
    """Applies lifecycle events to the regulation projection and creates their tasks."""

    def __init__(self, pool: asyncpg.Pool, playbook: Playbook, reference: ReferenceData):
        self.pool = pool
        self.playbook = playbook
        self.reference = reference

    async def handle(self, event: Event) -> None:
        """Handles one delivered event in one transaction; a redelivery changes nothing."""
        async with self.pool.acquire() as conn, conn.transaction():
            if await first_delivery(conn, CONSUMER, event):
                await self.apply(conn, event)

    async def apply(self, conn: asyncpg.Connection, event: Event) -> None:
        payload = event.payload
        if isinstance(payload, drafting.DraftRegistered):
            regulation = regulation_from_draft(payload)
            await storage.save_regulation(conn, regulation)
            await self._create_tasks(conn, event, regulation)
            for overtaken in await deferred.take_deferred(conn, event.regulation_id):
                await self.apply(conn, overtaken)
            return
        known = await storage.get_regulation(conn, event.regulation_id)
        if known is None:
            # Another topic's event overtook the registration: keep it until that arrives.
            log.info("deferring %s until %s is registered", event.type, event.regulation_id)
            await deferred.defer(conn, event)
            return
        regulation, withdrawn = known
        if withdrawn:
            return
        if isinstance(payload, drafting.DraftRevised) and payload.title:
            regulation = replace(regulation, title=payload.title)
            await storage.save_regulation(conn, regulation)
        elif isinstance(payload, drafting.ImpactAssessed):
            regulation = replace(
                regulation, impact_level=payload.impact_level or regulation.impact_level,
                affected_groups=tuple(payload.affected_groups) or regulation.affected_groups,
                affected_province_codes=tuple(payload.affected_province_codes)
                or regulation.affected_province_codes)
            await storage.save_regulation(conn, regulation)
        elif isinstance(payload, drafting.DraftWithdrawn):
            await storage.mark_withdrawn(conn, event.regulation_id)
            await self._cancel_open_tasks(conn, event, f"dự thảo đã rút: {payload.reason}")
            return
        await self._create_tasks(conn, event, regulation)

    async def _create_tasks(self, conn: asyncpg.Connection, event: Event,
                            regulation: Regulation) -> None:
        try:
            planned = plan(self.playbook, event, regulation, self.reference)
        except UnknownReference as error:
            raise RejectedEvent(f"reference data: {error}") from None
        created = await storage.insert_tasks(conn, planned, event, self.playbook.version,
                                             storage.utc_now())
        for task in created:
            TASKS_CREATED.labels(task.playbook_rule).inc()
            await enqueue(conn, TASK_TOPIC, new_event(
                task_events.TaskCreated(regulation_id=task.regulation_id, task=task), SOURCE))
        if created:
            log.info("%s created %d task(s)", event.type, len(created))

    async def _cancel_open_tasks(self, conn: asyncpg.Connection, event: Event,
                                 reason: str) -> None:
        now = storage.utc_now()
        rows = await conn.fetch(
            "UPDATE tasks SET status = $1, cancel_reason = $2, updated_at = $3"
            " WHERE regulation_id = $4 AND status = ANY($5::smallint[]) RETURNING task_id",
            task_pb2.TASK_STATUS_CANCELLED, reason, now, event.regulation_id, list(OPEN_STATUSES))
        for row in rows:
            cancelled = task_events.TaskCancelled(
                regulation_id=event.regulation_id, task_id=str(row["task_id"]), reason=reason)
            cancelled.cancelled_at.FromDatetime(now)
            await enqueue(conn, TASK_TOPIC, new_event(cancelled, SOURCE))
