"""DraftingEventProducer against the running drafting service's intake."""

import unicodedata
import uuid
from datetime import datetime
from typing import Any

import pytest
from kafka.errors import MessageSizeTooLargeError

from policy.consultation.v1 import events_pb2 as consultation
from policy.drafting.v1 import events_pb2 as events
from policy_sdk import (DEAD_LETTER_TOPIC, DRAFTING_TOPIC, DeliveryFailed, DraftingClient,
                        DraftingEventProducer, DraftState)
from policykit.envelope import from_record
from policykit.kafka_io import DLQ_REASON
from services.drafting.tests.helpers import TITLE
from tests.support import read_topic

SOURCE = "urn:test:policy-sdk"


@pytest.fixture
def producer(platform_topics):
    with DraftingEventProducer(platform_topics, source=SOURCE) as started:
        yield started


def new_regulation_id() -> str:
    return f"sdk-{uuid.uuid4().hex[:12]}"


def registered(producer: DraftingEventProducer, regulation_id: str, **overrides) -> str:
    fields: dict[str, Any] = dict(
        regulation_type="REGULATION_TYPE_DECREE", title=TITLE, lead_agency_id="bnnmt",
        impact_level="IMPACT_LEVEL_HIGH", affected_province_codes=["lai-chau"])
    fields.update(overrides)
    return producer.draft_registered(regulation_id, **fields)


def records_with(bootstrap: str, topic: str, event_ids: list[str]) -> dict[str, object]:
    """Reads the topic until records with each of the ce_ids are there; returns them by ce_id."""
    wanted = {event_id.encode() for event_id in event_ids}

    def found(records) -> dict:
        return {dict(r.headers)["ce_id"].decode(): r for r in records
                if dict(r.headers).get("ce_id") in wanted}

    return found(read_topic(bootstrap, [topic], lambda rs: len(found(rs)) == len(wanted)))


def test_emitted_events_are_accepted_under_their_ids_with_the_title_intact(
        drafting, producer, platform_topics):
    regulation_id, chosen_id = new_regulation_id(), str(uuid.uuid4())
    # Decomposed diacritics, as some editors produce them: the platform carries NFC only.
    event_ids = [
        registered(producer, regulation_id, title=unicodedata.normalize("NFD", TITLE)),
        producer.draft_revised(regulation_id, change_summary="Bổ sung Điều 5",
                               summary="Dự thảo lần 2"),
        producer.impact_assessed(regulation_id, impact_level="IMPACT_LEVEL_MEDIUM",
                                 assessment_summary="Ảnh hưởng đến hộ nông dân"),
        producer.draft_submitted_for_consultation(regulation_id, version=2),
        producer.draft_adopted(regulation_id, event_id=chosen_id),
    ]
    producer.flush()
    assert event_ids[-1] == chosen_id

    published = records_with(platform_topics, DRAFTING_TOPIC, event_ids)
    decoded = [from_record(r.key, r.value, r.headers) for r in map(published.get, event_ids)]
    assert [event.type.removeprefix("policy.drafting.v1.") for event in decoded] == [
        "DraftRegistered", "DraftRevised", "ImpactAssessed", "DraftSubmittedForConsultation",
        "DraftAdopted"]
    assert {event.regulation_id for event in decoded} == {regulation_id}
    # The title as it is on the wire, not decoded by the envelope (which normalises too).
    on_the_wire = events.DraftRegistered.FromString(published[event_ids[0]].value).title
    assert on_the_wire.encode("utf-8") == TITLE.encode("utf-8")
    with DraftingClient(drafting.grpc_target) as client:
        draft = client.get_draft(regulation_id)
    assert (draft.state, draft.version, draft.title) == (DraftState.DRAFT_STATE_ADOPTED, 2, TITLE)


def test_rejected_events_are_dead_lettered_with_the_reason(drafting, producer, platform_topics):
    missing = new_regulation_id()
    untitled = registered(producer, new_regulation_id(), title="")
    orphan = producer.draft_withdrawn(missing, reason="Không còn cần thiết")
    producer.flush()

    parked = records_with(platform_topics, DEAD_LETTER_TOPIC, [untitled, orphan])
    reasons = {event_id: dict(record.headers)[DLQ_REASON].decode()
               for event_id, record in parked.items()}
    assert reasons[untitled].startswith("title: must not be empty")
    assert reasons[orphan] == f"no draft with regulation_id {missing!r}"


def test_what_cannot_be_a_drafting_event_fails_before_sending(producer):
    with pytest.raises(TypeError, match="ConsultationClosed is not a policy.drafting.v1 event"):
        producer.emit(consultation.ConsultationClosed(regulation_id=new_regulation_id()))
    with pytest.raises(ValueError, match="planned_adoption: .* has no time zone"):
        registered(producer, new_regulation_id(), planned_adoption=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="impact_level: 'HIGH' is not one of"):
        registered(producer, new_regulation_id(), impact_level="HIGH")


def test_an_event_kafka_refuses_raises_delivery_failed_naming_it(platform_topics):
    with DraftingEventProducer(platform_topics, source=SOURCE, max_request_size=1024) as small:
        with pytest.raises(DeliveryFailed) as caught:
            registered(small, new_regulation_id(), summary="Bồi thường, hỗ trợ. " * 100)
    [(event_id, error)] = caught.value.failures.items()
    assert isinstance(error, MessageSizeTooLargeError)
    assert event_id in str(caught.value)
