"""The drafting events the consultation service follows, as consumer group `consultation` of
policy.drafting.v1: a small projection of drafts (type, title, lead agency), and the windows
they open and close.

DraftSubmittedForConsultation opens the window: from the submission time, for the length
configured for the regulation type, and emits ConsultationOpened. DraftAdopted or
DraftWithdrawn while the window is open closes it at that time: an adopted draft's
consultation is reported on as usual; a withdrawn draft's gets its totals but no report, and
answers are no longer taken. Each event is applied once, in the transaction that records it
in the inbox."""

from __future__ import annotations

import logging
from datetime import timezone

import asyncpg
from google.protobuf.message import Message

from policy.consultation.v1 import consultation_service_pb2 as api
from policy.consultation.v1 import events_pb2 as events
from policy.drafting.v1 import events_pb2 as drafting
from policykit.envelope import Event
from policykit.kafka_io import RejectedEvent
from policykit.outbox import first_delivery

from services.consultation import closing, outbox
from services.consultation.config import ConsultationSettings
from services.consultation.storage import consultation_id_of, find_consultation, timestamp

log = logging.getLogger(__name__)

CONSUMER = "consultation"


def _time_of(event: Event, payload: Message, field: str):
    """When the change happened: the payload's own timestamp, else the event's time."""
    if payload.HasField(field):
        return getattr(payload, field).ToDatetime(tzinfo=timezone.utc)
    return event.time


class DraftEvents:
    def __init__(self, pool: asyncpg.Pool, settings: ConsultationSettings):
        self.pool = pool
        self.settings = settings
        self._appliers = {
            drafting.DraftRegistered: self._register,
            drafting.DraftRevised: self._revise,
            drafting.DraftSubmittedForConsultation: self._open,
            drafting.DraftAdopted: self._adopt,
            drafting.DraftWithdrawn: self._withdraw,
        }

    async def handle(self, event: Event) -> None:
        """Applies one delivered event in the transaction that records it in the inbox; a
        redelivery changes nothing. Other drafting events (ImpactAssessed) change nothing."""
        apply = self._appliers.get(type(event.payload))
        async with self.pool.acquire() as conn, conn.transaction():
            if await first_delivery(conn, CONSUMER, event) and apply is not None:
                await apply(conn, event)

    async def _register(self, conn: asyncpg.Connection, event: Event) -> None:
        registered = event.payload
        await conn.execute(
            "INSERT INTO drafts (regulation_id, regulation_type, title, lead_agency_id)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (regulation_id) DO UPDATE"
            " SET regulation_type = $2, title = $3, lead_agency_id = $4",
            registered.regulation_id, registered.regulation_type, registered.title,
            registered.lead_agency_id)

    async def _revise(self, conn: asyncpg.Connection, event: Event) -> None:
        if event.payload.title:
            await conn.execute("UPDATE drafts SET title = $2 WHERE regulation_id = $1",
                               event.regulation_id, event.payload.title)

    async def _adopt(self, conn: asyncpg.Connection, event: Event) -> None:
        await self._end(conn, event, _time_of(event, event.payload, "adopted_at"),
                        events.CLOSING_REASON_DRAFT_ADOPTED)

    async def _withdraw(self, conn: asyncpg.Connection, event: Event) -> None:
        await self._end(conn, event, _time_of(event, event.payload, "withdrawn_at"),
                        events.CLOSING_REASON_DRAFT_WITHDRAWN)

    async def _open(self, conn: asyncpg.Connection, event: Event) -> None:
        regulation_type = await conn.fetchval(
            "SELECT regulation_type FROM drafts WHERE regulation_id = $1", event.regulation_id)
        if regulation_type is None:
            raise RejectedEvent(f"draft {event.regulation_id} was submitted for consultation, "
                                "but its DraftRegistered was never received")
        opens_at = _time_of(event, event.payload, "submitted_at")
        closes_at = opens_at + self.settings.window_for(regulation_type)
        consultation_id = consultation_id_of(event.regulation_id)
        status = await conn.execute(
            "INSERT INTO consultations (consultation_id, regulation_id, state, opens_at,"
            " closes_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            consultation_id, event.regulation_id, api.CONSULTATION_STATE_OPEN, opens_at,
            closes_at)
        if status.endswith(" 0"):
            return  # the draft's window was opened before
        opened = events.ConsultationOpened(regulation_id=event.regulation_id,
                                           consultation_id=str(consultation_id))
        timestamp(opens_at, opened.opens_at)
        timestamp(closes_at, opened.closes_at)
        await outbox.enqueue(conn, opened, consultation_id=consultation_id)
        log.info("consultation %s opened until %s", consultation_id, closes_at.isoformat())

    async def _end(self, conn: asyncpg.Connection, event: Event, at, reason: int) -> None:
        consultation = await find_consultation(conn, event.regulation_id, lock="FOR UPDATE")
        if consultation is None or consultation["state"] != api.CONSULTATION_STATE_OPEN:
            return
        if at >= consultation["closes_at"]:
            # The window had ended first; the sweep just had not closed it yet.
            at, reason = consultation["closes_at"], events.CLOSING_REASON_WINDOW_ENDED
        await closing.close(conn, consultation["consultation_id"],
                            max(at, consultation["opens_at"]), reason)
