"""What the publication service puts in its outbox, always in the transaction that changes
its state: its own events, which it records in the timelines they concern at the same time
(it does not consume its own topic), and open-data documents."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
from google.protobuf.message import Message

from policykit.envelope import Event, headers_to_json, new_event
from policykit.outbox import OutboxError, enqueue

from services.publication import timeline

SOURCE = "policy/publication"
TOPIC = "policy.publication.v1"
OPEN_DATA_TOPIC = "policy.open-data.v1"
OPEN_DATA_CONTENT_TYPE = "application/json"


async def emit(conn: asyncpg.Connection, payload: Message, time: datetime, *,
               event_id: str | None = None) -> Event:
    """Enqueues the event on policy.publication.v1 and adds it to its regulation's timeline,
    and to the other regulation's for an amendment or a repeal."""
    event = new_event(payload, SOURCE, event_id=event_id, time=time)
    await enqueue(conn, TOPIC, event)
    await timeline.record(conn, event)
    linked = timeline.linked_regulation(payload)
    if linked:
        await timeline.record(conn, event, linked)
    return event


async def enqueue_document(conn: asyncpg.Connection, regulation_id: str, document: bytes) -> None:
    """Enqueues an open-data document on policy.open-data.v1, keyed by its regulation.

    The topic carries JSON, not an event envelope, so the row is written here rather than
    through policykit.outbox.enqueue, which takes events; the relay publishes it in order
    with the rest."""
    if not conn.is_in_transaction():
        raise OutboxError("enqueue_document must run inside the transaction that reads the "
                          "document")
    headers = [("content-type", OPEN_DATA_CONTENT_TYPE.encode())]
    await conn.execute(
        "INSERT INTO outbox (event_id, topic, record_key, value, headers)"
        " VALUES ($1, $2, $3, $4, $5)",
        uuid.uuid4(), OPEN_DATA_TOPIC, regulation_id.encode(), document,
        headers_to_json(headers))
