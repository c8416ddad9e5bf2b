"""The KPIs of one regulation: its tasks scored the scorecard's way, coverage and reach by
channel and region, comments per province, the funnel and the misinformation alerts. All
bounded by the regulation's own items."""

from __future__ import annotations

import asyncpg

from policy.communication.v1 import task_pb2
from policy.evaluation.v1 import evaluation_service_pb2 as api

from services.evaluation import scoring, storage
from services.evaluation.periods import today
from services.evaluation.units import PROVINCE, Units


def _kpi(name: str, label: str, value: float, unit: str) -> api.Kpi:
    return api.Kpi(name=name, label=label, value=float(value), unit=unit)


def _share(part: float, whole: float) -> float:
    return 100 * part / whole if whole else 0.0


class RegulationKpis:
    def __init__(self, pool: asyncpg.Pool, units: Units, population: dict[str, int]):
        self.pool = pool
        self.units = units
        self.population = population

    async def get(self, regulation_id: str) -> api.GetRegulationKpisResponse | None:
        """The regulation's KPIs; None when no DraftRegistered was seen for it."""
        async with self.pool.acquire() as conn:
            regulation = await storage.get_regulation(conn, regulation_id)
            if regulation is None:
                return None
            response = api.GetRegulationKpisResponse(
                regulation_id=regulation_id, title=regulation.title,
                lead_agency_id=regulation.lead_agency_id)
            tasks = await storage.tasks_of(conn, regulation_id)
            totals = scoring.add_up(share.counters for task in tasks
                                    for share in task.shares(regulation.context, self.units))
            response.kpis.extend(self._task_kpis(totals, tasks, regulation))
            await self._coverage(conn, response, tasks)
            await self._comments(conn, response)
            await self._funnel(conn, response)
            await self._alerts(conn, response)
        return response

    def _task_kpis(self, totals: dict, tasks: list, regulation) -> list[api.Kpi]:
        settled = totals["tasks_on_time"] + totals["tasks_late"] + totals["tasks_overdue"]
        found = [
            _kpi("tasks", "Nhiệm vụ", totals["tasks"], "nhiệm vụ"),
            _kpi("tasks_on_time", "Hoàn thành đúng hạn", totals["tasks_on_time"], "nhiệm vụ"),
            _kpi("tasks_late", "Hoàn thành trễ hạn", totals["tasks_late"], "nhiệm vụ"),
            _kpi("tasks_overdue", "Quá hạn chưa hoàn thành", totals["tasks_overdue"],
                 "nhiệm vụ"),
            _kpi("timeliness", "Tỷ lệ nhiệm vụ đúng hạn",
                 _share(totals["tasks_on_time"], settled), "%"),
            _kpi("goes_first", "Truyền thông đi trước", _share(
                totals["goes_first_met"], totals["goes_first_met"] + totals["goes_first_missed"]),
                "%"),
        ]
        opened = regulation.consultation_opened_at
        first_material = min((t.completed_at for t in tasks if t.goes_first and t.completed_at),
                             default=None)
        if opened and first_material:
            found.append(_kpi("goes_first_lead_days", "Tài liệu đầu tiên xong trước khi mở lấy "
                              "ý kiến", (opened - first_material).total_seconds() / 86400,
                              "ngày"))
        return found

    async def _coverage(self, conn: asyncpg.Connection, response, tasks: list) -> None:
        by_channel: dict[int, list[int]] = {}
        for task in tasks:
            if task.status == task_pb2.TASK_STATUS_CANCELLED:
                continue
            unreached = () if task.evidence_reach > 0 else task.unreached
            counts = by_channel.setdefault(task.channel, [0, 0])
            counts[0] += len(task.targets)
            counts[1] += len(task.targets) - len(unreached)
        rows = await conn.fetch(
            "SELECT region_id, channel, sum(reach)::bigint AS reach,"
            " sum(reports)::bigint AS reports FROM delivery_totals WHERE regulation_id = $1"
            " GROUP BY region_id, channel", response.regulation_id)
        delivered: dict[int, list[int]] = {}
        regions: dict[tuple[str, int], list[int]] = {}
        for row in rows:
            for key, table in ((row["channel"], delivered),
                               ((self.units.current_region(row["region_id"]), row["channel"]),
                                regions)):
                sums = table.setdefault(key, [0, 0])
                sums[0] += row["reach"]
                sums[1] += row["reports"]
        for channel in sorted(set(by_channel) | set(delivered)):
            targets, reached = by_channel.get(channel, (0, 0))
            reach, reports = delivered.get(channel, (0, 0))
            response.coverage.append(api.ChannelCoverage(
                channel=channel, targets=targets, reached=reached, reach=reach,
                delivery_reports=reports))
        for (region, channel), (reach, reports) in sorted(regions.items()):
            response.reach.append(api.RegionReach(
                region_id=region, region_name=self.units.region_name(region), channel=channel,
                reach=reach, delivery_reports=reports))
        all_targets = sum(t for t, _ in by_channel.values())
        all_reached = sum(r for _, r in by_channel.values())
        response.kpis.extend([
            _kpi("coverage", "Địa bàn mục tiêu được tiếp cận", _share(all_reached, all_targets),
                 "%"),
            _kpi("reach", "Lượt tiếp cận (báo cáo phát)", sum(r for r, _ in delivered.values()),
                 "lượt"),
            _kpi("delivery_reports", "Báo cáo phát", sum(n for _, n in delivered.values()),
                 "báo cáo"),
        ])

    async def _comments(self, conn: asyncpg.Connection, response) -> None:
        row = await conn.fetchrow(
            "SELECT count(*) AS comments,"
            " count(*) FILTER (WHERE owed OR answered_at IS NOT NULL) AS owed,"
            " count(answered_at) AS answered,"
            " coalesce(avg(extract(epoch FROM answered_at - received_at)), 0) AS seconds"
            " FROM comments WHERE regulation_id = $1", response.regulation_id)
        response.kpis.extend([
            _kpi("comments", "Ý kiến góp ý", row["comments"], "ý kiến"),
            _kpi("comments_answered_share", "Ý kiến được trả lời",
                 _share(row["answered"], row["owed"]), "%"),
            _kpi("hours_to_answer", "Thời gian trả lời trung bình", float(row["seconds"]) / 3600,
                 "giờ"),
        ])
        on = today()
        by_province: dict[str, int] = {}
        for found in await conn.fetch(
                "SELECT province_code, count(*) AS n FROM comments WHERE regulation_id = $1"
                " AND province_code <> '' GROUP BY province_code", response.regulation_id):
            unit = self.units.subject_on(PROVINCE, found["province_code"], on)
            by_province[unit] = by_province.get(unit, 0) + found["n"]
        for unit, comments in sorted(by_province.items(), key=lambda p: (-p[1], p[0])):
            population = self.population.get(unit)
            response.comments_by_province.append(api.ProvinceComments(
                province_id=unit, province_name=self.units.name(PROVINCE, unit, on),
                comments=comments,
                per_100k=comments * 100_000 / population if population else 0.0))

    async def _funnel(self, conn: asyncpg.Connection, response) -> None:
        rows = await conn.fetch(
            "SELECT stage, sum(respondents)::bigint AS respondents,"
            " sum(positive)::bigint AS positive FROM survey_results WHERE regulation_id = $1"
            " GROUP BY stage ORDER BY stage", response.regulation_id)
        for row in rows:
            response.funnel.append(api.FunnelStageResult(
                stage=row["stage"], respondents=row["respondents"], positive=row["positive"],
                share=_share(row["positive"], row["respondents"])))
        respondents = sum(r["respondents"] for r in rows)
        response.kpis.append(_kpi("funnel_positive_share", "Khảo sát: trả lời tích cực",
                                  _share(sum(r["positive"] for r in rows), respondents), "%"))

    async def _alerts(self, conn: asyncpg.Connection, response) -> None:
        hours = []
        for row in await conn.fetch(
                "SELECT alert_id, claim, region_id, raised_at, rebutted_at, rebuttal_task_id,"
                " observed_rate, baseline_rate FROM alerts WHERE regulation_id = $1"
                " ORDER BY raised_at", response.regulation_id):
            alert = api.AlertSummary(
                alert_id=row["alert_id"], claim=row["claim"], region_id=row["region_id"],
                rebuttal_task_id=row["rebuttal_task_id"] or "",
                observed_rate=row["observed_rate"], baseline_rate=row["baseline_rate"])
            alert.raised_at.FromDatetime(row["raised_at"])
            if row["rebutted_at"] is not None:
                alert.rebutted_at.FromDatetime(row["rebutted_at"])
                alert.hours_to_rebuttal = (
                    row["rebutted_at"] - row["raised_at"]).total_seconds() / 3600
                hours.append(alert.hours_to_rebuttal)
            response.alerts.append(alert)
        response.kpis.extend([
            _kpi("alerts", "Cảnh báo thông tin sai lệch", len(response.alerts), "cảnh báo"),
            _kpi("hours_to_rebuttal", "Thời gian phản bác trung bình",
                 sum(hours) / len(hours) if hours else 0.0, "giờ"),
        ])
