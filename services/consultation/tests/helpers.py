"""Drafts opened for consultation, comments, and the consultation events of one regulation."""

from __future__ import annotations

import uuid

import grpc

from policy.common.v1 import common_pb2
from policy.consultation.v1 import consultation_service_pb2 as api
from policy.consultation.v1 import consultation_service_pb2_grpc as api_grpc
from policy.drafting.v1 import events_pb2 as drafting
from policykit.envelope import Event, from_record, new_event
from policykit.kafka_io import create_producer, publish
from tests.support import eventually, read_topic, start_service, RunningService

DRAFTING_TOPIC = "policy.drafting.v1"
CONSULTATION_TOPIC = "policy.consultation.v1"
TITLE = "Luật Đất đai (sửa đổi): lấy ý kiến Nhân dân"
PSEUDONYM_KEY = "test-pseudonym-key-0123456789abcdef"
# Windows short enough to watch one end: circulars close four seconds after they open.
WINDOWS = "LAW=P60D,DECREE=P30D,CIRCULAR=PT4S"


def start_consultation(bootstrap: str, database_url: str, log_dir, **env) -> RunningService:
    return start_service("services.consultation", log_dir, {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DATABASE_URL": database_url,
        "CONSULTATION_PSEUDONYM_KEY": PSEUDONYM_KEY, "CONSULTATION_WINDOWS": WINDOWS,
        "OUTBOX_POLL_INTERVAL_MS": "20", "CONSULTATION_SWEEP_INTERVAL_MS": "200", **env})


def key() -> str:
    return f"key-{uuid.uuid4()}"


def produce_drafting(bootstrap: str, *payloads) -> None:
    """Publishes drafting events as the drafting service would."""
    producer = create_producer(bootstrap, client_id="test-drafting")
    try:
        for payload in payloads:
            publish(producer, DRAFTING_TOPIC, new_event(payload, "policy/drafting")).get(30)
    finally:
        producer.close()


def register(bootstrap: str, regulation_type=common_pb2.REGULATION_TYPE_LAW) -> str:
    regulation_id = f"reg-{uuid.uuid4().hex[:12]}"
    produce_drafting(bootstrap, drafting.DraftRegistered(
        regulation_id=regulation_id, regulation_type=regulation_type, title=TITLE,
        lead_agency_id="btnmt", impact_level=common_pb2.IMPACT_LEVEL_HIGH, version=1))
    return regulation_id


def consultation(stub: api_grpc.ConsultationServiceStub, regulation_id: str) -> api.Consultation:
    return stub.GetConsultation(api.GetConsultationRequest(regulation_id=regulation_id),
                                timeout=10).consultation


def open_consultation(bootstrap: str, stub: api_grpc.ConsultationServiceStub,
                      regulation_type=common_pb2.REGULATION_TYPE_LAW) -> str:
    """Registers a draft, submits it for consultation and waits until the window is open."""
    regulation_id = register(bootstrap, regulation_type)
    produce_drafting(bootstrap, drafting.DraftSubmittedForConsultation(
        regulation_id=regulation_id, version=1))

    def opened():
        try:
            return consultation(stub, regulation_id)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND
            return None

    eventually(opened, what=f"the consultation on {regulation_id} to open")
    return regulation_id


def end_draft(bootstrap: str, stub: api_grpc.ConsultationServiceStub, regulation_id: str,
              payload=None) -> api.Consultation:
    """Adopts the draft (or applies `payload`, e.g. DraftWithdrawn) and waits until its
    consultation is closed."""
    produce_drafting(bootstrap, payload or drafting.DraftAdopted(regulation_id=regulation_id,
                                                                 version=1))
    return eventually(
        lambda: (c := consultation(stub, regulation_id)).state == api.CONSULTATION_STATE_CLOSED
        and c, what=f"the consultation on {regulation_id} to close")


def comment(regulation_id: str, text: str = "Đề nghị làm rõ khái niệm đất ở tại Điều 5.",
            **overrides) -> api.Comment:
    fields = dict(idempotency_key=key(), regulation_id=regulation_id,
                  stakeholder_type=common_pb2.STAKEHOLDER_TYPE_CITIZEN, province_code="02",
                  text=text, article_ref="Điều 5")
    fields.update(overrides)
    return api.Comment(**fields)


def submit(stub: api_grpc.ConsultationServiceStub,
           comment_: api.Comment) -> api.SubmitCommentResponse:
    return stub.SubmitComment(api.SubmitCommentRequest(comment=comment_), timeout=10)


def submit_all(stub: api_grpc.ConsultationServiceStub, comments: list[api.Comment],
               per_message: int = 100) -> api.SubmitCommentsResponse:
    return stub.SubmitComments(iter([
        api.SubmitCommentsRequest(comments=comments[i:i + per_message])
        for i in range(0, len(comments), per_message)]), timeout=60)


def events_of(bootstrap: str, regulation_id: str, until) -> list[Event]:
    """Reads policy.consultation.v1 until `until(events of the regulation)` holds; returns
    the regulation's events in order."""
    wanted = regulation_id.encode()

    def decoded(records) -> list[Event]:
        return [from_record(r.key, r.value, r.headers) for r in records if r.key == wanted]

    return decoded(read_topic(bootstrap, [CONSULTATION_TOPIC], lambda rs: until(decoded(rs))))


def of_type(events: list[Event], name: str) -> list:
    return [e.payload for e in events if e.type == f"policy.consultation.v1.{name}"]


def has(name: str, count: int = 1):
    """An `until` for events_of: at least `count` events of the type are there."""
    return lambda events: len(of_type(events, name)) >= count
