"""Scorecards and rankings read from the pre-aggregated counters.

A period's counters are a few rows per subject and month whatever the number of tasks, so a
ranking reads them all, maps each recorded id to the unit or agency in force on the report
date, adds up and scores (scoring.py). A scorecard adds its lost points: the largest per
recorded id, month and component, each a bounded index scan of lost_items."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import AsyncIterator

import asyncpg

from policy.evaluation.v1 import evaluation_service_pb2 as api

from services.evaluation import labels, scoring
from services.evaluation.periods import Period
from services.evaluation.scoring import COMPONENT_NAMES, COUNTERS, ScoreResult, ScoreRule
from services.evaluation.units import AGENCY, PROVINCE, Units

MAX_LOST_POINTS = 500
# A period's counters: (kind, months).
COUNTERS_SQL = (f"SELECT unit_id, {', '.join(COUNTERS)} FROM score_counters"
                " WHERE subject_kind = $1 AND month = ANY($2::date[])")
# The largest lost items of recorded ids: (kind, unit ids, months, components, limit); one
# index scan per id, month and component, each stopping at the limit.
LOST_ITEMS_SQL = (
    "SELECT l.* FROM unnest($2::text[]) AS u(unit_id)"
    " CROSS JOIN unnest($3::date[]) AS m(month)"
    " CROSS JOIN unnest($4::text[]) AS c(component),"
    " LATERAL (SELECT component, severity, at, regulation_id, task_id, item_id,"
    " owner_org_id, reason FROM lost_items i WHERE i.subject_kind = $1"
    " AND i.unit_id = u.unit_id AND i.month = m.month AND i.component = c.component"
    " ORDER BY i.severity DESC, i.at LIMIT $5) AS l")


@dataclass(frozen=True)
class Standing:
    """One subject's score in a period."""

    subject_id: str
    name: str
    merged_ids: tuple[str, ...]
    totals: dict[str, int]
    result: ScoreResult
    rank: int


@dataclass(frozen=True)
class Ranking:
    kind: int
    period: Period
    report_date: date
    standings: list[Standing]

    def standing(self, subject_id: str) -> Standing | None:
        return next((s for s in self.standings if s.subject_id == subject_id), None)


@dataclass(frozen=True)
class LostItem:
    """A lost point as listed: the item, its component, and the points it costs."""

    component: str
    points: float
    at: datetime
    regulation_id: str
    task_id: str
    item_id: str
    owner_org_id: str
    reason: str


