"""The DraftingService gRPC API.

Registering and reading drafts are served here; the other lifecycle transitions (revise,
assess impact, submit for consultation, adopt, withdraw, list) answer UNIMPLEMENTED until
the drafting issue adds them with their state machine."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import asyncpg
import grpc

from policy.drafting.v1 import drafting_service_pb2 as api
from policy.drafting.v1 import drafting_service_pb2_grpc as api_grpc
from policy.drafting.v1 import events_pb2 as events
from policykit.envelope import new_event
from policykit.errors import FieldViolations, NotFound
from policykit.outbox import enqueue
from policykit.text import normalize_message

from services.drafting import storage
from services.drafting.validation import check_draft_fields, check_idempotency_key

SOURCE = "policy/drafting"
TOPIC = "policy.drafting.v1"


class DraftingServicer(api_grpc.DraftingServiceServicer):
    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def RegisterDraft(self, request: api.RegisterDraftRequest,
                            context: grpc.aio.ServicerContext) -> api.RegisterDraftResponse:
        normalize_message(request)
        check_idempotency_key(request.idempotency_key)
        check_draft_fields(request)
        async with self.pool.acquire() as conn, conn.transaction():
            earlier = await storage.remembered_response(
                conn, request.idempotency_key, "RegisterDraft", api.RegisterDraftResponse)
            if earlier is not None:
                return earlier
            now = datetime.now(timezone.utc)
            draft = api.Draft(
                regulation_id=str(uuid.uuid4()), regulation_type=request.regulation_type,
                title=request.title, summary=request.summary,
                lead_agency_id=request.lead_agency_id, impact_level=request.impact_level,
                affected_groups=request.affected_groups,
                affected_province_codes=request.affected_province_codes,
                state=api.DRAFT_STATE_DRAFTING, version=1)
            for field in ("planned_consultation_start", "planned_adoption"):
                if request.HasField(field):
                    getattr(draft, field).CopyFrom(getattr(request, field))
            draft.created_at.FromDatetime(now)
            draft.updated_at.FromDatetime(now)
            await storage.insert_draft(conn, draft, now)
            registered = events.DraftRegistered(
                regulation_id=draft.regulation_id, regulation_type=draft.regulation_type,
                title=draft.title, summary=draft.summary, lead_agency_id=draft.lead_agency_id,
                impact_level=draft.impact_level, affected_groups=draft.affected_groups,
                affected_province_codes=draft.affected_province_codes,
                planned_consultation_start=draft.planned_consultation_start,
                planned_adoption=draft.planned_adoption, registered_at=draft.created_at,
                version=draft.version)
            await enqueue(conn, TOPIC, new_event(registered, SOURCE, time=now))
            response = api.RegisterDraftResponse(draft=draft)
            await storage.remember_response(conn, request.idempotency_key, "RegisterDraft",
                                            response)
            return response

    async def GetDraft(self, request: api.GetDraftRequest,
                       context: grpc.aio.ServicerContext) -> api.GetDraftResponse:
        if not request.regulation_id:
            violations = FieldViolations()
            violations.add("regulation_id", "must not be empty")
            raise violations
        async with self.pool.acquire() as conn:
            draft = await storage.get_draft(conn, request.regulation_id)
        if draft is None:
            raise NotFound(f"no draft with regulation_id {request.regulation_id!r}")
        return api.GetDraftResponse(draft=draft)
