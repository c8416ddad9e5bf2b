"""One running publication service shared by the publication tests, against the session's
Kafka broker and PostgreSQL server; the restart test stops and starts it again. For
in-process tests, a pool on a schema of the test's own with the service's tables."""

from pathlib import Path

import grpc
import pytest

from policy.publication.v1 import publication_service_pb2_grpc as api_grpc
from policykit.kafka_io import create_producer
from services.publication.tests.helpers import Publication

MIGRATIONS = Path(__file__).parents[1] / "migrations"


@pytest.fixture(scope="package")
def publication(platform_topics, database_url, tmp_path_factory):
    service = Publication(platform_topics, database_url, tmp_path_factory.mktemp("publication"))
    yield service
    assert service.terminate() == 0


@pytest.fixture
def stub(publication) -> api_grpc.PublicationServiceStub:
    with grpc.insecure_channel(publication.grpc_target) as channel:
        yield api_grpc.PublicationServiceStub(channel)


@pytest.fixture(scope="package")
def producer(platform_topics):
    producer = create_producer(platform_topics)
    yield producer
    producer.close()


@pytest.fixture
async def pool(migrated_pool):
    return await migrated_pool(MIGRATIONS)
