"""gRPC errors that tell the caller exactly what is wrong: INVALID_ARGUMENT carries a
google.rpc.BadRequest naming each offending field."""

from __future__ import annotations

import logging

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from policykit import db

log = logging.getLogger(__name__)

# A status travels in HTTP/2 trailers, which grpc clients refuse past 8 KiB (at random, all
# past 16 KiB) — the message twice: percent-encoded, up to nine bytes a Vietnamese letter,
# and in the BadRequest detail. An error quoting a long input must still fit, or the caller
# gets RESOURCE_EXHAUSTED instead of it.
MAX_DETAIL_CHARS = 200
MAX_LISTED_BYTES = 1_200


def shortened(text: str) -> str:
    """The text, cut to MAX_DETAIL_CHARS with an ellipsis."""
    return text if len(text) <= MAX_DETAIL_CHARS else text[:MAX_DETAIL_CHARS - 1] + "…"


class FieldViolations(Exception):
    """Collects invalid fields of one request; raise it once all are known."""

    def __init__(self) -> None:
        super().__init__("invalid request")
        self.violations: list[tuple[str, str]] = []

    def add(self, field: str, description: str) -> None:
        self.violations.append((field, shortened(description)))

    def raise_if_any(self) -> None:
        if self.violations:
            raise self

    def status(self) -> grpc.Status:
        """Returns INVALID_ARGUMENT with a BadRequest detail listing every violation, or as
        many as the trailers hold, the number of the others said last."""
        listed, size = [], 0
        for field, description in self.violations:
            size += len(field.encode()) + len(description.encode())
            if listed and size > MAX_LISTED_BYTES:
                break
            listed.append((field, description))
        if len(listed) < len(self.violations):
            listed.append(("", f"and {len(self.violations) - len(listed)} more not listed"))
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
            for f, d in listed]))
        message = "; ".join(f"{f}: {d}" if f else d for f, d in listed)
        return rpc_status.to_status(status_pb2.Status(
            code=code_pb2.INVALID_ARGUMENT, message=message, details=[detail]))


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """Reads the (field, description) pairs from an INVALID_ARGUMENT error, client side."""
    status = rpc_status.from_call(error)
    found = []
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found += [(v.field, v.description) for v in bad_request.field_violations]
    return found


def retry_delay(error: grpc.RpcError) -> float | None:
    """The wait a RESOURCE_EXHAUSTED error asks for (its google.rpc.RetryInfo), client side;
    None when it names none."""
    status = rpc_status.from_call(error)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToTimedelta().total_seconds()
    return None


class NotFound(Exception):
    """The named thing does not exist: NOT_FOUND."""


class FailedPrecondition(Exception):
    """The request is valid but not allowed in the current state: FAILED_PRECONDITION."""


class Unauthenticated(Exception):
    """No valid credentials came with the call: UNAUTHENTICATED."""


class PermissionDenied(Exception):
    """The caller is known but may not do this: PERMISSION_DENIED."""


async def abort_for(error: Exception, context: grpc.aio.ServicerContext) -> None:
    """Turns a domain error into its gRPC status; any other error is logged and becomes
    INTERNAL without its details, which may hold data the caller must not see."""
    if isinstance(error, Unauthenticated):
        log.info("unauthenticated call refused: %s", error)
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(error))
    if isinstance(error, PermissionDenied):
        log.warning("permission denied: %s", error)
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(error))
    if isinstance(error, FieldViolations):
        await context.abort_with_status(error.status())
    if isinstance(error, NotFound):
        await context.abort(grpc.StatusCode.NOT_FOUND, shortened(str(error)))
    if isinstance(error, FailedPrecondition):
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, shortened(str(error)))
    if db.unavailable(error):
        # A database restart or failover, not a fault of the request: committed or not, the
        # change is applied at most once when retried with its idempotency key.
        log.warning("database unavailable in a gRPC call: %s", error)
        await context.abort(grpc.StatusCode.UNAVAILABLE,
                            "the database is unavailable; retry with the same idempotency key")
    log.error("unhandled error in a gRPC call", exc_info=error)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the service log")
