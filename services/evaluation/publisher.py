"""Announces changed scorecards: every interval, each agency and province whose counters
changed gets a ScorecardUpdated with its score and rank for the month, through the outbox.
Batching by interval keeps the topic at one event per subject and month however many task
events moved the score."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

import asyncpg

from policy.evaluation.v1 import events_pb2 as evaluation
from policykit.envelope import new_event
from policykit.outbox import enqueue

from services.evaluation.handlers import SOURCE, TOPIC
from services.evaluation.periods import month_period, today
from services.evaluation.scorecards import Scorecards
from services.evaluation.units import KIND_NAMES

log = logging.getLogger(__name__)


async def publish_changed(pool: asyncpg.Pool, scorecards: Scorecards,
                          batch_size: int = 500) -> int:
    """Announces up to batch_size changed (subject, month) counters; returns how many events
    were enqueued."""
    published = 0
    on = today()
    now = datetime.now(timezone.utc)
    async with pool.acquire() as conn, conn.transaction():
        # Key order, as the ledger writes them; rows a writer holds are left for next time.
        rows = await conn.fetch(
            "SELECT subject_kind, month, unit_id, changed_by_regulation FROM score_counters"
            " WHERE changed ORDER BY subject_kind, month, unit_id LIMIT $1"
            " FOR UPDATE SKIP LOCKED", batch_size)
        changed: dict[tuple[int, object], dict[str, str]] = {}
        for row in rows:
            subject = scorecards.units.subject_on(row["subject_kind"], row["unit_id"], on)
            changed.setdefault((row["subject_kind"], row["month"]), {})[subject] = \
                row["changed_by_regulation"]
        for (kind, month), subjects in changed.items():
            ranking = await scorecards.ranking(conn, kind, month_period(month), on)
            for subject_id, regulation_id in sorted(subjects.items()):
                standing = ranking.standing(subject_id)
                updated = evaluation.ScorecardUpdated(
                    regulation_id=regulation_id, scorecard_kind=KIND_NAMES[kind],
                    subject_id=subject_id, period=ranking.period.label,
                    score=round(standing.result.score, 2), rank=standing.rank)
                updated.updated_at.FromDatetime(now)
                await enqueue(conn, TOPIC, new_event(updated, SOURCE, time=now))
                published += 1
        await conn.executemany(
            "UPDATE score_counters SET changed = false"
            " WHERE subject_kind = $1 AND month = $2 AND unit_id = $3",
            [(r["subject_kind"], r["month"], r["unit_id"]) for r in rows])
    return published


async def run(pool: asyncpg.Pool, scorecards: Scorecards, stop: asyncio.Event,
              interval_s: float) -> None:
    """Publishes every interval until `stop` is set; a failure is logged and retried."""
    while not stop.is_set():
        try:
            while await publish_changed(pool, scorecards):
                pass
        except Exception:
            log.exception("scorecard announcement failed; retrying")
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except asyncio.TimeoutError:
            pass
