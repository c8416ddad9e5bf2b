"""The draft lifecycle as pure logic: every transition from every state."""

import pytest

from policy.drafting.v1 import drafting_service_pb2 as api
from policykit.errors import FailedPrecondition
from services.drafting import lifecycle
from services.drafting.lifecycle import (ADOPT, ADOPTED, ASSESS_IMPACT, DRAFTING,
                                         IN_CONSULTATION, REVISE, SUBMIT_FOR_CONSULTATION,
                                         WITHDRAW, WITHDRAWN)

LEGAL = {
    (DRAFTING, REVISE): DRAFTING,
    (DRAFTING, ASSESS_IMPACT): DRAFTING,
    (DRAFTING, SUBMIT_FOR_CONSULTATION): IN_CONSULTATION,
    (DRAFTING, WITHDRAW): WITHDRAWN,
    (IN_CONSULTATION, REVISE): IN_CONSULTATION,
    (IN_CONSULTATION, ASSESS_IMPACT): IN_CONSULTATION,
    (IN_CONSULTATION, ADOPT): ADOPTED,
    (IN_CONSULTATION, WITHDRAW): WITHDRAWN,
}
STATES = (DRAFTING, IN_CONSULTATION, ADOPTED, WITHDRAWN)
TRANSITIONS = (REVISE, ASSESS_IMPACT, SUBMIT_FOR_CONSULTATION, ADOPT, WITHDRAW)


def name(value) -> str:
    return value.command if isinstance(value, lifecycle.Transition) else api.DraftState.Name(value)


def test_a_new_draft_is_drafting():
    assert lifecycle.INITIAL == DRAFTING


@pytest.mark.parametrize("state, transition", list(LEGAL), ids=name)
def test_legal_transitions_lead_to_their_state(state, transition):
    assert lifecycle.state_after("reg-1", state, transition) == LEGAL[state, transition]


@pytest.mark.parametrize("state, transition", [
    (s, t) for s in STATES for t in TRANSITIONS if (s, t) not in LEGAL],
    ids=name)
def test_illegal_transitions_name_the_state_and_the_states_allowed(state, transition):
    with pytest.raises(FailedPrecondition) as refused:
        lifecycle.state_after("reg-1", state, transition)
    message = str(refused.value)
    assert message.startswith(f"draft reg-1 is {api.DraftState.Name(state)}; "
                              f"{transition.command} is allowed only in ")


def test_adopted_and_withdrawn_are_final():
    for state in (ADOPTED, WITHDRAWN):
        assert not any(state in t.allowed_in for t in TRANSITIONS)


def test_the_refusal_reads_as_documented():
    with pytest.raises(FailedPrecondition, match=(
            r"^draft X is DRAFT_STATE_ADOPTED; WithdrawDraft is allowed only in "
            r"DRAFT_STATE_DRAFTING, DRAFT_STATE_IN_CONSULTATION$")):
        lifecycle.state_after("X", ADOPTED, WITHDRAW)
