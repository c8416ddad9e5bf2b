"""The DraftingService gRPC API.

Each mutating call becomes the drafting event that records it (see changes.py), is validated
field by field, and is applied once per idempotency key: a retry gets the first response.
Illegal transitions answer FAILED_PRECONDITION naming the draft's state (see lifecycle.py);
GetDraft and ListDrafts read the drafts as stored. A caller changes only drafts whose lead
agency it speaks for (access.py)."""

from __future__ import annotations

import uuid

import asyncpg
import grpc
from google.protobuf.message import Message

from policy.drafting.v1 import drafting_service_pb2 as api
from policy.drafting.v1 import drafting_service_pb2_grpc as api_grpc
from policy.drafting.v1 import events_pb2 as events
from policykit import auth, idempotency
from policykit.errors import NotFound
from policykit.wellformed import normalize_message

from services.drafting import changes, storage
from services.drafting.validation import check_change, check_get, parse_list_request


class DraftingServicer(api_grpc.DraftingServiceServicer):
    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def _change(self, request: Message, change: Message,
                      response_type: type[Message]) -> Message:
        """Records the change the request asks for, once per idempotency key; returns the
        response with the draft as it is after the change."""
        idempotency.check_key(request.idempotency_key)
        normalize_message(changes.copy_fields(request, change))
        check_change(change)
        await self._check_lead_agency(change)
        method = response_type.DESCRIPTOR.name.removesuffix("Response")

        async def record(conn: asyncpg.Connection) -> Message:
            return response_type(draft=await changes.record(conn, change))

        return await idempotency.once(self.pool, request, method,
                                      response_type, record)

    async def _check_lead_agency(self, change: Message) -> None:
        """The caller must speak for the lead agency it registers, or of the stored draft (a
        lead agency never changes). Checked before the idempotent change, so that a response
        remembered for one agency's key is never handed to another."""
        if isinstance(change, events.DraftRegistered):
            lead_agency_id = change.lead_agency_id
        else:
            async with self.pool.acquire() as conn:
                draft = await storage.get_draft(conn, change.regulation_id)
            if draft is None:
                return  # nothing to change: the change itself answers NOT_FOUND
            lead_agency_id = draft.lead_agency_id
        auth.require(auth.speaks_for(lead_agency_id), f"change drafts of {lead_agency_id}")

    async def RegisterDraft(self, request: api.RegisterDraftRequest,
                            context: grpc.aio.ServicerContext) -> api.RegisterDraftResponse:
        registered = events.DraftRegistered(regulation_id=str(uuid.uuid4()))
        return await self._change(request, registered, api.RegisterDraftResponse)

    async def ReviseDraft(self, request: api.ReviseDraftRequest,
                          context: grpc.aio.ServicerContext) -> api.ReviseDraftResponse:
        return await self._change(request, events.DraftRevised(), api.ReviseDraftResponse)

    async def RecordImpactAssessment(
            self, request: api.RecordImpactAssessmentRequest,
            context: grpc.aio.ServicerContext) -> api.RecordImpactAssessmentResponse:
        return await self._change(request, events.ImpactAssessed(),
                                  api.RecordImpactAssessmentResponse)

    async def SubmitForConsultation(
            self, request: api.SubmitForConsultationRequest,
            context: grpc.aio.ServicerContext) -> api.SubmitForConsultationResponse:
        return await self._change(request, events.DraftSubmittedForConsultation(),
                                  api.SubmitForConsultationResponse)

    async def AdoptDraft(self, request: api.AdoptDraftRequest,
                         context: grpc.aio.ServicerContext) -> api.AdoptDraftResponse:
        return await self._change(request, events.DraftAdopted(), api.AdoptDraftResponse)

    async def WithdrawDraft(self, request: api.WithdrawDraftRequest,
                            context: grpc.aio.ServicerContext) -> api.WithdrawDraftResponse:
        return await self._change(request, events.DraftWithdrawn(), api.WithdrawDraftResponse)

    async def GetDraft(self, request: api.GetDraftRequest,
                       context: grpc.aio.ServicerContext) -> api.GetDraftResponse:
        check_get(request)
        async with self.pool.acquire() as conn:
            draft = await storage.get_draft(conn, request.regulation_id)
        if draft is None:
            raise NotFound(f"no draft with regulation_id {request.regulation_id!r}")
        return api.GetDraftResponse(draft=draft)

    async def ListDrafts(self, request: api.ListDraftsRequest,
                         context: grpc.aio.ServicerContext) -> api.ListDraftsResponse:
        query = parse_list_request(request)
        async with self.pool.acquire() as conn:
            drafts, next_page_token = await storage.list_drafts(conn, query)
        response = api.ListDraftsResponse(drafts=drafts)
        response.page.next_page_token = next_page_token
        return response
