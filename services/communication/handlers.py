"""Stream handlers: every lifecycle event the engine consumes becomes, through the playbook,
stored communication tasks and task events, exactly once however often it is delivered."""

from __future__ import annotations

import collections
import logging
from dataclasses import replace
from datetime import timezone

import asyncpg
from prometheus_client import Counter

from policy.communication.v1 import events_pb2 as task_events
from policy.communication.v1 import task_pb2
from policy.drafting.v1 import events_pb2 as drafting
from policykit import audit, db, deferred
from policykit.envelope import Event, new_event
from policykit.kafka_io import RejectedEvent, event_scope
from policykit.outbox import OutboxRelay, enqueue_many, first_deliveries, first_delivery
from policykit.reference import ReferenceData, UnknownReference

from services.communication import storage
from services.communication.planner import PlannedTask, Regulation, plan
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


def _count_created(created: collections.Counter[str]) -> None:
    """Counts tasks once their transaction has committed: a batch that rolls back is handled
    again event by event, and its tasks would otherwise be counted twice."""
    for rule, count in created.items():
        TASKS_CREATED.labels(rule).inc(count)


class _Pending:
    """What the events handled in one transaction produce, written together rather than per
    event: what is known of their regulations (read once, changes saved in the statement that
    stores the tasks, withdrawals marked after it), their planned tasks (stored before
    anything reads the tasks table, and at the end) and their task events, in order, each
    with the caller it is audited as; and the events that overtook the registration of their
    regulation, by regulation, in arrival order (those kept by earlier transactions for the
    registrations among these events, then those among these events)."""

    def __init__(self, regulations: dict[str, tuple[Regulation, bool]],
                 overtaken: dict[str, list[Event]]):
        self.regulations = regulations  # (regulation, withdrawn) by id, as applied so far
        self.unsaved: dict[str, Regulation] = {}
        self.withdrawn: list[str] = []
        self.overtaken = overtaken
        self.planned: list[tuple[Event, PlannedTask, audit.Caller]] = []
        self.created: collections.Counter[str] = collections.Counter()  # by playbook rule
        self.events: list[Event] = []
        self.callers: list[audit.Caller] = []

    def save(self, regulation: Regulation) -> None:
        known = self.regulations.get(regulation.regulation_id)
        self.regulations[regulation.regulation_id] = (regulation, bool(known and known[1]))
        self.unsaved[regulation.regulation_id] = regulation

    def withdraw(self, regulation_id: str) -> None:
        self.regulations[regulation_id] = (self.regulations[regulation_id][0], True)
        self.withdrawn.append(regulation_id)

    def take_unsaved(self) -> list[Regulation]:
        unsaved, self.unsaved = list(self.unsaved.values()), {}
        return unsaved

    async def write_withdrawals(self, conn: asyncpg.Connection) -> None:
        """Once the regulations are saved: one registered in this batch has no row before."""
        if self.withdrawn:
            await storage.mark_withdrawn(conn, self.withdrawn)
            self.withdrawn.clear()

    def plan(self, event: Event, tasks: list[PlannedTask]) -> None:
        by = audit.caller()
        self.planned += [(event, task, by) for task in tasks]

    def emit(self, payloads: list, by: audit.Caller) -> None:
        for payload in payloads:
            self.add(new_event(payload, SOURCE), by)

    def add(self, event: Event, by: audit.Caller) -> None:
        self.events.append(event)
        self.callers.append(by)


