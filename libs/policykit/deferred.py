"""Events kept until their regulation is known.

Topics are ordered per regulation only within one topic, so an event of one stage can reach a
consumer before the DraftRegistered it depends on. A service keeps such events here and
applies them once the registration arrives. The service's schema provides the table:

    CREATE TABLE deferred_events (
        id bigserial PRIMARY KEY, event_id text NOT NULL UNIQUE, regulation_id text NOT NULL,
        record_key bytea NOT NULL, value bytea NOT NULL, headers jsonb NOT NULL,
        deferred_at timestamptz NOT NULL DEFAULT now());
"""

from __future__ import annotations

import asyncpg

from policykit.envelope import Event, from_record, headers_from_json, headers_to_json, to_record


async def defer(conn: asyncpg.Connection, event: Event) -> None:
    """Keeps the event; a redelivered copy is kept once."""
    key, value, headers = to_record(event)
    await conn.execute(
        "INSERT INTO deferred_events (event_id, regulation_id, record_key, value, headers)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
        event.id, event.regulation_id, key, value, headers_to_json(headers))


async def take_deferred(conn: asyncpg.Connection, regulation_id: str) -> list[Event]:
    """Removes and returns the events kept for the regulation, in arrival order."""
    rows = await conn.fetch(
        "DELETE FROM deferred_events WHERE regulation_id = $1"
        " RETURNING id, record_key, value, headers", regulation_id)
    return [from_record(bytes(r["record_key"]), bytes(r["value"]), headers_from_json(r["headers"]))
            for r in sorted(rows, key=lambda r: r["id"])]
