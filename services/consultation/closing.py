"""Closing consultations and publishing their totals and reports.

A window closes when its end passes (`close_due`) or when its draft is adopted or withdrawn
(drafts.py); closing waits for comments being stored and stops further ones. Once grouping has
placed every text of a closed consultation, `summarise_closed` emits ConsultationClosed with
the totals and — unless the draft was withdrawn — produces the report and emits
ConsultationReportPublished. An answer given after that makes the report stale;
`refresh_reports` produces the next version. `run` does all three, every sweep interval:
windows close durably, from closes_at in the database, whenever a replica of the service
runs."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Callable

import asyncpg
from prometheus_client import Counter

from policy.consultation.v1 import consultation_service_pb2 as api
from policy.consultation.v1 import events_pb2 as events
from policykit.reference import ReferenceData

from services.consultation import outbox, report, summary
from services.consultation.storage import CONSULTATION_COLUMNS, CONSULTATION_FROM, timestamp

log = logging.getLogger(__name__)

CAMPAIGNS = Counter("policy_consultation_campaigns_total",
                    "Campaigns counted in the totals of closed consultations.")
REPORTS = Counter("policy_consultation_reports_published_total",
                  "Reports on how comments were taken into account, every version.")

OPEN = api.CONSULTATION_STATE_OPEN
CLOSED = api.CONSULTATION_STATE_CLOSED


async def close(conn: asyncpg.Connection, consultation_id, at: datetime, reason: int) -> None:
    """Marks a consultation closed at `at`; the caller holds its row FOR UPDATE, so no comment
    is being stored meanwhile and none is afterwards."""
    await conn.execute(
        "UPDATE consultations SET state = $2, closed_at = $3, closing_reason = $4"
        " WHERE consultation_id = $1", consultation_id, CLOSED, at, reason)
    log.info("consultation %s closed: %s", consultation_id, events.ClosingReason.Name(reason))


async def close_due(pool: asyncpg.Pool, now: datetime) -> int:
    """Closes the open consultations whose window ended by `now`; returns how many."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT consultation_id, closes_at FROM consultations"
            " WHERE state = $1 AND closes_at <= $2 ORDER BY closes_at LIMIT 100 FOR UPDATE",
            OPEN, now)
        for row in rows:
            await close(conn, row["consultation_id"], row["closes_at"],
                        events.CLOSING_REASON_WINDOW_ENDED)
    return len(rows)


class Publisher:
    """Produces totals and reports, and says where reports are served."""

    def __init__(self, pool: asyncpg.Pool, reference: ReferenceData,
                 report_url: Callable[[str], str]):
        self.pool = pool
        self.reference = reference
        self.report_url = report_url

    async def _locked(self, conn: asyncpg.Connection, consultation_id) -> asyncpg.Record:
        return await conn.fetchrow(
            f"SELECT {CONSULTATION_COLUMNS} FROM {CONSULTATION_FROM}"
            " WHERE c.consultation_id = $1 FOR UPDATE OF c", consultation_id)

    async def summarise_closed(self, now: datetime) -> int:
        """Emits the totals (and produces the report) of closed consultations whose texts
        are all grouped; returns how many."""
        async with self.pool.acquire() as conn:
            waiting = await conn.fetch(
                "SELECT consultation_id FROM consultations c WHERE state = $1"
                " AND summary IS NULL AND NOT EXISTS (SELECT 1 FROM pending_texts p"
                "     WHERE p.consultation_id = c.consultation_id)",
                CLOSED)
        done = 0
        for row in waiting:
            async with self.pool.acquire() as conn, conn.transaction():
                consultation = await self._locked(conn, row["consultation_id"])
                if consultation["summary"] is not None:
                    continue  # another replica was first
                closed = await summary.summarise(conn, consultation)
                await conn.execute("UPDATE consultations SET summary = $2"
                                   " WHERE consultation_id = $1",
                                   consultation["consultation_id"], closed.SerializeToString())
                await outbox.enqueue(conn, closed, time=now,
                                     consultation_id=consultation["consultation_id"])
                CAMPAIGNS.inc(closed.campaigns)
                if closed.reason != events.CLOSING_REASON_DRAFT_WITHDRAWN:
                    await self._publish_report(conn, consultation, closed, now)
            done += 1
        return done

    async def refresh_reports(self, now: datetime) -> int:
        """Produces the next version of reports that answers given since made stale."""
        async with self.pool.acquire() as conn:
            stale = await conn.fetch(
                "SELECT consultation_id FROM consultations WHERE report_version > 0"
                " AND answers_version > report_answers_version")
        for row in stale:
            async with self.pool.acquire() as conn, conn.transaction():
                consultation = await self._locked(conn, row["consultation_id"])
                if consultation["answers_version"] > consultation["report_answers_version"]:
                    await self._publish_report(
                        conn, consultation,
                        events.ConsultationClosed.FromString(consultation["summary"]), now)
        return len(stale)

    async def _publish_report(self, conn: asyncpg.Connection, consultation: asyncpg.Record,
                              closed: events.ConsultationClosed, now: datetime) -> None:
        consultation_id = consultation["consultation_id"]
        version = consultation["report_version"] + 1
        answered = await summary.comments_answered(conn, consultation_id)
        facts = await report.collect(conn, consultation, closed, answered, version, now,
                                     self.reference)
        html = await asyncio.get_running_loop().run_in_executor(
            None, report.render, facts, self.reference)
        await conn.execute(
            "UPDATE consultations SET report_html = $2, report_version = $3,"
            " report_published_at = $4, report_answers_version = $5"
            " WHERE consultation_id = $1",
            consultation_id, html, version, now, consultation["answers_version"])
        published = events.ConsultationReportPublished(
            regulation_id=consultation["regulation_id"], consultation_id=str(consultation_id),
            report_url=self.report_url(consultation["regulation_id"]),
            comments_answered=answered, comments_total=closed.total_comments, version=version)
        timestamp(now, published.published_at)
        await outbox.enqueue(conn, published, time=now, consultation_id=consultation_id)
        REPORTS.inc()
        log.info("report v%d of consultation %s published", version, consultation_id)


async def run(pool: asyncpg.Pool, publisher: Publisher, stop: asyncio.Event,
              interval_s: float, clock: Callable[[], datetime],
              on_change: Callable[[], None]) -> None:
    """Sweeps every interval until `stop` is set; a failed sweep is logged and retried."""
    while not stop.is_set():
        try:
            now = clock()
            changed = await close_due(pool, now)
            changed += await publisher.summarise_closed(now)
            changed += await publisher.refresh_reports(now)
            if changed:
                on_change()
        except Exception:
            log.exception("closing sweep failed; retrying")
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except asyncio.TimeoutError:
            pass
