"""What the SDK decides without a service: pauses between attempts, the representation of
arguments, and the topics it names."""

import pytest

from policy_sdk import (DEAD_LETTER_TOPIC, DRAFTING_TOPIC, INTAKE_TOPIC, DraftingClient,
                        RetryPolicy)
from policykit import topics


def test_pauses_grow_exponentially_up_to_the_maximum():
    policy = RetryPolicy(initial_backoff=0.1, multiplier=2, max_backoff=1, jitter=0)
    assert [policy.backoff(n) for n in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1, 1])
    assert policy.backoff(5000) == 1


def test_jitter_draws_each_pause_below_its_ceiling():
    policy = RetryPolicy(initial_backoff=1, max_backoff=1, jitter=1)
    pauses = {policy.backoff(1) for _ in range(50)}
    assert all(0 <= pause <= 1 for pause in pauses) and len(pauses) > 1


@pytest.mark.parametrize("settings", [
    dict(max_attempts=0), dict(overall_timeout=0), dict(jitter=1.5), dict(multiplier=0.5)])
def test_a_policy_that_cannot_work_is_refused(settings):
    with pytest.raises(ValueError, match=next(iter(settings))):
        RetryPolicy(**settings)


def test_arguments_are_checked_for_their_form_before_any_call():
    # Nothing listens there: each error below comes before a connection is tried.
    with DraftingClient("127.0.0.1:1") as client:
        with pytest.raises(ValueError, match="regulation_type: 'DECREE' is not one of .*"
                                             "REGULATION_TYPE_DECREE"):
            client.register_draft(regulation_type="DECREE", title="Nghị định",
                                  lead_agency_id="bnnmt", impact_level="IMPACT_LEVEL_LOW")
        with pytest.raises(TypeError, match="affected_groups: expects a list of strings"):
            client.record_impact_assessment("nd-1", impact_level="IMPACT_LEVEL_LOW",
                                            assessment_summary="x", affected_groups="nong-dan")
        with pytest.raises(ValueError, match="state: 'ADOPTED' is not one of"):
            next(client.list_drafts(state="ADOPTED"))


def test_the_topics_are_the_declared_ones():
    declared = topics.load()
    assert {INTAKE_TOPIC, DRAFTING_TOPIC} <= set(declared.topics)
    assert DEAD_LETTER_TOPIC == declared.dead_letter_topic("drafting")
