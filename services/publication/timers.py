"""Durable timers in PostgreSQL: the effective date and the reminders counted from it.

A timer is a row holding its regulation, its kind, when it fires and the event it emits
then. The worker takes the timers due by the service's clock that no other worker holds
(`FOR UPDATE SKIP LOCKED`), and in one transaction puts each one's event in the outbox and
the timeline and marks it fired. A crash before the commit leaves the timer due, after it
leaves it fired: each timer fires once whatever restarts, and never before its time. The
clock is a function, so tests drive the worker with a fake one."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from typing import Callable

import asyncpg
from google.protobuf.message import Message
from prometheus_client import Counter, Gauge, Histogram

from policy.publication.v1 import events_pb2 as publication
from policy.publication.v1 import publication_service_pb2 as api
from policykit.envelope import EVENT_TYPES

from services.publication import periodic, publishing, storage

log = logging.getLogger(__name__)

TIMERS_PENDING = Gauge("policy_publication_timers_pending",
                       "Timers scheduled and neither fired nor cancelled.")
TIMERS_OLDEST_DUE = Gauge("policy_publication_timers_oldest_due_seconds",
                          "How long the oldest due timer has been waiting to fire; 0 when none is.")
TIMERS_FIRED = Counter("policy_publication_timers_fired_total", "Timers fired, by kind.", ["kind"])
TIMER_LATENESS = Histogram(
    "policy_publication_timer_lateness_seconds",
    "How long after it was due a timer fired (fired_at - fire_at, or - the time it was "
    "scheduled if it was due already then), by kind.", ["kind"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400))

EFFECTIVE = "effective"
BEFORE_EFFECTIVE = "before-effective"
POST_IMPLEMENTATION_REVIEW = "post-implementation-review"


async def schedule(conn: asyncpg.Connection, regulation_id: str, kind: str, fire_at: datetime,
                   payload: Message, now: datetime) -> None:
    """Stores a timer that emits `payload` at fire_at, in the caller's transaction."""
    await conn.execute(
        "INSERT INTO timers (regulation_id, kind, fire_at, event_id, event_type, payload,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        regulation_id, kind, fire_at, uuid.uuid4(), payload.DESCRIPTOR.full_name,
        payload.SerializeToString(), now)


async def cancel(conn: asyncpg.Connection, regulation_id: str, now: datetime) -> int:
    """Cancels the regulation's timers that have not fired; returns how many."""
    status = await conn.execute(
        "UPDATE timers SET cancelled_at = $2"
        " WHERE regulation_id = $1 AND fired_at IS NULL AND cancelled_at IS NULL",
        regulation_id, now)
    return int(status.split()[-1])


async def fire_due(pool: asyncpg.Pool, now: datetime, batch_size: int = 100) -> int:
    """Fires up to batch_size timers due at `now`, oldest first; returns how many."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT id, regulation_id, kind, fire_at, event_id, event_type, payload,"
            " greatest(fire_at, created_at) AS due_since FROM timers"
            " WHERE fired_at IS NULL AND cancelled_at IS NULL AND fire_at <= $1"
            " ORDER BY fire_at, id LIMIT $2 FOR UPDATE SKIP LOCKED", now, batch_size)
        for row in rows:
            payload = EVENT_TYPES[row["event_type"]].FromString(row["payload"])
            # The event happened at the timer's time, however late the worker got to it.
            await publishing.emit(conn, payload, row["fire_at"], event_id=str(row["event_id"]))
            if isinstance(payload, publication.RegulationEffective):
                await storage.set_status(conn, row["regulation_id"],
                                         api.REGULATION_STATUS_EFFECTIVE, now)
            await conn.execute("UPDATE timers SET fired_at = $2 WHERE id = $1", row["id"], now)
    for row in rows:
        TIMERS_FIRED.labels(row["kind"]).inc()
        # A promulgation recorded after its effective date is due at once; the worker is late
        # only from then on, which is what ops are alerted on.
        TIMER_LATENESS.labels(row["kind"]).observe((now - row["due_since"]).total_seconds())
        log.info("timer %s of %s fired", row["kind"], row["regulation_id"])
    return len(rows)


async def refresh_gauges(pool: asyncpg.Pool, now: datetime) -> None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT count(*) AS pending,"
            " min(greatest(fire_at, created_at)) FILTER (WHERE fire_at <= $1) AS oldest_due"
            " FROM timers WHERE fired_at IS NULL AND cancelled_at IS NULL", now)
    TIMERS_PENDING.set(row["pending"])
    TIMERS_OLDEST_DUE.set((now - row["oldest_due"]).total_seconds() if row["oldest_due"] else 0)


async def run(pool: asyncpg.Pool, stop: asyncio.Event, interval_s: float,
              clock: Callable[[], datetime]) -> None:
    """Fires the due timers every interval until `stop` is set."""

    async def fire_all() -> None:
        while await fire_due(pool, clock()):
            pass
        await refresh_gauges(pool, clock())

    await periodic.every(interval_s, stop, fire_all, "firing timers")
