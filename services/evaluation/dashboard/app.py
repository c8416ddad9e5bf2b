"""The dashboard web server, run by the evaluation service beside its gRPC API.

| path | shows |
|---|---|
| `/` | ranked agencies (bars) and provinces (tile map coloured by score); `?period=&date=` |
| `/scorecards/{agency,province}/{id}` | one scorecard: components, KPIs, lost points |
| `/regulations`, `/regulations/{id}` | regulations known; one's KPIs, funnel, coverage, timeline |
| `/overdue` | open tasks found overdue, oldest first |
| `/report` | the printable report (A4 print styles) |
| `/export/{rankings,lost-points,overdue}.csv` | CSV; `?kind=` (and `&subject=` for lost points) |

`period` is YYYY-MM, YYYY-Qn or YYYY (default: this month), `date` the report date whose
units and agencies are used (default: today)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from html import escape
from pathlib import Path

import asyncpg
from aiohttp import web

from policykit.reference import UnknownReference

from services.evaluation import storage
from services.evaluation.dashboard import exports, pages
from services.evaluation.kpis import RegulationKpis
from services.evaluation.periods import Period, month_period, parse_period, parse_report_date, today
from services.evaluation.scorecards import MAX_LOST_POINTS, Scorecards
from services.evaluation.units import AGENCY, KIND_NAMES, PROVINCE, Units

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
KINDS = {name: kind for kind, name in KIND_NAMES.items()}
OVERDUE_SHOWN = 500
REPORT_LOST_POINTS = 5


class BadRequest(ValueError):
    """A query parameter the dashboard cannot use; the message says which and why."""


class Dashboard:
    def __init__(self, pool: asyncpg.Pool, scorecards: Scorecards,
                 regulation_kpis: RegulationKpis, units: Units):
        self.pool = pool
        self.scorecards = scorecards
        self.regulation_kpis = regulation_kpis
        self.units = units

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors])
        app.add_routes([
            web.get("/", self.overview),
            web.get("/scorecards/{kind}/{subject_id}", self.scorecard),
            web.get("/regulations", self.regulations),
            web.get("/regulations/{regulation_id}", self.regulation),
            web.get("/overdue", self.overdue),
            web.get("/report", self.report),
            web.get("/export/rankings.csv", self.export_rankings),
            web.get("/export/lost-points.csv", self.export_lost_points),
            web.get("/export/overdue.csv", self.export_overdue),
            web.static("/static", STATIC),
        ])
        return app

    async def run(self, port: int, stop: asyncio.Event) -> None:
        """Serves on 0.0.0.0:port (0 picks a free one) until `stop` is set."""
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "0.0.0.0", port)
        await site.start()
        bound = runner.addresses[0][1]
        log.info("dashboard on http://0.0.0.0:%d/", bound)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    @web.middleware
    async def _errors(self, request: web.Request, handler):
        try:
            return await handler(request)
        except BadRequest as error:
            return _html(pages.layout("Tham số không hợp lệ",
                                      f'<p class="error">{escape(str(error))}</p>'), 400)

    # Query parameters.

    @staticmethod
    def _period(request: web.Request) -> Period:
        text = request.query.get("period", "")
        if not text:
            return month_period(today().replace(day=1))
        try:
            return parse_period(text)
        except ValueError as error:
            raise BadRequest(f"period: {error}") from None

    @staticmethod
    def _report_date(request: web.Request):
        try:
            return parse_report_date(request.query.get("date", ""))
        except ValueError as error:
            raise BadRequest(f"date: {error}") from None

    @staticmethod
    def _kind(text: str) -> int:
        if text not in KINDS:
            raise BadRequest(f"kind: must be one of {', '.join(KINDS)}")
        return KINDS[text]

    # Pages.

    async def overview(self, request: web.Request) -> web.Response:
        period, on = self._period(request), self._report_date(request)
        async with self.pool.acquire() as conn:
            agencies = await self.scorecards.ranking(conn, AGENCY, period, on)
            provinces = await self.scorecards.ranking(conn, PROVINCE, period, on)
        units = self.units.subjects_in_force(PROVINCE, on)
        body = pages.overview(agencies, provinces, units, on.isoformat())
        return _html(pages.layout(f"Xếp hạng kỳ {period.label}", body, period=period.label,
                                  report_date=on.isoformat()))

    async def scorecard(self, request: web.Request) -> web.Response:
        kind = self._kind(request.match_info["kind"])
        period, on = self._period(request), self._report_date(request)
        try:
            subject_id = self.units.check_subject(kind, request.match_info["subject_id"], on)
        except UnknownReference as error:
            raise web.HTTPNotFound(text=str(error)) from None
        card = await self.scorecards.scorecard(kind, subject_id, period, on, MAX_LOST_POINTS)
        body = pages.scorecard(card, kind)
        return _html(pages.layout(f"{card.subject_name}: kỳ {period.label}", body,
                                  period=period.label, report_date=on.isoformat()))

    async def regulations(self, request: web.Request) -> web.Response:
        async with self.pool.acquire() as conn:
            rows = await storage.recent_regulations(conn, 200)
        return _html(pages.layout("Văn bản", pages.regulations(rows)))

    async def regulation(self, request: web.Request) -> web.Response:
        regulation_id = request.match_info["regulation_id"]
        kpis = await self.regulation_kpis.get(regulation_id)
        if kpis is None:
            raise web.HTTPNotFound(text=f"no regulation {regulation_id!r}")
        async with self.pool.acquire() as conn:
            rows = await storage.timeline_of(conn, regulation_id, 2000)
        entries = [(r["occurred_at"], r["event_type"], r["summary"]) for r in rows]
        lead = self.units.name(AGENCY, kpis.lead_agency_id, today())
        return _html(pages.layout(kpis.title or regulation_id,
                                  pages.regulation(kpis, lead, entries)))

    async def overdue(self, request: web.Request) -> web.Response:
        async with self.pool.acquire() as conn:
            rows, total = await storage.overdue_tasks(conn, OVERDUE_SHOWN)
        return _html(pages.layout("Nhiệm vụ quá hạn", pages.overdue(
            rows, total, datetime.now(timezone.utc))))

    async def report(self, request: web.Request) -> web.Response:
        period, on = self._period(request), self._report_date(request)
        lost = {}
        async with self.pool.acquire() as conn:
            rankings = [await self.scorecards.ranking(conn, kind, period, on)
                        for kind in (AGENCY, PROVINCE)]
            for ranking in rankings:
                for standing in ranking.standings:
                    if standing.totals["lost_items"]:
                        lost[(ranking.kind, standing.subject_id)] = \
                            await self.scorecards.lost_items(conn, ranking.kind, standing,
                                                             period, REPORT_LOST_POINTS)
        body = pages.report(rankings, lost, on.isoformat())
        return _html(pages.layout(f"Báo cáo đánh giá truyền thông chính sách kỳ {period.label}",
                                  body, printable=True))

    # Exports.

    async def export_rankings(self, request: web.Request) -> web.Response:
        kind = self._kind(request.query.get("kind", ""))
        period, on = self._period(request), self._report_date(request)
        async with self.pool.acquire() as conn:
            ranking = await self.scorecards.ranking(conn, kind, period, on)
        return _csv_response(exports.rankings(ranking),
                             f"xep-hang-{KIND_NAMES[kind]}-{period.label}.csv")

    async def export_lost_points(self, request: web.Request) -> web.StreamResponse:
        kind = self._kind(request.query.get("kind", ""))
        period, on = self._period(request), self._report_date(request)
        try:
            subject_id = self.units.check_subject(kind, request.query.get("subject", ""), on)
        except UnknownReference as error:
            raise BadRequest(f"subject: {error}") from None
        response = web.StreamResponse(headers=_csv_headers(
            f"mat-diem-{subject_id}-{period.label}.csv"))
        await response.prepare(request)
        await response.write((exports.BOM + exports.to_csv([exports.LOST_POINT_HEADER])).encode())
        async with self.pool.acquire() as conn, conn.transaction():
            ranking = await self.scorecards.ranking(conn, kind, period, on)
            standing = ranking.standing(subject_id)
            if standing is not None:
                chunk = []
                async for item in self.scorecards.stream_lost_items(conn, kind, standing,
                                                                    period):
                    chunk.append(item)
                    if len(chunk) == 1000:
                        await response.write(exports.lost_point_lines(
                            subject_id, period.label, chunk).encode())
                        chunk = []
                await response.write(exports.lost_point_lines(
                    subject_id, period.label, chunk).encode())
        await response.write_eof()
        return response

    async def export_overdue(self, request: web.Request) -> web.Response:
        async with self.pool.acquire() as conn:
            rows, _ = await storage.overdue_tasks(conn, 100_000)
        return _csv_response(exports.overdue(rows), "nhiem-vu-qua-han.csv")


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def _csv_headers(filename: str) -> dict[str, str]:
    return {"Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"'}


def _csv_response(text: str, filename: str) -> web.Response:
    return web.Response(body=text.encode("utf-8"), headers=_csv_headers(filename))
