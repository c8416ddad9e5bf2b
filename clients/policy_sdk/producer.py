"""DraftingEventProducer: drafting events produced straight to Kafka, for drafting systems that
publish events instead of calling the gRPC API."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from google.protobuf.message import Message
from kafka.errors import KafkaError

from policy.common.v1.common_pb2 import ImpactLevel, RegulationType
from policy.drafting.v1 import events_pb2 as events
from policy_sdk._messages import build
from policy_sdk.errors import DeliveryFailed
from policykit.envelope import new_event
from policykit.kafka_io import create_producer, publish

# Where drafting systems produce; the drafting service consumes it as group "drafting".
INTAKE_TOPIC = "policy.drafting-intake.v1"
# Where the events the drafting service accepted appear, under the producer's ce_id.
DRAFTING_TOPIC = "policy.drafting.v1"
# Where the events it rejected appear, as sent, with a `dlq_reason` header saying why.
DEAD_LETTER_TOPIC = "policy.dlq.drafting"


class DraftingEventProducer:
    """Produces policy.drafting.v1 events to policy.drafting-intake.v1 with the platform's
    envelope (CloudEvents headers, protobuf value, key = regulation_id), through an idempotent
    producer that waits for every in-sync replica (acks=all).

    Every method returns the event's id (ce_id, a new uuid4 unless `event_id` is given): the
    drafting service republishes an accepted event under that id on policy.drafting.v1 and
    parks a rejected one on policy.dlq.drafting with a `dlq_reason` header (e.g. "title: must
    not be empty"). An event sent again with the same id is applied once, so a drafting system
    that is unsure whether an event went out may send it again with its id.

    Sending is asynchronous: flush() waits until Kafka has every event emitted so far and
    raises DeliveryFailed for those it could not take; close() and leaving the `with` block
    flush first. An event refused at once (e.g. larger than max_request_size) raises
    DeliveryFailed from the method itself.

    `source` is the ce_source identifying the drafting system (e.g. "urn:vbpl:bnnmt");
    `kafka_settings` go to kafka-python's KafkaProducer (e.g. security settings). Thread-safe."""

    def __init__(self, bootstrap_servers: str, *, source: str, **kafka_settings: Any):
        self.source = source
        kafka_settings.setdefault("client_id", "policy-sdk")
        self._producer = create_producer(bootstrap_servers, **kafka_settings)
        self._failures: dict[str, Exception] = {}
        self._lock = threading.Lock()

    def emit(self, payload: Message, *, event_id: str | None = None,
             time: datetime | None = None) -> str:
        """Emits any policy.drafting.v1 event message (its text normalised to NFC in place);
        `time` is when it happened (ce_time, now by default), which the service also uses for
        the event's own time field when that is unset. Returns the event id."""
        if payload.DESCRIPTOR.file is not events.DESCRIPTOR:
            raise TypeError(f"{payload.DESCRIPTOR.full_name} is not a policy.drafting.v1 event")
        event = new_event(payload, self.source, event_id=event_id, time=time)
        try:
            future = publish(self._producer, INTAKE_TOPIC, event)
        except KafkaError as error:
            raise DeliveryFailed({event.id: error}) from error
        future.add_errback(self._failed, event.id)
        return event.id

    def draft_registered(self, regulation_id: str, *, regulation_type: RegulationType | str,
                         title: str, lead_agency_id: str, impact_level: ImpactLevel | str,
                         summary: str = "", affected_groups: Iterable[str] = (),
                         affected_province_codes: Iterable[str] = (),
                         planned_consultation_start: datetime | None = None,
                         planned_adoption: datetime | None = None,
                         event_id: str | None = None, time: datetime | None = None) -> str:
        """A new draft; the drafting system chooses its regulation_id (1 to 64 characters of
        a-z, 0-9 and '-'), which keys all its later events."""
        return self.emit(build(
            events.DraftRegistered, regulation_id=regulation_id, regulation_type=regulation_type,
            title=title, summary=summary, lead_agency_id=lead_agency_id,
            impact_level=impact_level, affected_groups=affected_groups,
            affected_province_codes=affected_province_codes,
            planned_consultation_start=planned_consultation_start,
            planned_adoption=planned_adoption), event_id=event_id, time=time)

    def draft_revised(self, regulation_id: str, *, change_summary: str, title: str = "",
                      summary: str = "", version: int = 0, event_id: str | None = None,
                      time: datetime | None = None) -> str:
        """A new version; an empty title or summary keeps the current one. `version` 0 lets
        the service number it; any other must be the draft's next version."""
        return self.emit(build(
            events.DraftRevised, regulation_id=regulation_id, change_summary=change_summary,
            title=title, summary=summary, version=version), event_id=event_id, time=time)

    def impact_assessed(self, regulation_id: str, *, impact_level: ImpactLevel | str,
                        assessment_summary: str, affected_groups: Iterable[str] = (),
                        affected_province_codes: Iterable[str] = (),
                        event_id: str | None = None, time: datetime | None = None) -> str:
        """The impact assessment; non-empty affected groups or provinces replace the draft's."""
        return self.emit(build(
            events.ImpactAssessed, regulation_id=regulation_id, impact_level=impact_level,
            assessment_summary=assessment_summary, affected_groups=affected_groups,
            affected_province_codes=affected_province_codes), event_id=event_id, time=time)

    def draft_submitted_for_consultation(self, regulation_id: str, *, version: int = 0,
                                         event_id: str | None = None,
                                         time: datetime | None = None) -> str:
        """DRAFTING → IN_CONSULTATION; `version`, unless 0, must be the draft's current one."""
        return self.emit(build(events.DraftSubmittedForConsultation, regulation_id=regulation_id,
                               version=version), event_id=event_id, time=time)

    def draft_adopted(self, regulation_id: str, *, version: int = 0,
                      event_id: str | None = None, time: datetime | None = None) -> str:
        """IN_CONSULTATION → ADOPTED; `version`, unless 0, must be the draft's current one."""
        return self.emit(build(events.DraftAdopted, regulation_id=regulation_id,
                               version=version), event_id=event_id, time=time)

    def draft_withdrawn(self, regulation_id: str, *, reason: str, event_id: str | None = None,
                        time: datetime | None = None) -> str:
        """DRAFTING or IN_CONSULTATION → WITHDRAWN."""
        return self.emit(build(events.DraftWithdrawn, regulation_id=regulation_id,
                               reason=reason), event_id=event_id, time=time)

    def flush(self, timeout: float | None = None) -> None:
        """Waits until Kafka has taken or refused every event emitted so far (at most `timeout`
        seconds: then kafka.errors.KafkaTimeoutError); raises DeliveryFailed naming the refused
        ones, once."""
        self._producer.flush(timeout=timeout)
        with self._lock:
            failures, self._failures = self._failures, {}
        if failures:
            raise DeliveryFailed(failures)

    def close(self, timeout: float | None = None) -> None:
        """Flushes, then closes the connection to Kafka even when the flush raised."""
        try:
            self.flush(timeout)
        finally:
            self._producer.close(timeout=timeout)

    def __enter__(self) -> DraftingEventProducer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _failed(self, event_id: str, error: Exception) -> None:
        with self._lock:
            self._failures[event_id] = error
