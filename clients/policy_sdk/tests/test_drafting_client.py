"""DraftingClient against a running drafting service, directly or through a proxy that loses
answers or is not up yet."""

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from deploy.local.kafka_broker import free_port
from policy.drafting.v1 import drafting_service_pb2 as api
from policy_sdk import (DraftingClient, DraftState, FailedPrecondition, InvalidArgument, NotFound,
                        RetriesExhausted, RetryPolicy)
from policy_sdk.tests.proxy import LossyProxy
from policykit.envelope import EnvelopeError, from_record
from services.drafting.tests.helpers import DRAFTING_TOPIC, TITLE
from tests.support import eventually, read_topic, topic_size

# Short pauses keep the retrying tests quick; the deadlines stay generous.
QUICK = RetryPolicy(max_attempts=100, initial_backoff=0.05, max_backoff=0.5, overall_timeout=60)


def registration(**overrides) -> dict:
    fields = dict(regulation_type="REGULATION_TYPE_DECREE", title=TITLE, lead_agency_id="bnnmt",
                  impact_level="IMPACT_LEVEL_HIGH", summary="Sửa đổi quy định về bồi thường.",
                  affected_groups=["nong-dan"], affected_province_codes=["02", "lai-chau"])
    fields.update(overrides)
    return fields


def keys_sent(proxy: LossyProxy, method: str) -> list[str]:
    request_type = getattr(api, f"{method}Request")
    return [request_type.FromString(raw).idempotency_key for raw in proxy.requests(method)]


def test_a_lost_answer_is_retried_with_the_same_key_and_applied_once(proxy, platform_topics):
    title = f"{TITLE} ({uuid.uuid4().hex[:8]})"  # tells this test's draft from all others
    proxy.lose_next_answers("RegisterDraft")
    with DraftingClient(proxy.target, retry=QUICK) as client:
        draft = client.register_draft(**registration(title=title))
        same_title = [d.regulation_id for d in client.list_drafts(lead_agency_id="bnnmt")
                      if d.title == title]

    [key, again] = keys_sent(proxy, "RegisterDraft")
    assert key and again == key
    [lost] = proxy.lost_answers["RegisterDraft"]
    assert api.RegisterDraftResponse.FromString(lost).draft == draft
    assert same_title == [draft.regulation_id]

    # Once the draft's DraftRegistered is on the topic, so is any registration before it.
    read_topic(platform_topics, [DRAFTING_TOPIC],
               lambda rs: any(r.key == draft.regulation_id.encode() for r in rs))
    size = topic_size(platform_topics, DRAFTING_TOPIC)
    registered = [
        event.regulation_id for event in well_formed(
            read_topic(platform_topics, [DRAFTING_TOPIC], lambda rs: len(rs) >= size))
        if event.type == "policy.drafting.v1.DraftRegistered" and event.payload.title == title]
    assert registered == [draft.regulation_id]


def well_formed(records) -> list:
    """The events among the records: tests of bad input (tests/fuzz) put records no consumer
    could decode on the same shared topic."""
    events = []
    for record in records:
        try:
            events.append(from_record(record.key, record.value, record.headers))
        except EnvelopeError:
            continue
    return events


def test_a_call_waits_for_a_service_that_comes_up_late(drafting, caplog):
    caplog.set_level(logging.WARNING, logger="policy_sdk")
    late = LossyProxy(drafting.grpc_target)  # nothing listens on its port until start()

    def failed_attempts() -> list[str]:
        return [r.getMessage() for r in caplog.records
                if r.name == "policy_sdk" and "failed with UNAVAILABLE" in r.getMessage()]

    with DraftingClient(late.target, retry=QUICK) as client, ThreadPoolExecutor(1) as pool:
        call = pool.submit(client.register_draft, **registration())
        eventually(failed_attempts, what="an attempt to fail while the service is down")
        late.start()
        try:
            draft = call.result(timeout=QUICK.overall_timeout)
        finally:
            late.stop()
    assert draft.state == DraftState.DRAFT_STATE_DRAFTING
    assert late.target in failed_attempts()[0]
    [key] = set(keys_sent(late, "RegisterDraft"))
    assert key in failed_attempts()[0]


