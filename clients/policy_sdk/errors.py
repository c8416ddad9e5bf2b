"""What the SDK raises: every error is a PolicySdkError; a failed gRPC call is a ServiceError
(or one of its subclasses) with the status decoded, and the grpc.RpcError as its __cause__."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import grpc

from policy.drafting.v1 import drafting_service_pb2 as api
from policykit.errors import field_violations

# FAILED_PRECONDITION names the draft's current state first: "draft X is DRAFT_STATE_ADOPTED; …".
_STATE = re.compile(r"\bDRAFT_STATE_[A-Z_]+\b")


class PolicySdkError(Exception):
    """The base of every error the SDK raises."""


class ServiceError(PolicySdkError):
    """A gRPC call failed. `code` and `details` are the status the service (or the channel)
    gave, `method` the call (e.g. "RegisterDraft"), `idempotency_key` the key a mutating call
    was sent with (None for reads): repeating the call with that key applies it at most once."""

    def __init__(self, message: str, *, code: grpc.StatusCode, details: str, method: str,
                 idempotency_key: str | None = None):
        super().__init__(message)
        self.code = code
        self.details = details
        self.method = method
        self.idempotency_key = idempotency_key


class FieldViolation(NamedTuple):
    field: str        # e.g. "title", "affected_province_codes[1]"
    description: str  # e.g. "must not be empty"


class InvalidArgument(ServiceError):
    """INVALID_ARGUMENT: `violations` lists each bad field with what is wrong with it."""

    def __init__(self, message: str, *, violations: list[FieldViolation], **status: Any):
        super().__init__(message, **status)
        self.violations = violations

    @property
    def fields(self) -> list[str]:
        return [violation.field for violation in self.violations]


class NotFound(ServiceError):
    """NOT_FOUND: no draft with that regulation id."""


class Unauthenticated(ServiceError):
    """UNAUTHENTICATED: no token, or one the service does not know (revoked, mistyped)."""


class PermissionDenied(ServiceError):
    """PERMISSION_DENIED: the caller's organisation may not do this, e.g. change another
    agency's draft or register a draft for another lead agency."""


class FailedPrecondition(ServiceError):
    """FAILED_PRECONDITION: the draft's state does not allow the call. `state` is that state
    (a DraftState value, e.g. DRAFT_STATE_ADOPTED), None if the message does not name one."""

    def __init__(self, message: str, *, state: api.DraftState | None, **status: Any):
        super().__init__(message, **status)
        self.state = state


class RetriesExhausted(ServiceError):
    """Every attempt failed with a transient status (UNAVAILABLE, DEADLINE_EXCEEDED, …) until
    the retry policy's attempts or overall deadline ran out; `code` and `details` are the last
    attempt's. A mutating call may or may not have been applied: repeat it with the same
    `idempotency_key` to find out without applying it twice."""

    def __init__(self, message: str, *, attempts: int, **status: Any):
        super().__init__(message, **status)
        self.attempts = attempts


class DeliveryFailed(PolicySdkError):
    """Kafka did not take some emitted events; `failures` maps their ce_id to the error. Emitting
    an event again with the same event_id is safe: the drafting service applies it once."""

    def __init__(self, failures: dict[str, Exception]):
        listed = "; ".join(f"{event_id}: {error}" for event_id, error in failures.items())
        super().__init__(f"{len(failures)} event(s) not delivered: {listed}")
        self.failures = failures


def from_rpc_error(error: grpc.RpcError, method: str,
                   idempotency_key: str | None) -> ServiceError:
    """Decodes a failed call's status into the matching ServiceError."""
    code, details = error.code(), error.details() or ""
    status = dict(code=code, details=details, method=method, idempotency_key=idempotency_key)
    message = f"{method}: {code.name}: {details}"
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        violations = [FieldViolation(*pair) for pair in field_violations(error)]
        return InvalidArgument(message, violations=violations, **status)
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(message, **status)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return Unauthenticated(message, **status)
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDenied(message, **status)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        named = _STATE.search(details)
        name = named.group() if named else ""
        state = api.DraftState.Value(name) if name in api.DraftState.keys() else None
        return FailedPrecondition(message, state=state, **status)
    return ServiceError(message, **status)
