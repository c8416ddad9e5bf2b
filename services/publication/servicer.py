"""The PublicationService gRPC API.

Each mutating call is validated field by field, checked against what the service knows of
the regulations (FAILED_PRECONDITION naming the state that forbids it, NOT_FOUND for a
regulation never registered) and applied once per idempotency key: a retry gets the first
response. GetTimeline reads the timeline a page at a time. Who may record what for which
regulation is checked here, on the regulation's lead agency (access.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Awaitable, Callable

import asyncpg
import grpc
from google.protobuf.message import Message

from policy.publication.v1 import publication_service_pb2 as api
from policy.publication.v1 import publication_service_pb2_grpc as api_grpc
from policykit import auth, idempotency
from policykit.errors import NotFound
from policykit.wellformed import normalize_message

from services.publication import changes, storage, timeline, validation
from services.publication.settings import PublicationSettings

Clock = Callable[[], datetime]


class PublicationServicer(api_grpc.PublicationServiceServicer):
    def __init__(self, pool: asyncpg.Pool, settings: PublicationSettings, clock: Clock):
        self.pool = pool
        self.settings = settings
        self.clock = clock

    async def _change(self, request: Message, check: Callable[[Message], None],
                      response_type: type[Message],
                      change: Callable[[asyncpg.Connection], Awaitable[Message]], *,
                      lead_of: str = "regulation_id", office: str = "") -> Message:
        """Normalises the request to NFC, checks it, checks that the caller may act on the
        regulation its field `lead_of` names (see _check_lead_agency) and applies `change`
        once per idempotency key."""
        idempotency.check_key(request.idempotency_key)
        normalize_message(request)
        check(request)
        # Before the idempotent change: a response remembered for one caller's key is never
        # handed to another.
        await self._check_lead_agency(getattr(request, lead_of), office)
        method = response_type.DESCRIPTOR.name.removesuffix("Response")
        return await idempotency.once(self.pool, request, method,
                                      response_type, change)

    async def _check_lead_agency(self, regulation_id: str, office: str) -> None:
        """The caller must be the lead agency of the regulation (its `office`, when given),
        unless it is the Official Gazette recording a publication (no office)."""
        if not office and auth.has_role(auth.GAZETTE):
            return
        async with self.pool.acquire() as conn:
            regulation = await storage.get_regulation(conn, regulation_id)
        if regulation is None:
            return  # nothing to act on: the change itself answers NOT_FOUND
        lead = regulation.lead_agency_id
        auth.require(auth.speaks_for(lead, office),
                     f"act for {lead} on {regulation_id}" + (f" as its {office}" if office else ""))

    async def RecordPromulgation(
            self, request: api.RecordPromulgationRequest,
            context: grpc.aio.ServicerContext) -> api.RecordPromulgationResponse:
        now = self.clock()

        async def record(conn: asyncpg.Connection) -> api.RecordPromulgationResponse:
            promulgation = await changes.promulgate(conn, request, self.settings, now)
            return api.RecordPromulgationResponse(promulgation=promulgation)

        return await self._change(
            request, lambda r: validation.check_promulgation(r, now),
            api.RecordPromulgationResponse, record)

    async def AmendRegulation(self, request: api.AmendRegulationRequest,
                              context: grpc.aio.ServicerContext) -> api.AmendRegulationResponse:
        async def amend(conn: asyncpg.Connection) -> api.AmendRegulationResponse:
            await changes.amend(conn, request, self.clock())
            return api.AmendRegulationResponse()

        return await self._change(request, validation.check_amendment,
                                  api.AmendRegulationResponse, amend,
                                  lead_of="amended_by_regulation_id")

    async def RepealRegulation(self, request: api.RepealRegulationRequest,
                               context: grpc.aio.ServicerContext) -> api.RepealRegulationResponse:
        async def repeal(conn: asyncpg.Connection) -> api.RepealRegulationResponse:
            await changes.repeal(conn, request, self.clock())
            return api.RepealRegulationResponse()

        return await self._change(request, validation.check_repeal,
                                  api.RepealRegulationResponse, repeal,
                                  lead_of="repealed_by_regulation_id")

    async def IssueSpokespersonRelease(
            self, request: api.IssueSpokespersonReleaseRequest,
            context: grpc.aio.ServicerContext) -> api.IssueSpokespersonReleaseResponse:
        async def issue(conn: asyncpg.Connection) -> api.IssueSpokespersonReleaseResponse:
            release_id = await changes.issue_release(conn, request, self.clock())
            return api.IssueSpokespersonReleaseResponse(release_id=release_id)

        return await self._change(request, validation.check_release,
                                  api.IssueSpokespersonReleaseResponse, issue,
                                  office="spokesperson")

    async def GetTimeline(self, request: api.GetTimelineRequest,
                          context: grpc.aio.ServicerContext) -> api.GetTimelineResponse:
        page_size, after = validation.parse_timeline_request(request)
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                                readonly=True):
            response = await timeline.load(conn, request.regulation_id, after=after,
                                           page_size=page_size)
        if response is None:
            raise NotFound(f"nothing is known of regulation {request.regulation_id!r}")
        return response
