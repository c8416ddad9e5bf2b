"""Requests, drafts in a given state, and the drafting events of one regulation on a topic."""

from __future__ import annotations

import uuid

from policy.common.v1 import common_pb2
from policy.drafting.v1 import drafting_service_pb2 as api
from policy.drafting.v1 import drafting_service_pb2_grpc as api_grpc
from policykit.envelope import Event, from_record
from tests.support import RunningService, read_topic, start_service

TITLE = "Luật Đất đai (sửa đổi): lấy ý kiến Nhân dân"
DRAFTING_TOPIC = "policy.drafting.v1"


def start_drafting(bootstrap: str, database_url: str, log_dir) -> RunningService:
    return start_service("services.drafting", log_dir, {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DATABASE_URL": database_url,
        "OUTBOX_POLL_INTERVAL_MS": "20"})


def key() -> str:
    return f"key-{uuid.uuid4()}"


def register_request(**overrides) -> api.RegisterDraftRequest:
    fields = dict(
        idempotency_key=key(),
        regulation_type=common_pb2.REGULATION_TYPE_LAW, title=TITLE,
        summary="Sửa đổi quy định về bồi thường, hỗ trợ, tái định cư.",
        lead_agency_id="bnnmt", impact_level=common_pb2.IMPACT_LEVEL_HIGH,
        affected_groups=["nong-dan"], affected_province_codes=["02", "lai-chau"])
    fields.update(overrides)
    return api.RegisterDraftRequest(**fields)


def draft_in(stub: api_grpc.DraftingServiceStub, state: int, **register) -> api.Draft:
    """Registers a draft and moves it to `state` over the legal path."""
    draft = stub.RegisterDraft(register_request(**register), timeout=10).draft
    if state in (api.DRAFT_STATE_IN_CONSULTATION, api.DRAFT_STATE_ADOPTED):
        draft = stub.SubmitForConsultation(api.SubmitForConsultationRequest(
            idempotency_key=key(), regulation_id=draft.regulation_id), timeout=10).draft
    if state == api.DRAFT_STATE_ADOPTED:
        draft = stub.AdoptDraft(api.AdoptDraftRequest(
            idempotency_key=key(), regulation_id=draft.regulation_id), timeout=10).draft
    if state == api.DRAFT_STATE_WITHDRAWN:
        draft = stub.WithdrawDraft(api.WithdrawDraftRequest(
            idempotency_key=key(), regulation_id=draft.regulation_id,
            reason="Dự thảo được gộp vào luật khác"), timeout=10).draft
    assert draft.state == state
    return draft


def events_of(bootstrap: str, regulation_id: str, until_type: str,
              topic: str = DRAFTING_TOPIC) -> list[Event]:
    """Reads the topic until an event of `until_type` (e.g. "DraftAdopted") about the
    regulation is there; returns the regulation's events in order."""
    wanted = regulation_id.encode()

    def decoded(records) -> list[Event]:
        return [from_record(r.key, r.value, r.headers) for r in records if r.key == wanted]

    records = read_topic(bootstrap, [topic],
                         lambda rs: until_type in types_of(decoded(rs)))
    return decoded(records)


def types_of(events: list[Event]) -> list[str]:
    return [e.type.removeprefix("policy.drafting.v1.") for e in events]
