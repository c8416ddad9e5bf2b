"""One running consultation service shared by the consultation tests, against the session's
Kafka broker and PostgreSQL server; and for in-process tests, a pool on a schema of the
test's own with the service's tables."""

from pathlib import Path

import grpc
import pytest

from policy.consultation.v1 import consultation_service_pb2_grpc as api_grpc
from services.consultation.tests.helpers import start_consultation

MIGRATIONS = Path(__file__).parents[1] / "migrations"


@pytest.fixture(scope="package")
def consultation_service(platform_topics, database_url, tmp_path_factory):
    service = start_consultation(platform_topics, database_url,
                                 tmp_path_factory.mktemp("consultation"))
    yield service
    service.terminate()


@pytest.fixture(scope="package")
def stub(consultation_service) -> api_grpc.ConsultationServiceStub:
    with grpc.insecure_channel(consultation_service.grpc_target) as channel:
        yield api_grpc.ConsultationServiceStub(channel)


@pytest.fixture
async def pool(migrated_pool):
    return await migrated_pool(MIGRATIONS)
