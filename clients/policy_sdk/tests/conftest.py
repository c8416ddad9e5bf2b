"""One running drafting service shared by the SDK's tests, against the session's Kafka broker
and PostgreSQL server, and a proxy in front of it per test."""

import pytest

from policy_sdk.tests.proxy import LossyProxy
from services.drafting.tests.helpers import start_drafting


@pytest.fixture(scope="package")
def drafting(platform_topics, database_url, tmp_path_factory):
    service = start_drafting(platform_topics, database_url, tmp_path_factory.mktemp("drafting"))
    yield service
    service.terminate()


@pytest.fixture
def proxy(drafting):
    """A proxy to the drafting service that records the calls going through it."""
    with LossyProxy(drafting.grpc_target) as started:
        yield started
