"""DraftingClient: the DraftingService gRPC API as typed, synchronous calls with retries."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, NamedTuple

import grpc
from google.protobuf.message import Message

from policy.common.v1.common_pb2 import ImpactLevel, RegulationType
from policy.drafting.v1 import drafting_service_pb2 as api
from policy.drafting.v1 import drafting_service_pb2_grpc as api_grpc
from policy_sdk import errors
from policy_sdk._messages import build
from policy_sdk.channels import open_channel, with_token
from policy_sdk.retry import RetryPolicy

log = logging.getLogger("policy_sdk")

USER_AGENT = "policy-sdk-python"


class DraftPage(NamedTuple):
    drafts: list[api.Draft]
    next_page_token: str  # empty on the last page


class DraftingClient:
    """A client of policy.drafting.v1.DraftingService.

    `target` is "host:port" (a channel the client opens and closes: plaintext, or TLS with
    `credentials`, see policy_sdk.tls_credentials) or a grpc.Channel the caller opened and
    closes itself. `token` is sent as `authorization: Bearer <token>` with every call and
    every retry. Each call is retried on transient errors as `retry`
    says; a mutating call sends one idempotency key, generated (uuid4) unless given, with every
    attempt, so a retry after a lost answer returns the first result and changes nothing.
    Failures raise policy_sdk.errors: InvalidArgument (with each field), NotFound,
    FailedPrecondition (with the draft's state), RetriesExhausted, or ServiceError.

    Thread-safe; use it as a context manager or call close()."""

    def __init__(self, target: str | grpc.Channel, *, retry: RetryPolicy = RetryPolicy(),
                 token: str | None = None,
                 credentials: grpc.ChannelCredentials | None = None):
        self.retry = retry
        if isinstance(target, str):
            self.target: str | None = target
            # The channel's own reconnect backoff (1 s growing to 120 s by default) would leave
            # retries failing fast long after the service is back; keep it within the policy's.
            self._channel = open_channel(target, token=token, credentials=credentials, options=[
                ("grpc.primary_user_agent", USER_AGENT),
                ("grpc.initial_reconnect_backoff_ms", int(retry.initial_backoff * 1000)),
                ("grpc.max_reconnect_backoff_ms", int(retry.max_backoff * 1000))])
            self._owns_channel = True
        else:
            self.target = None
            self._channel = with_token(target, token)
            self._owns_channel = False
        self._stub = api_grpc.DraftingServiceStub(self._channel)

    def close(self) -> None:
        """Closes the channel if the client opened it."""
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> DraftingClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def register_draft(self, *, regulation_type: RegulationType | str, title: str,
                       lead_agency_id: str, impact_level: ImpactLevel | str, summary: str = "",
                       affected_groups: Iterable[str] = (),
                       affected_province_codes: Iterable[str] = (),
                       planned_consultation_start: datetime | None = None,
                       planned_adoption: datetime | None = None,
                       idempotency_key: str | None = None) -> api.Draft:
        """Registers a draft; the service assigns its regulation_id. The lead agency is a
        ministry id of the reference data (pre-2025 ids are kept as sent); provinces are 2008
        codes or 2025 ids."""
        return self._change("RegisterDraft", build(
            api.RegisterDraftRequest, regulation_type=regulation_type, title=title,
            summary=summary, lead_agency_id=lead_agency_id, impact_level=impact_level,
            affected_groups=affected_groups, affected_province_codes=affected_province_codes,
            planned_consultation_start=planned_consultation_start,
            planned_adoption=planned_adoption), idempotency_key)

    def revise_draft(self, regulation_id: str, *, change_summary: str, title: str = "",
                     summary: str = "", idempotency_key: str | None = None) -> api.Draft:
        """Records a new version; an empty title or summary keeps the current one."""
        return self._change("ReviseDraft", build(
            api.ReviseDraftRequest, regulation_id=regulation_id, change_summary=change_summary,
            title=title, summary=summary), idempotency_key)

    def record_impact_assessment(self, regulation_id: str, *, impact_level: ImpactLevel | str,
                                 assessment_summary: str, affected_groups: Iterable[str] = (),
                                 affected_province_codes: Iterable[str] = (),
                                 idempotency_key: str | None = None) -> api.Draft:
        """Sets the impact level; non-empty affected groups or provinces replace the draft's."""
        return self._change("RecordImpactAssessment", build(
            api.RecordImpactAssessmentRequest, regulation_id=regulation_id,
            impact_level=impact_level, assessment_summary=assessment_summary,
            affected_groups=affected_groups, affected_province_codes=affected_province_codes),
            idempotency_key)

    def submit_for_consultation(self, regulation_id: str, *,
                                idempotency_key: str | None = None) -> api.Draft:
        """DRAFTING → IN_CONSULTATION."""
        return self._change("SubmitForConsultation", build(
            api.SubmitForConsultationRequest, regulation_id=regulation_id), idempotency_key)

    def adopt_draft(self, regulation_id: str, *, idempotency_key: str | None = None) -> api.Draft:
        """IN_CONSULTATION → ADOPTED."""
        return self._change("AdoptDraft", build(
            api.AdoptDraftRequest, regulation_id=regulation_id), idempotency_key)

    def withdraw_draft(self, regulation_id: str, *, reason: str,
                       idempotency_key: str | None = None) -> api.Draft:
        """DRAFTING or IN_CONSULTATION → WITHDRAWN."""
        return self._change("WithdrawDraft", build(
            api.WithdrawDraftRequest, regulation_id=regulation_id, reason=reason),
            idempotency_key)

    def get_draft(self, regulation_id: str) -> api.Draft:
        return self._call("GetDraft", build(api.GetDraftRequest, regulation_id=regulation_id)).draft

    def list_drafts(self, *, lead_agency_id: str = "", state: api.DraftState | str | None = None,
                    impact_level: ImpactLevel | str | None = None,
                    page_size: int | None = None) -> Iterator[api.Draft]:
        """Every draft that matches the filters (unset = any), newest first, fetching pages of
        `page_size` (the service's default when None) as the iteration goes."""
        page_token = ""
        while True:
            page = self.list_drafts_page(lead_agency_id=lead_agency_id, state=state,
                                         impact_level=impact_level, page_size=page_size,
                                         page_token=page_token)
            yield from page.drafts
            if not page.next_page_token:
                return
            page_token = page.next_page_token

    def list_drafts_page(self, *, lead_agency_id: str = "",
                         state: api.DraftState | str | None = None,
                         impact_level: ImpactLevel | str | None = None,
                         page_size: int | None = None, page_token: str = "") -> DraftPage:
        """One page of list_drafts; pass its next_page_token back, unchanged, for the next."""
        request = build(api.ListDraftsRequest, lead_agency_id=lead_agency_id, state=state,
                        impact_level=impact_level)
        request.page.page_size = page_size or 0
        request.page.page_token = page_token
        response = self._call("ListDrafts", request)
        return DraftPage(list(response.drafts), response.page.next_page_token)

    def _change(self, method: str, request: Message, idempotency_key: str | None) -> api.Draft:
        request.idempotency_key = idempotency_key or str(uuid.uuid4())
        return self._call(method, request, request.idempotency_key).draft

    def _call(self, method: str, request: Message, idempotency_key: str | None = None) -> Any:
        """Calls the method with the same request until it succeeds, fails for good, or the
        retry policy runs out; raises the matching policy_sdk.errors exception."""
        rpc = getattr(self._stub, method)
        policy = self.retry
        start = time.monotonic()
        deadline = start + policy.overall_timeout
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            try:
                return rpc(request, timeout=min(policy.attempt_timeout, remaining))
            except grpc.RpcError as error:
                if error.code() not in policy.retryable_codes:
                    raise errors.from_rpc_error(error, method, idempotency_key) from error
                pause = policy.backoff(attempt)
                if attempt >= policy.max_attempts or time.monotonic() + pause >= deadline:
                    raise self._exhausted(error, method, idempotency_key, attempt,
                                          time.monotonic() - start) from error
                log.warning("%s failed with %s (%s); attempt %d in %.2f s%s", self._name(method),
                            error.code().name, error.details(), attempt + 1, pause,
                            f" with idempotency key {idempotency_key}" if idempotency_key else "")
                time.sleep(pause)

    def _name(self, method: str) -> str:
        return f"{method} at {self.target}" if self.target else method

    def _exhausted(self, error: grpc.RpcError, method: str, idempotency_key: str | None,
                   attempts: int, elapsed: float) -> errors.RetriesExhausted:
        message = (f"{self._name(method)}: gave up after {attempts} attempt(s) in "
                   f"{elapsed:.1f} s; last: {error.code().name}: {error.details()}")
        if idempotency_key:
            message += (f". It may or may not have been applied: repeat it with "
                        f"idempotency_key={idempotency_key!r} to apply it at most once")
        return errors.RetriesExhausted(message, attempts=attempts, code=error.code(),
                                       details=error.details() or "", method=method,
                                       idempotency_key=idempotency_key)
