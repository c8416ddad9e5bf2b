"""The draft lifecycle: which change is allowed in which state, and the state it leads to.

    DRAFTING ──submit──▶ IN_CONSULTATION ──adopt──▶ ADOPTED
        │                      │
        └───────withdraw───────┴──────────────────▶ WITHDRAWN

Revising and assessing the impact keep the state and are allowed until the draft is adopted
or withdrawn; ADOPTED and WITHDRAWN are final."""

from __future__ import annotations

from dataclasses import dataclass

from policy.drafting.v1 import drafting_service_pb2 as api
from policykit.errors import FailedPrecondition

DRAFTING = api.DRAFT_STATE_DRAFTING
IN_CONSULTATION = api.DRAFT_STATE_IN_CONSULTATION
ADOPTED = api.DRAFT_STATE_ADOPTED
WITHDRAWN = api.DRAFT_STATE_WITHDRAWN

# The state a newly registered draft is in.
INITIAL = DRAFTING


@dataclass(frozen=True)
class Transition:
    """A change to a draft, named as its command, the states it is allowed in and the state
    it leads to (None keeps the state)."""

    command: str
    allowed_in: tuple[int, ...]
    leads_to: int | None = None


REVISE = Transition("ReviseDraft", (DRAFTING, IN_CONSULTATION))
ASSESS_IMPACT = Transition("RecordImpactAssessment", (DRAFTING, IN_CONSULTATION))
SUBMIT_FOR_CONSULTATION = Transition("SubmitForConsultation", (DRAFTING,), IN_CONSULTATION)
ADOPT = Transition("AdoptDraft", (IN_CONSULTATION,), ADOPTED)
WITHDRAW = Transition("WithdrawDraft", (DRAFTING, IN_CONSULTATION), WITHDRAWN)


def state_after(regulation_id: str, state: int, transition: Transition) -> int:
    """Returns the state the draft is in after the transition; raises FailedPrecondition
    naming the current state when the transition is not allowed in it."""
    if state not in transition.allowed_in:
        allowed = ", ".join(api.DraftState.Name(s) for s in transition.allowed_in)
        raise FailedPrecondition(
            f"draft {regulation_id} is {api.DraftState.Name(state)}; {transition.command} "
            f"is allowed only in {allowed}")
    return state if transition.leads_to is None else transition.leads_to
