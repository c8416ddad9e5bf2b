"""One running evaluation service shared by the evaluation tests, against the session's Kafka
broker and PostgreSQL server, and a producer that plays the other services."""

import grpc
import pytest

from deploy.local.kafka_broker import free_port
from policy.evaluation.v1 import evaluation_service_pb2_grpc as api_grpc
from policykit.kafka_io import create_producer
from services.evaluation.tests.helpers import Evaluation, Producer
from tests.support import start_service


@pytest.fixture(scope="package")
def evaluation(platform_topics, database_url, tmp_path_factory) -> Evaluation:
    dashboard_port = free_port()
    service = start_service("services.evaluation", tmp_path_factory.mktemp("evaluation"), {
        "KAFKA_BOOTSTRAP_SERVERS": platform_topics, "DATABASE_URL": database_url,
        "OUTBOX_POLL_INTERVAL_MS": "20", "SCORECARD_PUBLISH_INTERVAL_S": "1",
        "EVALUATION_DASHBOARD_PORT": str(dashboard_port)})
    yield Evaluation(service, f"http://127.0.0.1:{dashboard_port}")
    assert service.terminate() == 0


@pytest.fixture(scope="package")
def stub(evaluation) -> api_grpc.EvaluationServiceStub:
    with grpc.insecure_channel(evaluation.service.grpc_target) as channel:
        yield api_grpc.EvaluationServiceStub(channel)


@pytest.fixture(scope="package")
def produce(platform_topics) -> Producer:
    producer = create_producer(platform_topics, client_id="evaluation-tests")
    yield Producer(producer)
    producer.close()
