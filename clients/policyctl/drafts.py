"""`policyctl drafts`: a drafting agency's drafts — register, revise, record the impact
assessment, submit for consultation, adopt, withdraw, show, list. Calls go through the SDK's
DraftingClient, so they are retried on transient errors under one idempotency key."""

from __future__ import annotations

from datetime import datetime, time
from typing import Callable

import click

from policy.common.v1 import common_pb2
from policy.drafting.v1 import drafting_service_pb2 as api
from policy_sdk import DraftingClient, RetryPolicy
from policyctl.options import EnumChoice, idempotency_key_option
from policyctl.output import VIETNAM, as_dict, label, moment
from policyctl.session import Session, pass_session

REGULATION_TYPE = EnumChoice(common_pb2.RegulationType.DESCRIPTOR, "REGULATION_TYPE_")
IMPACT = EnumChoice(common_pb2.ImpactLevel.DESCRIPTOR, "IMPACT_LEVEL_")
STATE = EnumChoice(api.DraftState.DESCRIPTOR, "DRAFT_STATE_")


class VietnamDateTime(click.ParamType):
    """A date (midnight in Vietnam) or an ISO 8601 time; one without an offset is Vietnam's."""

    name = "DATE"

    def convert(self, value, param, ctx):
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date (2027-01-15) or time (2027-01-15T08:00+07:00)",
                      param, ctx)
        if len(value) == 10:
            parsed = datetime.combine(parsed.date(), time())
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=VIETNAM)


def _with_client(session: Session, call: Callable[[DraftingClient], object]):
    retry = RetryPolicy(attempt_timeout=session.settings.timeout,
                        overall_timeout=session.settings.timeout)
    with DraftingClient(session.target("drafting"), retry=retry, token=session.settings.token,
                        credentials=session.credentials) as client:
        return call(client)


def _show(session: Session, draft: api.Draft) -> None:
    session.out.emit(as_dict(draft), lambda: session.out.fields([
        ("regulation", draft.regulation_id), ("title", draft.title),
        ("type", label(common_pb2.RegulationType.Name(draft.regulation_type),
                       "REGULATION_TYPE_")),
        ("state", label(api.DraftState.Name(draft.state), "DRAFT_STATE_")),
        ("version", draft.version), ("lead agency", draft.lead_agency_id),
        ("impact", label(common_pb2.ImpactLevel.Name(draft.impact_level), "IMPACT_LEVEL_")),
        ("affected groups", ", ".join(draft.affected_groups)),
        ("provinces", ", ".join(draft.affected_province_codes)),
        ("consultation from", moment(draft.planned_consultation_start)),
        ("adoption planned", moment(draft.planned_adoption)),
        ("withdrawn because", draft.withdrawal_reason), ("summary", draft.summary),
        ("updated", moment(draft.updated_at))]))


@click.group("drafts")
def command():
    """Drafts of regulations and their way to adoption."""


@command.command("register")
@click.option("--type", "regulation_type", type=REGULATION_TYPE, required=True)
@click.option("--title", required=True)
@click.option("--summary", default="")
@click.option("--lead-agency", required=True,
              help="The drafting ministry's id, e.g. bnnmt (pre-2025 ids are kept as sent).")
@click.option("--impact", type=IMPACT, required=True, help="Expected impact; decides the "
              "communication tasks the playbook creates.")
@click.option("--group", "groups", multiple=True, help="An affected group; repeatable.")
@click.option("--province", "provinces", multiple=True,
              help="An affected province (2008 code or 2025 id); repeatable.")
@click.option("--consultation-start", type=VietnamDateTime(), help="Planned opening of the "
              "public consultation; communication tasks are due before it.")
@click.option("--adoption", type=VietnamDateTime(), help="Planned adoption.")
@idempotency_key_option
@pass_session
def register(session: Session, regulation_type: int, title: str, summary: str, lead_agency: str,
             impact: int, groups: tuple[str, ...], provinces: tuple[str, ...],
             consultation_start: datetime | None, adoption: datetime | None,
             idempotency_key: str) -> None:
    """Register a new draft; prints it with the regulation id the service assigned."""
    _show(session, _with_client(session, lambda c: c.register_draft(
        regulation_type=regulation_type, title=title, summary=summary,
        lead_agency_id=lead_agency, impact_level=impact, affected_groups=groups,
        affected_province_codes=provinces, planned_consultation_start=consultation_start,
        planned_adoption=adoption, idempotency_key=idempotency_key)))


