"""The consumer group `publication`: every event of the drafting, consultation, communication
and evaluation topics goes into its regulation's timeline, once however often it is
delivered, and moves the views the timeline shows — the regulation (from the drafting
events), its communication tasks and its consultations. Events of different topics may
arrive in any order; each view keeps what its own events say."""

from __future__ import annotations

from datetime import datetime
from typing import Awaitable, Callable

import asyncpg
from google.protobuf.message import Message

from policy.communication.v1 import events_pb2 as communication
from policy.communication.v1 import task_pb2
from policy.consultation.v1 import events_pb2 as consultation
from policy.drafting.v1 import events_pb2 as drafting
from policy.publication.v1 import publication_service_pb2 as api
from policykit.envelope import Event
from policykit.outbox import first_delivery

from services.publication import storage, timeline
from services.publication.descriptions import COUNTED_ONLY
from services.publication.storage import optional_time, update_consultation, update_task

CONSUMER = "publication"
Projection = Callable[[asyncpg.Connection, Message, datetime], Awaitable[None]]


def _draft_status(status: int) -> Projection:
    return lambda conn, p, time: storage.move_draft(conn, p.regulation_id, status, time)


def _task_status(status: int, **changes: Callable[[Message], object]) -> Projection:
    """Sets the task's status and the columns `changes` read from the event."""
    return lambda conn, p, time: update_task(
        conn, p.task_id, status, time, **{column: read(p) for column, read in changes.items()})


def _consultation(assignments: str, *values: Callable[[Message, datetime], object]) -> Projection:
    """Applies the assignments with the values read from the event and its time."""
    return lambda conn, p, time: update_consultation(
        conn, p.regulation_id, p.consultation_id, assignments,
        *(value(p, time) for value in values))


S = task_pb2
_PROJECTIONS: dict[type[Message], Projection] = {
    drafting.DraftRegistered: lambda conn, p, time: storage.register(conn, p, time),
    drafting.DraftRevised: lambda conn, p, time: storage.revise(conn, p, time),
    drafting.DraftSubmittedForConsultation: _draft_status(api.REGULATION_STATUS_IN_CONSULTATION),
    drafting.DraftAdopted: _draft_status(api.REGULATION_STATUS_ADOPTED),
    drafting.DraftWithdrawn: _draft_status(api.REGULATION_STATUS_WITHDRAWN),
    consultation.ConsultationOpened: _consultation(
        "opens_at = $3, closes_at = $4", lambda p, time: optional_time(p, "opens_at") or time,
        lambda p, time: optional_time(p, "closes_at")),
    consultation.ConsultationExtended: _consultation(
        "closes_at = $3", lambda p, time: optional_time(p, "closes_at")),
    consultation.CommentReceived: _consultation("comments_received = comments_received + 1"),
    consultation.CommentAnswered: _consultation(
        "comments_answered = comments_answered + $3", lambda p, time: len(p.comment_ids)),
    consultation.ConsultationClosed: _consultation(
        "closed_at = $3, closing = $4", lambda p, time: optional_time(p, "closed_at") or time,
        lambda p, time: p.SerializeToString()),
    consultation.ConsultationReportPublished: _consultation(
        "report_url = $3, report_published_at = $4, comments_answered = $5",
        lambda p, time: p.report_url,
        lambda p, time: optional_time(p, "published_at") or time,
        lambda p, time: p.comments_answered),
    communication.TaskCreated: lambda conn, p, time: storage.insert_task(conn, p, time),
    communication.TaskAssigned: _task_status(S.TASK_STATUS_ASSIGNED,
                                             owner_org_id=lambda p: p.owner_org_id),
    communication.TaskAccepted: _task_status(S.TASK_STATUS_ACCEPTED),
    communication.TaskProgressReported: _task_status(S.TASK_STATUS_IN_PROGRESS,
                                                     percent_done=lambda p: p.percent_done),
    communication.TaskCompleted: _task_status(
        S.TASK_STATUS_COMPLETED, evidence=lambda p: p.evidence.SerializeToString(),
        completed_late=lambda p: p.late, percent_done=lambda p: 100),
    communication.TaskOverdue: _task_status(
        S.TASK_STATUS_OVERDUE, escalated_to_org_id=lambda p: p.escalated_to_org_id),
    communication.TaskCancelled: _task_status(S.TASK_STATUS_CANCELLED,
                                              cancel_reason=lambda p: p.reason),
}


async def apply(conn: asyncpg.Connection, event: Event) -> None:
    """Moves the views the event concerns, then records it in the timeline (comments are
    counted only), in the caller's transaction."""
    project = _PROJECTIONS.get(type(event.payload))
    if project is not None:
        await project(conn, event.payload, event.time)
    if event.type in COUNTED_ONLY:
        await storage.mark_changed(conn, event.regulation_id)
    else:
        await timeline.record(conn, event)


class TimelineConsumer:
    """Handles each delivered event in one transaction; a redelivery changes nothing."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def handle(self, event: Event) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            if await first_delivery(conn, CONSUMER, event):
                await apply(conn, event)
