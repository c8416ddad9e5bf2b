"""One running drafting service shared by the drafting tests, against the session's Kafka
broker and PostgreSQL server."""

import grpc
import pytest

from policy.drafting.v1 import drafting_service_pb2_grpc as api_grpc
from services.drafting.tests.helpers import start_drafting


@pytest.fixture(scope="package")
def drafting(platform_topics, database_url, tmp_path_factory):
    service = start_drafting(platform_topics, database_url, tmp_path_factory.mktemp("drafting"))
    yield service
    service.terminate()


@pytest.fixture(scope="package")
def stub(drafting) -> api_grpc.DraftingServiceStub:
    with grpc.insecure_channel(drafting.grpc_target) as channel:
        yield api_grpc.DraftingServiceStub(channel)
