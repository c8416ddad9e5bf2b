"""What a gRPC call's request must be before a servicer sees it: decodable, and well-formed
(policykit.wellformed). Otherwise the call is INVALID_ARGUMENT naming the fields — not the
UNKNOWN grpc answers when a request deserializer raises, nor the INTERNAL a NUL meeting
PostgreSQL would give. policykit.grpc_server applies it to every unary and client-streaming
method."""

from __future__ import annotations

from typing import AsyncIterator, Callable, NoReturn

from google.protobuf.message import DecodeError, Message

from policykit.errors import FieldViolations
from policykit.wellformed import problems


class Undecodable:
    """Stands in for request bytes that are not the method's message, so that the call can
    answer INVALID_ARGUMENT like for any other bad input."""

    def __init__(self, error: DecodeError):
        self.error = error


def tolerant(deserialize: Callable[[bytes], Message] | None):
    """Wraps a gRPC request deserializer so that bytes it cannot decode become Undecodable."""
    if deserialize is None:
        return None

    def parse(raw: bytes) -> Message | Undecodable:
        try:
            return deserialize(raw)
        except DecodeError as error:
            return Undecodable(error)
    return parse


def _refuse(found: list[tuple[str, str]]) -> NoReturn:
    violations = FieldViolations()
    for field, problem in found:
        violations.add(field, problem)
    raise violations


def _decoded(request) -> Message:
    if isinstance(request, Undecodable):
        _refuse([("request", f"is not a serialized request of this method: {request.error}")])
    return request


async def _decoded_stream(requests: AsyncIterator) -> AsyncIterator[Message]:
    async for request in requests:
        yield _decoded(request)


def checked(request):
    """Returns a gRPC call's request, or raises FieldViolations when it is undecodable or
    ill-formed. A stream's messages are checked as they are read, for decoding only: the
    servicer refuses bad items one by one (a bulk of comments refuses each on its own)."""
    if isinstance(request, (Message, Undecodable)):
        found = problems(_decoded(request))
        if found:
            _refuse(found)
        return request
    return _decoded_stream(request)
