"""The EvaluationService gRPC API: scorecards, rankings and a regulation's KPIs. Invalid input
is INVALID_ARGUMENT naming each field (policykit.errors)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import grpc

from policy.evaluation.v1 import evaluation_service_pb2 as api
from policy.evaluation.v1 import evaluation_service_pb2_grpc as api_grpc
from policykit.envelope import REGULATION_ID
from policykit.errors import FieldViolations, NotFound
from policykit.reference import UnknownReference

from services.evaluation.kpis import RegulationKpis
from services.evaluation.periods import Period, parse_period, parse_report_date
from services.evaluation.scorecards import MAX_LOST_POINTS, Scorecards, to_proto
from services.evaluation.units import KIND_NAMES, Units

DEFAULT_LOST_POINTS = 50


@dataclass(frozen=True)
class Scope:
    kind: int
    period: Period
    report_date: date


def check_scope(violations: FieldViolations, kind: int, period: str,
                report_date: str) -> Scope | None:
    """Reads the kind, period and report date every scorecard query has, adding what is
    wrong to `violations`."""
    if kind not in KIND_NAMES:
        violations.add("kind", "must be SCORECARD_KIND_AGENCY or SCORECARD_KIND_PROVINCE")
    parsed_period = parsed_date = None
    try:
        parsed_period = parse_period(period)
    except ValueError as error:
        violations.add("period", str(error))
    try:
        parsed_date = parse_report_date(report_date)
    except ValueError as error:
        violations.add("report_date", str(error))
    if kind not in KIND_NAMES or parsed_period is None or parsed_date is None:
        return None
    return Scope(kind, parsed_period, parsed_date)


class EvaluationServicer(api_grpc.EvaluationServiceServicer):
    def __init__(self, scorecards: Scorecards, regulation_kpis: RegulationKpis, units: Units):
        self.scorecards = scorecards
        self.regulation_kpis = regulation_kpis
        self.units = units

    async def GetScorecard(self, request: api.GetScorecardRequest,
                           context: grpc.aio.ServicerContext) -> api.GetScorecardResponse:
        violations = FieldViolations()
        scope = check_scope(violations, request.kind, request.period, request.report_date)
        subject_id = ""
        if not request.subject_id:
            violations.add("subject_id", "must name an agency or province")
        elif scope is not None:
            try:
                subject_id = self.units.check_subject(scope.kind, request.subject_id,
                                                      scope.report_date)
            except UnknownReference as error:
                violations.add("subject_id", str(error))
        if not 0 <= request.lost_points_limit <= MAX_LOST_POINTS:
            violations.add("lost_points_limit", f"must be 0 (for {DEFAULT_LOST_POINTS}) to "
                                                f"{MAX_LOST_POINTS}")
        violations.raise_if_any()
        card = await self.scorecards.scorecard(
            scope.kind, subject_id, scope.period, scope.report_date,
            request.lost_points_limit or DEFAULT_LOST_POINTS)
        return api.GetScorecardResponse(scorecard=card)

    async def ListRankings(self, request: api.ListRankingsRequest,
                           context: grpc.aio.ServicerContext) -> api.ListRankingsResponse:
        violations = FieldViolations()
        scope = check_scope(violations, request.kind, request.period, request.report_date)
        violations.raise_if_any()
        async with self.scorecards.pool.acquire() as conn:
            ranking = await self.scorecards.ranking(conn, scope.kind, scope.period,
                                                    scope.report_date)
        return api.ListRankingsResponse(
            scorecards=[to_proto(ranking, standing) for standing in ranking.standings])

    async def GetRegulationKpis(self, request: api.GetRegulationKpisRequest,
                                context: grpc.aio.ServicerContext) -> api.GetRegulationKpisResponse:
        if not REGULATION_ID.match(request.regulation_id):
            violations = FieldViolations()
            violations.add("regulation_id", "must be a regulation id: 1 to 64 characters a-z, "
                                            "0-9 and '-'")
            raise violations
        found = await self.regulation_kpis.get(request.regulation_id)
        if found is None:
            raise NotFound(f"no regulation {request.regulation_id!r} is known to the evaluation")
        return found
