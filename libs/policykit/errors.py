"""gRPC errors that tell the caller exactly what is wrong: INVALID_ARGUMENT carries a
google.rpc.BadRequest naming each offending field."""

from __future__ import annotations

import logging

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

log = logging.getLogger(__name__)


class FieldViolations(Exception):
    """Collects invalid fields of one request; raise it once all are known."""

    def __init__(self) -> None:
        super().__init__("invalid request")
        self.violations: list[tuple[str, str]] = []

    def add(self, field: str, description: str) -> None:
        self.violations.append((field, description))

    def raise_if_any(self) -> None:
        if self.violations:
            raise self

    def status(self) -> grpc.Status:
        """Returns INVALID_ARGUMENT with a BadRequest detail listing every violation."""
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
            for f, d in self.violations]))
        message = "; ".join(f"{f}: {d}" for f, d in self.violations)
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


async def abort_for(error: Exception, context: grpc.aio.ServicerContext) -> None:
    """Turns a domain error into its gRPC status; any other error is logged and becomes
    INTERNAL without its details, which may hold data the caller must not see."""
    if isinstance(error, FieldViolations):
        await context.abort_with_status(error.status())
    if isinstance(error, NotFound):
        await context.abort(grpc.StatusCode.NOT_FOUND, str(error))
    if isinstance(error, FailedPrecondition):
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
    log.error("unhandled error in a gRPC call", exc_info=error)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the service log")
