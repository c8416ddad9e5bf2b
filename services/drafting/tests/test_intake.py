"""Drafting events produced straight to policy.drafting-intake.v1: validated and applied like
gRPC requests, republished on policy.drafting.v1 once, or dead-lettered with the reason."""

import dataclasses
import uuid

import grpc
import pytest

from policy.common.v1 import common_pb2
from policy.consultation.v1 import events_pb2 as consultation
from policy.drafting.v1 import drafting_service_pb2 as api
from policy.drafting.v1 import events_pb2 as events
from policykit import kafka_io
from policykit.envelope import Event, new_event
from policykit.kafka_io import create_producer, publish
from services.drafting.tests.helpers import TITLE, events_of, register_request, types_of
from tests.support import read_topic

INTAKE = "policy.drafting-intake.v1"
DEAD_LETTERS = "policy.dlq.drafting"


@pytest.fixture(scope="module")
def produce(platform_topics):
    """Produces events to the intake topic as a drafting system would."""
    producer = create_producer(platform_topics, client_id="drafting-system")

    def send(*events_: Event) -> None:
        for event in events_:
            publish(producer, INTAKE, event).get(timeout=30)

    yield send
    producer.close()


def new_id() -> str:
    return f"intake-{uuid.uuid4().hex[:12]}"


def registered(regulation_id: str, **overrides) -> Event:
    fields = dict(regulation_id=regulation_id, regulation_type=common_pb2.REGULATION_TYPE_DECREE,
                  title=TITLE, lead_agency_id="bnnmt", impact_level=common_pb2.IMPACT_LEVEL_HIGH,
                  affected_groups=["nong-dan"], affected_province_codes=["12", "lai-chau"])
    fields.update(overrides)
    return new_event(events.DraftRegistered(**fields), "urn:vbpl:bnnmt")


def dead_letter(bootstrap: str, event: Event) -> str:
    """Waits for the event on the dead-letter topic; returns the reason it was parked."""
    def parked(records) -> list:
        return [r for r in records if dict(r.headers).get("ce_id") == event.id.encode()]

    [record] = parked(read_topic(bootstrap, [DEAD_LETTERS], lambda rs: bool(parked(rs))))
    headers = dict(record.headers)
    assert headers[kafka_io.DLQ_SOURCE_TOPIC] == INTAKE.encode()
    assert headers[kafka_io.DLQ_CONSUMER_GROUP] == b"drafting"
    return headers[kafka_io.DLQ_REASON].decode()


def test_a_valid_registration_is_published_and_stored(drafting, stub, produce, platform_topics):
    regulation_id = new_id()
    event = registered(regulation_id)
    produce(event)
    [published] = events_of(platform_topics, regulation_id, "DraftRegistered")
    assert (published.id, published.source) == (event.id, "policy/drafting")
    assert published.payload.title == TITLE
    assert published.payload.version == 1
    assert published.payload.registered_at.ToDatetime().timestamp() == pytest.approx(
        event.time.timestamp(), abs=1e-6)
    draft = stub.GetDraft(api.GetDraftRequest(regulation_id=regulation_id), timeout=10).draft
    assert (draft.state, draft.version, draft.title) == (api.DRAFT_STATE_DRAFTING, 1, TITLE)
    assert list(draft.affected_province_codes) == ["12", "lai-chau"]


