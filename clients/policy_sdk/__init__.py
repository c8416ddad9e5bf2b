"""policy_sdk: typed Python clients for drafting systems (clients/policy_sdk/README.md).

Public API — stable; names not listed here (policy_sdk._messages, errors.from_rpc_error, …)
may change:

DraftingClient(target: str | grpc.Channel, *, retry: RetryPolicy = RetryPolicy(),
               token: str | None = None, credentials: grpc.ChannelCredentials | None = None)
    The DraftingService gRPC API, synchronous; a context manager (close()). `token` goes with
    every call and retry as `authorization: Bearer <token>`; `credentials` (a target string
    only) opens a TLS channel, e.g. tls_credentials(ca, cert, key) for mTLS. Mutating calls
    take `idempotency_key: str | None = None` (a uuid4 when None, the same for every retry)
    and return the Draft as it is after the change:
    .register_draft(*, regulation_type, title, lead_agency_id, impact_level, summary="",
                    affected_groups=(), affected_province_codes=(),
                    planned_consultation_start=None, planned_adoption=None,
                    idempotency_key=None) -> Draft
    .revise_draft(regulation_id, *, change_summary, title="", summary="",
                  idempotency_key=None) -> Draft
    .record_impact_assessment(regulation_id, *, impact_level, assessment_summary,
                              affected_groups=(), affected_province_codes=(),
                              idempotency_key=None) -> Draft
    .submit_for_consultation(regulation_id, *, idempotency_key=None) -> Draft
    .adopt_draft(regulation_id, *, idempotency_key=None) -> Draft
    .withdraw_draft(regulation_id, *, reason, idempotency_key=None) -> Draft
    .get_draft(regulation_id) -> Draft
    .list_drafts(*, lead_agency_id="", state=None, impact_level=None,
                 page_size=None) -> Iterator[Draft]             (all pages, fetched lazily)
    .list_drafts_page(*, lead_agency_id="", state=None, impact_level=None, page_size=None,
                      page_token="") -> DraftPage(drafts, next_page_token)
    Enums (regulation_type, impact_level, state) take the generated values or their names
    ("IMPACT_LEVEL_HIGH"); timestamps take datetimes with a time zone; lists any iterable of
    str. A bad representation raises ValueError / TypeError before any call.

tls_credentials(ca_file, cert_file=None, key_file=None) -> grpc.ChannelCredentials
    TLS trusting the CA, with the client certificate and key when given (mTLS).

RetryPolicy(max_attempts=10, initial_backoff=0.1, max_backoff=5.0, multiplier=2.0,
            jitter=1.0, attempt_timeout=10.0, overall_timeout=30.0,
            retryable_codes=TRANSIENT_CODES)
    Frozen dataclass; TRANSIENT_CODES = UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED,
    ABORTED. Each retry is logged at WARNING on the "policy_sdk" logger.

DraftingEventProducer(bootstrap_servers: str, *, source: str, **kafka_settings)
    Drafting events to Kafka (policy.drafting-intake.v1); a context manager. Each method
    returns the event id (ce_id) and takes `event_id: str | None = None` and
    `time: datetime | None = None`:
    .draft_registered(regulation_id, *, regulation_type, title, lead_agency_id,
                      impact_level, summary="", affected_groups=(),
                      affected_province_codes=(), planned_consultation_start=None,
                      planned_adoption=None, …) -> str
    .draft_revised(regulation_id, *, change_summary, title="", summary="", version=0, …)
    .impact_assessed(regulation_id, *, impact_level, assessment_summary,
                     affected_groups=(), affected_province_codes=(), …)
    .draft_submitted_for_consultation(regulation_id, *, version=0, …)
    .draft_adopted(regulation_id, *, version=0, …)
    .draft_withdrawn(regulation_id, *, reason, …)
    .emit(payload: policy.drafting.v1 event message, *, event_id=None, time=None) -> str
    .flush(timeout=None), .close(timeout=None)
    INTAKE_TOPIC, DRAFTING_TOPIC (accepted events), DEAD_LETTER_TOPIC (rejected events,
    with a `dlq_reason` header).

Errors (policy_sdk.errors), all PolicySdkError:
    ServiceError: a failed call; .code (grpc.StatusCode), .details, .method, .idempotency_key
      InvalidArgument: .violations (list of FieldViolation(field, description)), .fields
      NotFound
      Unauthenticated: no token, or an unknown or revoked one
      PermissionDenied: the caller's organisation may not do this
      FailedPrecondition: .state (the draft's DraftState, or None)
      RetriesExhausted: .attempts; transient failures until the retry policy ran out
    DeliveryFailed: .failures ({event id: error}) for events Kafka did not take

Draft, DraftState, ImpactLevel, RegulationType: the generated types, re-exported.
"""

from policy.common.v1.common_pb2 import ImpactLevel, RegulationType
from policy.drafting.v1.drafting_service_pb2 import Draft, DraftState
from policy_sdk.channels import tls_credentials
from policy_sdk.drafting import DraftingClient, DraftPage
from policy_sdk.errors import (DeliveryFailed, FailedPrecondition, FieldViolation,
                               InvalidArgument, NotFound, PermissionDenied, PolicySdkError,
                               RetriesExhausted, ServiceError, Unauthenticated)
from policy_sdk.producer import (DEAD_LETTER_TOPIC, DRAFTING_TOPIC, INTAKE_TOPIC,
                                 DraftingEventProducer)
from policy_sdk.retry import TRANSIENT_CODES, RetryPolicy

__all__ = [
    "DEAD_LETTER_TOPIC", "DRAFTING_TOPIC", "INTAKE_TOPIC", "TRANSIENT_CODES",
    "DeliveryFailed", "Draft", "DraftPage", "DraftState", "DraftingClient",
    "DraftingEventProducer", "FailedPrecondition", "FieldViolation", "ImpactLevel",
    "InvalidArgument", "NotFound", "PermissionDenied", "PolicySdkError", "RegulationType",
    "RetriesExhausted", "RetryPolicy", "ServiceError", "Unauthenticated", "tls_credentials",
]