@command.command("revise")
@click.argument("regulation_id")
@click.option("--change-summary", required=True, help="What changed in this version.")
@click.option("--title", default="", help="A new title; default: unchanged.")
@click.option("--summary", default="", help="A new summary; default: unchanged.")
@idempotency_key_option
@pass_session
def revise(session: Session, regulation_id: str, change_summary: str, title: str, summary: str,
           idempotency_key: str) -> None:
    """Record a new version of a draft."""
    _show(session, _with_client(session, lambda c: c.revise_draft(
        regulation_id, change_summary=change_summary, title=title, summary=summary,
        idempotency_key=idempotency_key)))


@command.command("assess")
@click.argument("regulation_id")
@click.option("--impact", type=IMPACT, required=True)
@click.option("--summary", "assessment_summary", required=True, help="The assessment's finding.")
@click.option("--group", "groups", multiple=True,
              help="Affected group; repeatable; replaces the draft's when given.")
@click.option("--province", "provinces", multiple=True,
              help="Affected province; repeatable; replaces the draft's when given.")
@idempotency_key_option
@pass_session
def assess(session: Session, regulation_id: str, impact: int, assessment_summary: str,
           groups: tuple[str, ...], provinces: tuple[str, ...], idempotency_key: str) -> None:
    """Record the impact assessment of a draft."""
    _show(session, _with_client(session, lambda c: c.record_impact_assessment(
        regulation_id, impact_level=impact, assessment_summary=assessment_summary,
        affected_groups=groups, affected_province_codes=provinces,
        idempotency_key=idempotency_key)))


def _transition(name: str, method: str, help: str) -> None:
    """A command that moves a draft to its next state and takes nothing but the draft."""
    @command.command(name, help=help)
    @click.argument("regulation_id")
    @idempotency_key_option
    @pass_session
    def transition(session: Session, regulation_id: str, idempotency_key: str) -> None:
        _show(session, _with_client(session, lambda c: getattr(c, method)(
            regulation_id, idempotency_key=idempotency_key)))


_transition("submit", "submit_for_consultation",
            "Submit a draft for public consultation (the consultation window opens).")
_transition("adopt", "adopt_draft", "Record that a draft in consultation was adopted.")


@command.command("withdraw")
@click.argument("regulation_id")
@click.option("--reason", required=True, help="Why; published with the withdrawal.")
@idempotency_key_option
@pass_session
def withdraw(session: Session, regulation_id: str, reason: str, idempotency_key: str) -> None:
    """Withdraw a draft; its open communication tasks are cancelled."""
    _show(session, _with_client(session, lambda c: c.withdraw_draft(
        regulation_id, reason=reason, idempotency_key=idempotency_key)))


@command.command("show")
@click.argument("regulation_id")
@pass_session
def show(session: Session, regulation_id: str) -> None:
    """Show a draft."""
    _show(session, _with_client(session, lambda c: c.get_draft(regulation_id)))


@command.command("list")
@click.option("--agency", default="", help="Only drafts of this lead agency.")
@click.option("--state", type=STATE, help="Only drafts in this state.")
@click.option("--impact", type=IMPACT, help="Only drafts of this impact level.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@pass_session
def list_drafts(session: Session, agency: str, state: int | None, impact: int | None,
                limit: int) -> None:
    """List drafts, newest first."""
    def first(client: DraftingClient) -> list[api.Draft]:
        found = []
        for draft in client.list_drafts(lead_agency_id=agency, state=state, impact_level=impact):
            found.append(draft)
            if len(found) == limit:
                break
        return found
    drafts = _with_client(session, first)
    session.out.emit([as_dict(d) for d in drafts], lambda: session.out.table(
        ["REGULATION", "STATE", "IMPACT", "AGENCY", "UPDATED", "TITLE"],
        [(d.regulation_id, label(api.DraftState.Name(d.state), "DRAFT_STATE_"),
          label(common_pb2.ImpactLevel.Name(d.impact_level), "IMPACT_LEVEL_"),
          d.lead_agency_id, moment(d.updated_at), d.title) for d in drafts],
        title=f"{len(drafts)} draft(s)"))