def test_intake_changes_follow_the_lifecycle_of_drafts_registered_over_grpc(
        drafting, stub, produce, platform_topics):
    draft = stub.RegisterDraft(register_request(), timeout=10).draft
    regulation_id = draft.regulation_id
    produce(new_event(events.DraftRevised(regulation_id=regulation_id, change_summary="Sửa Điều 3",
                                          summary="Dự thảo lần 2"), "urn:vbpl:bnnmt"),
            new_event(events.DraftSubmittedForConsultation(regulation_id=regulation_id),
                      "urn:vbpl:bnnmt"),
            new_event(events.DraftAdopted(regulation_id=regulation_id, version=2),
                      "urn:vbpl:bnnmt"))
    published = events_of(platform_topics, regulation_id, "DraftAdopted")
    assert types_of(published) == [
        "DraftRegistered", "DraftRevised", "DraftSubmittedForConsultation", "DraftAdopted"]
    revision = published[1].payload
    assert (revision.version, revision.title, revision.summary) == (2, TITLE, "Dự thảo lần 2")
    assert published[2].payload.version == 2
    adopted = stub.GetDraft(api.GetDraftRequest(regulation_id=regulation_id), timeout=10).draft
    assert (adopted.state, adopted.version) == (api.DRAFT_STATE_ADOPTED, 2)

    late = new_event(events.DraftWithdrawn(regulation_id=regulation_id, reason="Quá muộn"),
                     "urn:vbpl:bnnmt")
    produce(late)
    assert dead_letter(platform_topics, late) == (
        f"draft {regulation_id} is DRAFT_STATE_ADOPTED; WithdrawDraft is allowed only in "
        "DRAFT_STATE_DRAFTING, DRAFT_STATE_IN_CONSULTATION")


@pytest.mark.parametrize("overrides, problems", [
    (dict(title=""), ["title: must not be empty"]),
    (dict(lead_agency_id="bogus"), ["lead_agency_id: unknown agency 'bogus'"]),
    (dict(affected_province_codes=["12", "ha-tay"]),
     ["affected_province_codes[1]: unknown province 'ha-tay'"]),
    (dict(regulation_type=0, version=3),
     ["regulation_type: must be one of REGULATION_TYPE_LAW", "version: must be 0 or 1, got 3"]),
], ids=["empty title", "unknown agency", "unknown province", "type and version"])
def test_an_invalid_registration_is_dead_lettered_naming_the_fields(
        drafting, stub, produce, platform_topics, overrides, problems):
    event = registered(new_id(), **overrides)
    produce(event)
    reason = dead_letter(platform_topics, event)
    assert all(problem in reason for problem in problems), reason
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetDraft(api.GetDraftRequest(regulation_id=event.regulation_id), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_events_that_cannot_apply_are_dead_lettered_with_the_reason(
        drafting, produce, platform_topics):
    taken = registered(new_id())
    produce(taken)
    events_of(platform_topics, taken.regulation_id, "DraftRegistered")
    cases = [
        (registered(taken.regulation_id),
         f"regulation_id: draft {taken.regulation_id} already exists"),
        (new_event(events.DraftRevised(regulation_id=taken.regulation_id, change_summary="x",
                                       version=5), "urn:vbpl:bnnmt"),
         "version: must be 2, the draft's next version, or unset; got 5"),
        (new_event(events.DraftAdopted(regulation_id="no-such-draft"), "urn:vbpl:bnnmt"),
         "no draft with regulation_id 'no-such-draft'"),
        (new_event(consultation.ConsultationClosed(regulation_id=taken.regulation_id),
                   "urn:vbpl:bnnmt"),
         "ce_type: policy.consultation.v1.ConsultationClosed is not a drafting event"),
    ]
    not_a_uuid = dataclasses.replace(registered(new_id()), id=new_id())
    cases.append((not_a_uuid, f"ce_id: {not_a_uuid.id!r} is not a UUID in canonical form"))
    produce(*(event for event, _ in cases))
    for event, reason in cases:
        assert dead_letter(platform_topics, event).startswith(reason)


def test_the_same_intake_event_twice_is_published_once(drafting, produce, platform_topics):
    event = registered(new_id())
    # A later event of the same regulation is handled after both copies (same partition).
    later = new_event(events.DraftRevised(regulation_id=event.regulation_id,
                                          change_summary="Sửa tên gọi"), "urn:vbpl:bnnmt")
    produce(event, event, later)
    published = events_of(platform_topics, event.regulation_id, "DraftRevised")
    assert types_of(published) == ["DraftRegistered", "DraftRevised"]
    assert [e.id for e in published] == [event.id, later.id]