class Scorecards:
    def __init__(self, pool: asyncpg.Pool, units: Units, rule: ScoreRule,
                 population: dict[str, int]):
        self.pool = pool
        self.units = units
        self.rule = rule
        self.population = population

    def _population(self, province_id: str, on: date) -> int | None:
        if province_id in self.population:
            return self.population[province_id]
        # The file may name a unit by an id that maps to the one in force.
        found = [n for pid, n in self.population.items()
                 if self.units.subject_on(PROVINCE, pid, on) == province_id]
        return sum(found) if found else None

    async def ranking(self, conn: asyncpg.Connection, kind: int, period: Period,
                      report_date: date) -> Ranking:
        rows = await conn.fetch(COUNTERS_SQL, kind, list(period.months))
        grouped: dict[str, list] = {}
        merged: dict[str, set[str]] = {}
        for row in rows:
            subject = self.units.subject_on(kind, row["unit_id"], report_date)
            grouped.setdefault(subject, []).append(row)
            merged.setdefault(subject, set()).add(row["unit_id"])
        totals = {subject: scoring.add_up(found) for subject, found in grouped.items()}
        national_comments = sum(t["comments"] for t in totals.values())
        results = {subject: scoring.score(
            kind, t, self.rule, self._population(subject, report_date) if kind == PROVINCE
            else None, national_comments) for subject, t in totals.items()}
        ranks = scoring.ranks({s: r.score if r.scored else None for s, r in results.items()})
        standings = [Standing(subject, self.units.name(kind, subject, report_date),
                              tuple(sorted(merged[subject])), totals[subject], results[subject],
                              ranks[subject])
                     for subject in totals]
        standings.sort(key=lambda s: (s.rank == 0, s.rank, s.subject_id))
        return Ranking(kind, period, report_date, standings)

    async def lost_items(self, conn: asyncpg.Connection, kind: int, standing: Standing,
                         period: Period, limit: int) -> list[LostItem]:
        """The `limit` largest lost points of the subject in the period, largest first."""
        rows = await conn.fetch(LOST_ITEMS_SQL, kind, list(standing.merged_ids),
                                list(period.months), list(COMPONENT_NAMES), limit)
        items = [_lost_item(row, standing.result) for row in rows]
        items += self._shortfalls(kind, standing, period)
        items.sort(key=lambda i: (-i.points, i.at, i.reason))
        return items[:limit]

    def _shortfalls(self, kind: int, standing: Standing, period: Period) -> list[LostItem]:
        """The lost points that belong to no single item: a province's low participation."""
        shortfall = standing.result.shortfall("two_way")
        if kind != PROVINCE or shortfall <= 0:
            return []
        rate = labels.number(standing.result.comments_per_100k or 0, 1)
        target = labels.number(self.rule.comments_per_100k_target, 1)
        return [LostItem("two_way", shortfall, period.starts_at, "", "", "", "",
                         f"Tham gia góp ý thấp: {rate} ý kiến/100.000 dân (mục tiêu {target})")]

    async def stream_lost_items(self, conn: asyncpg.Connection, kind: int, standing: Standing,
                                period: Period) -> AsyncIterator[LostItem]:
        """Every lost point of the subject in the period, for exports; call it inside a
        transaction."""
        for item in self._shortfalls(kind, standing, period):
            yield item
        async for row in conn.cursor(
                "SELECT component, severity, at, regulation_id, task_id, item_id, owner_org_id,"
                " reason FROM lost_items WHERE subject_kind = $1 AND unit_id = ANY($2::text[])"
                " AND month = ANY($3::date[]) ORDER BY at, item_key",
                kind, list(standing.merged_ids), list(period.months)):
            yield _lost_item(row, standing.result)

    async def reach(self, conn: asyncpg.Connection, kind: int, standing: Standing,
                    period: Period, report_date: date) -> int:
        """Delivery reports' reach in the period: in the province, or for the agency's
        regulations."""
        days = (period.months[0], period.last_day)
        if kind == PROVINCE:
            regions = set(standing.merged_ids) | self.units.province_ids(standing.subject_id)
            return await conn.fetchval(
                "SELECT coalesce(sum(reach), 0) FROM delivery_totals WHERE"
                " region_id = ANY($1::text[]) AND day BETWEEN $2 AND $3", list(regions), *days)
        leads = [lead for lead in await conn.fetchval(
                     "SELECT array_agg(DISTINCT lead_agency_id) FROM regulations") or ()
                 if self.units.subject_on(AGENCY, lead, report_date) == standing.subject_id]
        return await conn.fetchval(
            "SELECT coalesce(sum(d.reach), 0) FROM regulations r JOIN delivery_totals d"
            " USING (regulation_id) WHERE r.lead_agency_id = ANY($1::text[])"
            " AND d.day BETWEEN $2 AND $3", leads, *days)

    async def scorecard(self, kind: int, subject_id: str, period: Period, report_date: date,
                        limit: int) -> api.Scorecard:
        async with self.pool.acquire() as conn:
            ranking = await self.ranking(conn, kind, period, report_date)
            standing = ranking.standing(subject_id) or self._unscored(kind, subject_id,
                                                                      report_date)
            card = to_proto(ranking, standing)
            for item in await self.lost_items(conn, kind, standing, period, limit):
                card.lost_points.append(to_lost_point(item))
            card.kpis.append(api.Kpi(name="reach", label="Lượt tiếp cận (báo cáo phát)",
                                     value=await self.reach(conn, kind, standing, period,
                                                                report_date),
                                     unit="lượt"))
        return card

    def _unscored(self, kind: int, subject_id: str, report_date: date) -> Standing:
        totals = dict.fromkeys(COUNTERS, 0)
        return Standing(subject_id, self.units.name(kind, subject_id, report_date),
                        (subject_id,), totals, scoring.score(kind, totals, self.rule), 0)


def _lost_item(row: asyncpg.Record, result: ScoreResult) -> LostItem:
    return LostItem(row["component"], result.points_lost(row["component"], row["severity"]),
                    row["at"], row["regulation_id"], str(row["task_id"] or ""),
                    row["item_id"], row["owner_org_id"], row["reason"])


def to_lost_point(item: LostItem) -> api.LostPoint:
    point = api.LostPoint(regulation_id=item.regulation_id, task_id=item.task_id,
                          reason=item.reason, points=item.points, component=item.component,
                          owner_org_id=item.owner_org_id, item_id=item.item_id)
    point.due_at.FromDatetime(item.at)
    return point


def to_proto(ranking: Ranking, standing: Standing) -> api.Scorecard:
    """The scorecard of one standing, with how many items cost it points but not the items."""
    result = standing.result
    # A province's low participation is one lost point of no single item.
    participation = ranking.kind == PROVINCE and result.shortfall("two_way") > 0
    card = api.Scorecard(
        kind=ranking.kind, subject_id=standing.subject_id, subject_name=standing.name,
        period=ranking.period.label, score=round(result.score, 2), rank=standing.rank,
        kpis=scoring.kpis(ranking.kind, standing.totals, result),
        report_date=ranking.report_date.isoformat(), merged_ids=standing.merged_ids,
        ranked_subjects=sum(1 for s in ranking.standings if s.rank),
        lost_points_total=standing.totals["lost_items"] + participation)
    card.as_of.FromDatetime(datetime.now(timezone.utc))
    for c in result.components:
        card.components.append(api.ScoreComponent(
            name=c.component.name, label=c.component.label, weight=c.component.weight,
            applicable=c.applicable, ratio=c.ratio, points=round(c.points, 2),
            max_points=round(c.max_points, 2), items=c.items))
    return card

