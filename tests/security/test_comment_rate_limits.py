"""Per-source rate limits on public comment intake (issue #9), against the real consultation
service with authenticated portals: a portal over its allowance is told to wait
(RESOURCE_EXHAUSTED with RetryInfo) while another portal is served, and no comment already
accepted is lost."""

from __future__ import annotations

import secrets

import grpc
import pytest
import yaml

from policy.consultation.v1 import consultation_service_pb2_grpc as api_grpc
from policy_sdk.channels import open_channel
from policykit.auth import token_digest
from policykit.errors import retry_delay
from services.consultation.tests.helpers import (comment, consultation, open_consultation,
                                                 start_consultation, submit, submit_all)
from tests.support import eventually

PORTALS = {"portal-a": secrets.token_urlsafe(24), "portal-b": secrets.token_urlsafe(24)}
BURST = 10


@pytest.fixture(scope="module")
def consultation_service(platform_topics, database_url, tmp_path_factory):
    directory = tmp_path_factory.mktemp("rate-limits")
    tokens = directory / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({"tokens": [
        {"sha256": token_digest(token), "org": org, "roles": ["portal"]}
        for org, token in PORTALS.items()]}), "utf-8")
    service = start_consultation(platform_topics, database_url, directory,
                                 AUTH_MODE="tokens", AUTH_TOKENS_FILE=str(tokens),
                                 CONSULTATION_SOURCE_RATE="1",
                                 CONSULTATION_SOURCE_BURST=str(BURST))
    yield service
    service.terminate()


def portal(service, org: str) -> api_grpc.ConsultationServiceStub:
    return api_grpc.ConsultationServiceStub(open_channel(service.grpc_target,
                                                         token=PORTALS[org]))


def test_a_portal_over_its_allowance_waits_and_others_are_served(consultation_service,
                                                                 platform_topics):
    a, b = portal(consultation_service, "portal-a"), portal(consultation_service, "portal-b")
    regulation_id = open_consultation(platform_topics, a)
    accepted = [submit(a, comment(regulation_id)) for _ in range(BURST)]

    with pytest.raises(grpc.RpcError) as refused:
        submit(a, comment(regulation_id))
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "portal-a" in refused.value.details() and retry_delay(refused.value) > 0
    with pytest.raises(grpc.RpcError) as refused_stream:
        submit_all(a, [comment(regulation_id) for _ in range(3)])
    assert refused_stream.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    accepted.append(submit(b, comment(regulation_id)))  # another source, its own allowance

    retried = comment(regulation_id)
    accepted.append(eventually(lambda: _accepted(a, retried), timeout=30,
                               what="portal-a's allowance to refill"))
    assert all(reply.comment_id for reply in accepted)
    eventually(lambda: consultation(a, regulation_id).comments_received == len(accepted),
               what="every accepted comment to be counted")


def _accepted(stub, comment_):
    try:
        return submit(stub, comment_)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        return None
