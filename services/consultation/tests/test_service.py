"""The consultation service as a process: health, reflection, metrics, back-pressure that
turns callers away with a retry delay instead of falling over, a graceful stop, and start-up
refused on bad configuration."""

import asyncio
import subprocess
import sys
import threading
import urllib.request

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from policy.consultation.v1 import consultation_service_pb2_grpc as api_grpc
from services.consultation.tests.helpers import (
    PSEUDONYM_KEY, comment, consultation, events_of, has, open_consultation, start_consultation,
    submit, submit_all)
from tests.support import PYTHONPATH, REPO, eventually, health_status


def metric(service, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{service.metrics_port}/metrics",
                                timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def test_health_and_reflection(consultation_service):
    assert health_status(consultation_service.grpc_target,
                         "policy.consultation.v1.ConsultationService") == (
        health_pb2.HealthCheckResponse.SERVING)
    with grpc.insecure_channel(consultation_service.grpc_target) as channel:
        [reply] = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    assert "policy.consultation.v1.ConsultationService" in {
        s.name for s in reply.list_services_response.service}


def test_intake_is_counted_in_metrics(consultation_service, platform_topics, stub):
    regulation_id = open_consultation(platform_topics, stub)
    before = metric(consultation_service, "policy_consultation_comments_accepted_total")
    flagged = metric(consultation_service, "policy_consultation_comments_flagged_total")
    submit(stub, comment(regulation_id))
    submit(stub, comment(regulation_id, "Th? t??ng"))
    assert metric(consultation_service, "policy_consultation_comments_accepted_total") == before + 2
    assert metric(consultation_service, "policy_consultation_comments_flagged_total") == flagged + 1
    assert metric(consultation_service, "policy_consultation_intake_in_flight") == 0


@pytest.fixture
def narrow_service(platform_topics, database_url, tmp_path):
    """A second instance that holds at most eight comments in flight."""
    service = start_consultation(platform_topics, database_url, tmp_path,
                                 CONSULTATION_MAX_IN_FLIGHT="8")
    yield service
    assert service.terminate() == 0


def test_a_full_intake_answers_resource_exhausted_with_a_retry_delay(
        platform_topics, database_url, stub, narrow_service):
    regulation_id = open_consultation(platform_topics, stub)
    first = [comment(regulation_id) for _ in range(5)]
    second = [comment(regulation_id) for _ in range(5)]
    results = {}

    async def hold_the_window(locked: threading.Event, release: threading.Event) -> None:
        # Closing a window takes this lock too: writers wait for it, so comments pile up.
        conn = await asyncpg.connect(database_url)
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM consultation.consultations"
                               " WHERE regulation_id = $1 FOR UPDATE", regulation_id)
            locked.set()
            while not release.is_set():
                await asyncio.sleep(0.05)
        await conn.close()

    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=asyncio.run, args=(hold_the_window(locked, release),))
    holder.start()
    try:
        assert locked.wait(30)
        with grpc.insecure_channel(narrow_service.grpc_target) as channel:
            narrow = api_grpc.ConsultationServiceStub(channel)
            blocked = threading.Thread(target=lambda: results.setdefault(
                "first", submit_all(narrow, first)))
            blocked.start()
            eventually(lambda: metric(narrow_service,
                                      "policy_consultation_intake_in_flight") == 5,
                       what="five comments in flight")
            with pytest.raises(grpc.RpcError) as caught:  # 5 + 5 does not fit in 8
                submit_all(narrow, second)
            error = caught.value
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            [detail] = rpc_status.from_call(error).details
            retry = error_details_pb2.RetryInfo()
            assert detail.Unpack(retry) and retry.retry_delay.ToTimedelta().total_seconds() > 0
            assert "retry in" in error.details()
            release.set()
            blocked.join(60)
            assert results["first"].accepted == 5
            retried = submit_all(narrow, second)
            assert (retried.accepted, retried.resubmitted) == (5, 0)
    finally:
        release.set()
        holder.join(30)
    assert consultation(stub, regulation_id).comments_received == 10
    assert metric(narrow_service, "policy_consultation_intake_full_total") >= 1


def test_sigterm_stores_and_publishes_what_was_accepted_and_exits_zero(
        platform_topics, database_url, stub, tmp_path):
    regulation_id = open_consultation(platform_topics, stub)
    own = start_consultation(platform_topics, database_url, tmp_path)
    accepted, errors = [], []

    def portal():
        with grpc.insecure_channel(own.grpc_target) as channel:
            own_stub = api_grpc.ConsultationServiceStub(channel)
            for _ in range(100):
                try:
                    accepted.append(submit_all(own_stub, [comment(regulation_id)
                                                          for _ in range(10)]).accepted)
                except grpc.RpcError as error:
                    errors.append(error.code())
                    return

    client = threading.Thread(target=portal)
    client.start()
    while len(accepted) < 5 and client.is_alive():
        threading.Event().wait(0.01)
    assert own.terminate() == 0
    client.join()
    assert set(errors) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    stored = consultation(stub, regulation_id).comments_received
    assert stored >= sum(accepted)
    events_of(platform_topics, regulation_id, has("CommentReceived", stored))


@pytest.mark.parametrize("env, message", [
    ({"CONSULTATION_WINDOWS": "LAW=sixty days"}, "CONSULTATION_WINDOWS: LAW:"),
    ({"CONSULTATION_PSEUDONYM_KEY": ""}, "CONSULTATION_PSEUDONYM_KEY must be set"),
])
def test_bad_configuration_stops_start_up_naming_the_variable(
        platform_topics, database_url, env, message):
    environment = {"PATH": "/usr/bin:/bin", "PYTHONPATH": PYTHONPATH,
                   "KAFKA_BOOTSTRAP_SERVERS": platform_topics, "DATABASE_URL": database_url,
                   "AUTH_MODE": "none", "CONSULTATION_PSEUDONYM_KEY": PSEUDONYM_KEY, **env}
    finished = subprocess.run([sys.executable, "-m", "services.consultation"], cwd=REPO,
                              env=environment, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2, finished.stderr[-2000:]
    assert message in finished.stderr