class TaskEngine:
    """Applies lifecycle events to the regulation projection and creates their tasks."""

    def __init__(self, pool: asyncpg.Pool, playbook: Playbook, reference: ReferenceData):
        self.pool = pool
        self.playbook = playbook
        self.reference = reference

    async def handle(self, event: Event) -> None:
        """Handles one delivered event in one transaction; a redelivery changes nothing."""
        created: collections.Counter[str] = collections.Counter()
        async with self.pool.acquire() as conn, conn.transaction():
            if await first_delivery(conn, CONSUMER, event):
                created = await self.apply_all(conn, [event])
        _count_created(created)
        OutboxRelay.wake()

    async def handle_batch(self, events: list[Event]) -> None:
        """Handles events delivered together in one transaction, in their order, all or none;
        each as `handle` would, so a redelivery of any of them changes nothing."""
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = await first_deliveries(conn, CONSUMER, events)
            first = []
            for event in events:
                if event.id in fresh:
                    fresh.discard(event.id)  # a copy later in the batch is a redelivery
                    first.append(event)
            created = await self.apply_all(conn, first)
        _count_created(created)
        OutboxRelay.wake()  # its tasks are committed: publish them without waiting for a poll

    async def apply_all(self, conn: asyncpg.Connection,
                        events: list[Event]) -> collections.Counter[str]:
        """Applies the events in their order, then writes the tasks they create in one statement
        and the task events they emit in one outbox statement and one audit statement; returns
        the number of tasks created by playbook rule."""
        registered = {event.regulation_id: event for event in events
                      if isinstance(event.payload, drafting.DraftRegistered)}
        pending = _Pending(
            await storage.get_regulations(conn, list({e.regulation_id for e in events})),
            await deferred.take_deferred_many(conn, list(registered)))
        for event in events:
            with event_scope(event):
                await self.apply(conn, event, pending)
        # Those still waiting for their registration are kept for a later transaction.
        await deferred.defer_many(conn, [event for waiting in pending.overtaken.values()
                                         for event in waiting])
        pending.overtaken.clear()
        # A replica handling another topic may have deferred events of these regulations since
        # the batch began (it cannot see them registered before this commits): take them now,
        # as a registration handled alone would, rather than leave them waiting for ever.
        caught_up = await deferred.take_deferred_many(conn, list(registered))
        for regulation_id, overtaken in caught_up.items():
            with event_scope(registered[regulation_id]):
                for event in overtaken:
                    await self.apply(conn, event, pending)
        await self._store_planned(conn, pending)
        await enqueue_many(conn, TASK_TOPIC, pending.events, callers=pending.callers)
        return pending.created

    async def apply(self, conn: asyncpg.Connection, event: Event,
                    pending: _Pending) -> None:
        payload = event.payload
        if isinstance(payload, drafting.DraftRegistered):
            regulation = regulation_from_draft(payload)
            pending.save(regulation)
            self._plan_tasks(event, regulation, pending)
            for overtaken in pending.overtaken.pop(event.regulation_id, ()):
                await self.apply(conn, overtaken, pending)
            return
        known = pending.regulations.get(event.regulation_id)
        if known is None:
            # Another topic's event overtook the registration: keep it until that arrives.
            log.info("deferring %s until %s is registered", event.type, event.regulation_id)
            pending.overtaken.setdefault(event.regulation_id, []).append(event)
            return
        regulation, withdrawn = known
        if withdrawn:
            return
        if isinstance(payload, drafting.DraftRevised) and payload.title:
            regulation = replace(regulation, title=payload.title)
            pending.save(regulation)
        elif isinstance(payload, drafting.ImpactAssessed):
            regulation = replace(
                regulation, impact_level=payload.impact_level or regulation.impact_level,
                affected_groups=tuple(payload.affected_groups) or regulation.affected_groups,
                affected_province_codes=tuple(payload.affected_province_codes)
                or regulation.affected_province_codes)
            pending.save(regulation)
        elif isinstance(payload, drafting.DraftWithdrawn):
            pending.withdraw(event.regulation_id)
            await self._cancel_open_tasks(conn, event, f"dự thảo đã rút: {payload.reason}",
                                          pending)
            return
        self._plan_tasks(event, regulation, pending)

    def _plan_tasks(self, event: Event, regulation: Regulation, pending: _Pending) -> None:
        try:
            pending.plan(event, plan(self.playbook, event, regulation, self.reference))
        except UnknownReference as error:
            raise RejectedEvent(f"reference data: {error}") from None

    async def _store_planned(self, conn: asyncpg.Connection, pending: _Pending) -> None:
        """Stores the tasks planned so far, with the regulations they belong to, and emits
        TaskCreated for those that are new."""
        planned, pending.planned = pending.planned, []
        now = storage.utc_now()
        # The TaskCreated of every task planned are made while PostgreSQL stores the tasks;
        # those already stored (a task planned again) are dropped once it has answered.
        new_ids, made = await db.meanwhile(
            storage.store_tasks(conn, pending.take_unsaved(),
                                [(event, task) for event, task, _ in planned],
                                self.playbook.version, now),
            lambda: [new_event(storage.task_created(event, task, self.playbook.version, now),
                               SOURCE) for event, task, _ in planned])
        await pending.write_withdrawals(conn)
        created = [(task, event, by) for (_, task, by), event in zip(planned, made)
                   if task.task_id in new_ids]
        for task, event, by in created:
            pending.created[task.rule_id] += 1
            pending.add(event, by)
        if created:
            log.info("%d event(s) created %d task(s)",
                     len({event.id for event, _, _ in planned}), len(created))

    async def _cancel_open_tasks(self, conn: asyncpg.Connection, event: Event,
                                 reason: str, pending: _Pending) -> None:
        await self._store_planned(conn, pending)  # the open tasks include those planned so far
        now = storage.utc_now()
        rows = await conn.fetch(
            "UPDATE tasks SET status = $1, cancel_reason = $2, updated_at = $3"
            " WHERE regulation_id = $4 AND status = ANY($5::smallint[]) RETURNING task_id",
            task_pb2.TASK_STATUS_CANCELLED, reason, now, event.regulation_id, list(OPEN_STATUSES))
        cancelled = [task_events.TaskCancelled(regulation_id=event.regulation_id,
                                               task_id=str(row["task_id"]), reason=reason)
                     for row in rows]
        for payload in cancelled:
            payload.cancelled_at.FromDatetime(now)
        pending.emit(cancelled, audit.caller())
