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
    await defer_many(conn, [event])


async def defer_many(conn: asyncpg.Connection, events: list[Event]) -> None:
    """Keeps the events, in their order, in one statement; a redelivered copy is kept once."""
    if not events:
        return
    records = [to_record(event) for event in events]
    await conn.execute(
        "INSERT INTO deferred_events (event_id, regulation_id, record_key, value, headers)"
        " SELECT e.event_id, e.regulation_id, e.record_key, e.value, e.headers"
        " FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::jsonb[])"
        " WITH ORDINALITY AS e(event_id, regulation_id, record_key, value, headers, n)"
        " ORDER BY e.n ON CONFLICT (event_id) DO NOTHING",
        [event.id for event in events], [event.regulation_id for event in events],
        [key for key, _, _ in records], [value for _, value, _ in records],
        [headers_to_json(headers) for _, _, headers in records])


async def take_deferred(conn: asyncpg.Connection, regulation_id: str) -> list[Event]:
    """Removes and returns the events kept for the regulation, in arrival order."""
    return (await take_deferred_many(conn, [regulation_id])).get(regulation_id, [])


async def take_deferred_many(conn: asyncpg.Connection,
                             regulation_ids: list[str]) -> dict[str, list[Event]]:
    """Removes and returns the events kept for the regulations, by regulation, each list in
    arrival order."""
    if not regulation_ids:
        return {}
    rows = await conn.fetch(
        "DELETE FROM deferred_events WHERE regulation_id = ANY($1::text[])"
        " RETURNING id, regulation_id, record_key, value, headers", regulation_ids)
    taken: dict[str, list[Event]] = {}
    for row in sorted(rows, key=lambda r: r["id"]):
        taken.setdefault(row["regulation_id"], []).append(from_record(
            bytes(row["record_key"]), bytes(row["value"]), headers_from_json(row["headers"])))
    return taken
