"""Who may call the EvaluationService: every authenticated caller. Scorecards, rankings and
KPIs are public-accountability data about agencies and provinces, with no personal data."""

from policy.evaluation.v1 import evaluation_service_pb2
from policykit.auth import ANY_ROLE, rules_for

SERVICE = evaluation_service_pb2.DESCRIPTOR.services_by_name["EvaluationService"].full_name
RULES = rules_for(SERVICE, {
    "GetScorecard": ANY_ROLE,
    "ListRankings": ANY_ROLE,
    "GetRegulationKpis": ANY_ROLE,
})
