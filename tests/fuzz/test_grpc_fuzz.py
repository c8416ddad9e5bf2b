"""Every RPC of every running service, found in the generated service descriptors (a new RPC is
fuzzed without a change here), called with random requests of its type, valid requests with
a field or two varied, random bytes and cut or flipped valid bytes: each call gets an answer
that says what is wrong — never INTERNAL or UNKNOWN, never a hang — and every service is still
serving afterwards. INVALID_ARGUMENT always names the fields (google.rpc.BadRequest)."""

from __future__ import annotations


import pytest
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.fuzz import strategies
from tests.fuzz.profiles import examples
from tests.fuzz.rpcs import (MAX_MESSAGE_BYTES, RPCS, Rpc, assert_answered, call,
                             with_fresh_keys)
from tests.support import PLATFORM_SERVICES, health_status


def serialized(messages: list[Message]) -> list[bytes]:
    """The messages as bytes, each idempotency key of a seed made fresh."""
    payloads = [message.SerializeToString() for message in messages]
    # A message past gRPC's 4 MiB is refused before any service sees it.
    assume(all(len(payload) < MAX_MESSAGE_BYTES for payload in payloads))
    return [with_fresh_keys(payload) for payload in payloads]


def requests_of(rpc: Rpc, world) -> st.SearchStrategy[list[Message]]:
    """One request, or one to three messages of a client stream: random or a varied seed."""
    one = strategies.messages(rpc.request_type.DESCRIPTOR) | strategies.variations(
        world[rpc.request_type])
    return st.lists(one, min_size=1, max_size=3 if rpc.method.client_streaming else 1)


@pytest.mark.parametrize("rpc", RPCS, ids=str)
def test_every_rpc_answers_random_requests(channels, world, rpc):
    @examples(20)
    @given(requests=requests_of(rpc, world))
    def answers(requests):
        assert_answered(call(channels, rpc, serialized(requests)))
    answers()


@pytest.mark.parametrize("rpc", RPCS, ids=str)
def test_every_rpc_answers_random_bytes(channels, world, rpc):
    valid = world[rpc.request_type].SerializeToString()
    garbage = st.binary(max_size=200) | strategies.cut_or_flipped(valid)

    @examples(20)
    @given(payloads=st.lists(garbage, min_size=1, max_size=3 if rpc.method.client_streaming
                             else 1))
    def answers(payloads):
        assert_answered(call(channels, rpc, payloads))
    answers()


def test_every_service_still_serves(platform):
    for name, service in platform.items():
        assert service.process.poll() is None, f"{name} exited:\n{service.log.read_text()[-3000:]}"
        assert health_status(service.grpc_target) == health_pb2.HealthCheckResponse.SERVING


def test_every_service_has_its_rpcs_fuzzed():
    assert {rpc.service for rpc in RPCS} == set(PLATFORM_SERVICES)
