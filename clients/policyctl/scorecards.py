"""`policyctl scorecards`: how well agencies and provinces communicate — one scorecard with
the points it lost and why, or the ranking of all (EvaluationService)."""

from __future__ import annotations

import click

from policy.evaluation.v1 import evaluation_service_pb2 as api
from policy.evaluation.v1 import evaluation_service_pb2_grpc as api_grpc
from policyctl.options import EnumChoice
from policyctl.output import as_dict
from policyctl.session import Session, pass_session

KIND = EnumChoice(api.ScorecardKind.DESCRIPTOR, "SCORECARD_KIND_")


def _stub(session: Session) -> api_grpc.EvaluationServiceStub:
    return session.stub("evaluation", api_grpc.EvaluationServiceStub)


def _period_options(command):
    command = click.option("--report-date", default="", metavar="YYYY-MM-DD",
                           help="Whose units and agencies to use (after mergers). "
                                "Default: today in Vietnam.")(command)
    return click.option("--period", required=True, metavar="PERIOD",
                        help='A month "2026-11", a quarter "2026-Q4" or a year "2026".')(command)


@click.group("scorecards")
def command():
    """Scorecards of agencies and provinces, and their rankings."""


@command.command("show")
@click.argument("kind", type=KIND)
@click.argument("subject_id")
@_period_options
@click.option("--lost-points", "lost_points_limit", type=click.IntRange(1, 500), default=20,
              show_default=True, help="List at most this many lost points, largest first.")
@pass_session
def show(session: Session, kind: int, subject_id: str, period: str, report_date: str,
         lost_points_limit: int) -> None:
    """Show the scorecard of an agency or province (KIND: agency or province), e.g.
    `scorecards show agency bnnmt --period 2026-11`."""
    card = _stub(session).GetScorecard(api.GetScorecardRequest(
        kind=kind, subject_id=subject_id, period=period, report_date=report_date,
        lost_points_limit=lost_points_limit), timeout=session.settings.timeout).scorecard

    def render():
        out = session.out
        rank = f"{card.rank} of {card.ranked_subjects}" if card.rank else "not ranked"
        out.fields([("subject", f"{card.subject_name} ({card.subject_id})"),
                    ("period", f"{card.period}, units of {card.report_date}"),
                    ("score", f"{card.score:.1f} / 100"), ("rank", rank),
                    ("counts ids", ", ".join(card.merged_ids))])
        out.line()
        out.table(["COMPONENT", "POINTS", "OF", "ACHIEVED", "ITEMS"],
                  [(c.label or c.name, f"{c.points:.1f}", f"{c.max_points:.1f}",
                    f"{c.ratio:.0%}" if c.applicable else "n/a", c.items)
                   for c in card.components], title="Score")
        out.line()
        out.table(["KPI", "VALUE"], [(k.label or k.name, f"{k.value:g} {k.unit}".strip())
                                     for k in card.kpis])
        out.line()
        out.table(["POINTS", "COMPONENT", "REGULATION", "REASON"],
                  [(f"-{p.points:.2f}", p.component, p.regulation_id, p.reason)
                   for p in card.lost_points],
                  title=f"Lost points ({len(card.lost_points)} of {card.lost_points_total})")
    session.out.emit(as_dict(card), render)


@command.command("rankings")
@click.argument("kind", type=KIND)
@_period_options
@pass_session
def rankings(session: Session, kind: int, period: str, report_date: str) -> None:
    """Rank all agencies or provinces (KIND: agency or province) for a period, best first;
    equal scores share a rank."""
    cards = _stub(session).ListRankings(api.ListRankingsRequest(
        kind=kind, period=period, report_date=report_date),
        timeout=session.settings.timeout).scorecards
    session.out.emit([as_dict(c) for c in cards], lambda: session.out.table(
        ["RANK", "SCORE", "ID", "NAME", "LOST ITEMS"],
        [(c.rank or "-", f"{c.score:.1f}" if c.rank else "-", c.subject_id, c.subject_name,
          c.lost_points_total) for c in cards],
        title=f"Rankings, {period}"))