@pytest.mark.parametrize("policy, attempts", [
    (RetryPolicy(initial_backoff=0.05, max_backoff=0.2, overall_timeout=2, max_attempts=1000),
     None),
    (RetryPolicy(initial_backoff=0.05, max_backoff=0.2, overall_timeout=60, max_attempts=3), 3),
], ids=["overall deadline", "attempts"])
def test_a_call_gives_up_when_the_service_never_comes(policy, attempts):
    target = f"127.0.0.1:{free_port()}"
    with DraftingClient(target, retry=policy) as client, pytest.raises(RetriesExhausted) as caught:
        client.withdraw_draft("nd-khong-ton-tai", reason="Dự thảo được gộp vào luật khác",
                              idempotency_key="rut-du-thao-1")
    error = caught.value
    assert error.code == grpc.StatusCode.UNAVAILABLE
    assert error.attempts == attempts if attempts else error.attempts > 1
    assert (error.method, error.idempotency_key) == ("WithdrawDraft", "rut-du-thao-1")
    message = str(error)
    assert f"WithdrawDraft at {target}: gave up after {error.attempts} attempt(s)" in message
    assert "UNAVAILABLE" in message and "idempotency_key='rut-du-thao-1'" in message


def test_invalid_input_is_not_retried_and_names_each_field(proxy):
    with DraftingClient(proxy.target, retry=QUICK) as client, \
            pytest.raises(InvalidArgument) as caught:
        client.register_draft(**registration(title=" ", lead_agency_id="vtv",
                                             affected_province_codes=["01", "ha-tay"]))
    assert caught.value.fields == ["title", "lead_agency_id", "affected_province_codes[1]"]
    assert caught.value.violations[0] == ("title", "must not be empty")
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert len(proxy.requests("RegisterDraft")) == 1


def test_an_illegal_transition_is_not_retried_and_names_the_state(proxy):
    with DraftingClient(proxy.target, retry=QUICK) as client:
        draft = client.register_draft(**registration())
        with pytest.raises(FailedPrecondition) as caught:
            client.adopt_draft(draft.regulation_id)
    assert caught.value.state == DraftState.DRAFT_STATE_DRAFTING
    assert f"draft {draft.regulation_id} is DRAFT_STATE_DRAFTING" in str(caught.value)
    assert len(proxy.requests("AdoptDraft")) == 1


def test_an_unknown_draft_is_not_found(drafting):
    with DraftingClient(drafting.grpc_target) as client, pytest.raises(NotFound) as caught:
        client.get_draft("nd-khong-ton-tai")
    assert "nd-khong-ton-tai" in caught.value.details


def test_a_draft_goes_through_its_lifecycle(drafting):
    with DraftingClient(drafting.grpc_target) as client:
        draft = client.register_draft(**registration())
        regulation_id = draft.regulation_id
        client.revise_draft(regulation_id, change_summary="Bổ sung Điều 5", summary="Lần 2")
        assessed = client.record_impact_assessment(
            regulation_id, impact_level="IMPACT_LEVEL_MEDIUM",
            assessment_summary="Ảnh hưởng vừa phải", affected_province_codes=["lai-chau"])
        client.submit_for_consultation(regulation_id)
        adopted = client.adopt_draft(regulation_id)
        assert client.get_draft(regulation_id) == adopted
    assert (assessed.version, list(assessed.affected_province_codes)) == (2, ["lai-chau"])
    assert (adopted.state, adopted.version, adopted.title, adopted.summary) == (
        DraftState.DRAFT_STATE_ADOPTED, 2, TITLE, "Lần 2")


def test_a_key_the_caller_chose_applies_each_change_once(drafting):
    key = f"dang-ky-{uuid.uuid4()}"
    with DraftingClient(drafting.grpc_target) as client:
        registered = [client.register_draft(**registration(), idempotency_key=key)
                      for _ in range(2)]
        withdrawn = [client.withdraw_draft(registered[0].regulation_id, reason="Trùng lặp",
                                           idempotency_key=f"{key}-rut") for _ in range(2)]
    assert registered[1] == registered[0]
    assert withdrawn[1] == withdrawn[0]
    assert (withdrawn[0].state, withdrawn[0].withdrawal_reason) == (
        DraftState.DRAFT_STATE_WITHDRAWN, "Trùng lặp")


def test_list_drafts_reads_every_page(proxy):
    with DraftingClient(proxy.target) as client:
        mine = {client.register_draft(**registration(lead_agency_id="bxd")).regulation_id
                for _ in range(3)}
        listed = [d.regulation_id for d in client.list_drafts(lead_agency_id="bxd", page_size=2)]
        first_page = client.list_drafts_page(lead_agency_id="bxd", page_size=2)
    assert mine <= set(listed) and len(listed) == len(set(listed))
    assert len(proxy.requests("ListDrafts")) >= 2
    assert len(first_page.drafts) == 2 and first_page.next_page_token
