"""The platform's RPCs, found in the generated service descriptors, and how the fuzz tests
call them: serialized bytes in, the status out."""

from __future__ import annotations

import importlib
import uuid
from dataclasses import dataclass

import grpc
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from policykit.errors import field_violations, retry_delay
from tests.fuzz.seeds import SEED_KEY
from tests.support import PLATFORM_SERVICES, REPO

# What a call may answer: a result, or a refusal the caller can act on (RESOURCE_EXHAUSTED
# only with the RetryInfo of a full intake: grpc says it too for trailers past their limit).
EXPECTED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS,
            grpc.StatusCode.RESOURCE_EXHAUSTED}
CALL_TIMEOUT_S = 20
MAX_MESSAGE_BYTES = 4 * 2**20  # gRPC's default
# Calls that end a draft's or a task's life go last, so that the others meet them alive.
LAST = ("AdoptDraft", "WithdrawDraft", "CompleteTask", "CancelTask")


@dataclass(frozen=True)
class Rpc:
    service: str   # the platform service answering it, e.g. "drafting"
    path: str      # "/policy.drafting.v1.DraftingService/RegisterDraft"
    method: MethodDescriptor

    @property
    def request_type(self) -> type[Message]:
        return self.method.input_type._concrete_class

    def __str__(self) -> str:
        return self.path.rpartition("/")[2]


def _rpcs() -> list[Rpc]:
    found = []
    for path in sorted((REPO / "gen" / "python" / "policy").glob("*/v1/*_service_pb2.py")):
        module = importlib.import_module(".".join(path.relative_to(REPO / "gen" / "python")
                                                  .with_suffix("").parts))
        for service in module.DESCRIPTOR.services_by_name.values():
            stage = service.full_name.split(".")[1]
            assert stage in PLATFORM_SERVICES, f"{service.full_name} has no running service"
            found += [Rpc(stage, f"/{service.full_name}/{method.name}", method)
                      for method in service.methods]
    return sorted(found, key=lambda rpc: str(rpc) in LAST)


RPCS = _rpcs()


def call(channels: dict[str, grpc.Channel], rpc: Rpc,
         payloads: list[bytes]) -> bytes | grpc.RpcError:
    """Calls the RPC on its service's channel with serialized requests (a client stream sends
    each as one message); returns the serialized response, or the error."""
    channel = channels[rpc.service]
    passthrough = dict(request_serializer=bytes, response_deserializer=bytes)
    try:
        if rpc.method.client_streaming:
            return channel.stream_unary(rpc.path, **passthrough)(iter(payloads),
                                                                timeout=CALL_TIMEOUT_S)
        return channel.unary_unary(rpc.path, **passthrough)(payloads[0], timeout=CALL_TIMEOUT_S)
    except grpc.RpcError as error:
        return error


def assert_answered(outcome: bytes | grpc.RpcError) -> None:
    """Fails unless the call was answered, or refused with a status the caller can act on;
    INVALID_ARGUMENT naming the fields."""
    if isinstance(outcome, bytes):
        return
    error = outcome
    assert error.code() in EXPECTED, f"{error.code()}: {error.details()}"
    if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
        assert field_violations(error), f"no field named: {error.details()}"
    if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
        assert _retry_info(error), error.details()


def _retry_info(error: grpc.RpcError) -> bool:
    try:
        return retry_delay(error) is not None
    except ValueError:  # a status of another code inside: grpc refused the trailers
        return False


def with_fresh_keys(payload: bytes) -> bytes:
    """The serialized request with its seed idempotency keys made fresh — of the same length,
    so that the length prefixes stay right: a repeated key only gets the first answer back."""
    return payload.replace(SEED_KEY.encode(), uuid.uuid4().hex[:len(SEED_KEY)].encode())


