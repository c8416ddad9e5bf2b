"""The drafting service as a running process against real Kafka and PostgreSQL."""

import subprocess
import sys
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from policy.drafting.v1 import drafting_service_pb2 as api
from policy.drafting.v1 import drafting_service_pb2_grpc as api_grpc
from policykit.envelope import from_record
from policykit.errors import field_violations
from services.drafting.tests.helpers import TITLE, register_request, start_drafting
from tests.support import PYTHONPATH, REPO, health_status, read_topic


@pytest.fixture
def own_drafting(platform_topics, database_url, tmp_path):
    """A drafting service of this test's own, for tests that stop it."""
    service = start_drafting(platform_topics, database_url, tmp_path)
    yield service
    service.terminate()


def test_health_reports_serving(drafting):
    assert health_status(drafting.grpc_target) == health_pb2.HealthCheckResponse.SERVING
    assert health_status(drafting.grpc_target, "policy.drafting.v1.DraftingService") == (
        health_pb2.HealthCheckResponse.SERVING)


def test_registered_draft_is_stored_and_published(drafting, platform_topics):
    with grpc.insecure_channel(drafting.grpc_target) as channel:
        stub = api_grpc.DraftingServiceStub(channel)
        draft = stub.RegisterDraft(register_request(), timeout=10).draft
        assert stub.GetDraft(api.GetDraftRequest(regulation_id=draft.regulation_id)).draft == draft

    def found(records):
        return any(r.key == draft.regulation_id.encode() for r in records)

    records = read_topic(platform_topics, ["policy.drafting.v1"], found)
    [record] = [r for r in records if r.key == draft.regulation_id.encode()]
    event = from_record(record.key, record.value, record.headers)
    assert event.type == "policy.drafting.v1.DraftRegistered"
    assert event.payload.title.encode() == TITLE.encode()
    assert list(event.payload.affected_province_codes) == ["02", "lai-chau"]


def test_retry_with_the_same_idempotency_key_creates_nothing_twice(drafting, platform_topics):
    request = register_request()
    with grpc.insecure_channel(drafting.grpc_target) as channel:
        stub = api_grpc.DraftingServiceStub(channel)
        first = stub.RegisterDraft(request, timeout=10)
        again = stub.RegisterDraft(request, timeout=10)
    assert first == again
    records = read_topic(platform_topics, ["policy.drafting.v1"],
                         lambda rs: any(r.key == first.draft.regulation_id.encode() for r in rs))
    assert sum(r.key == first.draft.regulation_id.encode() for r in records) == 1


@pytest.mark.parametrize("overrides, fields", [
    (dict(title=""), {"title"}),
    (dict(title="Lu?t ??t ?ai"), {"title"}),
    (dict(regulation_type=0, impact_level=99), {"regulation_type", "impact_level"}),
    (dict(lead_agency_id="Bộ Nội vụ"), {"lead_agency_id"}),
    (dict(lead_agency_id="bogus"), {"lead_agency_id"}),
    (dict(lead_agency_id="vtv"), {"lead_agency_id"}),  # a press agency leads no draft
    (dict(affected_province_codes=["02", "Hà Giang"]), {"affected_province_codes[1]"}),
    (dict(affected_province_codes=["02", "99", "ha-giang"]),
     {"affected_province_codes[1]", "affected_province_codes[2]"}),
    (dict(affected_groups=["nong-dan", "Nông dân"]), {"affected_groups[1]"}),
    (dict(idempotency_key=""), {"idempotency_key"}),
])
def test_invalid_input_names_the_fields(drafting, overrides, fields):
    with grpc.insecure_channel(drafting.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            api_grpc.DraftingServiceStub(channel).RegisterDraft(
                register_request(**overrides), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {field for field, _ in field_violations(caught.value)} == fields


def test_a_merged_agency_and_both_generations_of_province_codes_are_accepted(stub):
    # Drafted before the 2025 mergers: the draft keeps the ids it was registered with.
    request = register_request(lead_agency_id="btnmt",
                               affected_province_codes=["02", "tuyen-quang", "46"])
    draft = stub.RegisterDraft(request, timeout=10).draft
    assert draft.lead_agency_id == "btnmt"
    assert list(draft.affected_province_codes) == ["02", "tuyen-quang", "46"]


def test_unknown_draft_is_not_found(drafting):
    with grpc.insecure_channel(drafting.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            api_grpc.DraftingServiceStub(channel).GetDraft(
                api.GetDraftRequest(regulation_id="no-such-draft"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_sigterm_drains_in_flight_calls_and_exits_zero(own_drafting, platform_topics):
    results, errors = [], []

    def register_many():
        with grpc.insecure_channel(own_drafting.grpc_target) as channel:
            stub = api_grpc.DraftingServiceStub(channel)
            for _ in range(200):
                try:
                    results.append(stub.RegisterDraft(register_request(), timeout=10).draft)
                except grpc.RpcError as error:
                    errors.append(error.code())
                    return

    client = threading.Thread(target=register_many)
    client.start()
    while len(results) < 20 and client.is_alive():
        time.sleep(0.01)
    assert own_drafting.terminate() == 0
    client.join()
    # Calls after the stop are refused, never half-done: every accepted draft is on the topic.
    assert set(errors) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    ids = {d.regulation_id.encode() for d in results}
    read_topic(platform_topics, ["policy.drafting.v1"],
               lambda rs: ids <= {r.key for r in rs})
    assert '"message": "stopped"' in own_drafting.log.read_text()


def test_reflection_lists_the_services(drafting):
    with grpc.insecure_channel(drafting.grpc_target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        [reply] = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    names = {s.name for s in reply.list_services_response.service}
    assert {"policy.drafting.v1.DraftingService", "grpc.health.v1.Health"} <= names


def test_bad_configuration_stops_start_up_naming_the_variable(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": PYTHONPATH,
           "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x"}
    finished = subprocess.run([sys.executable, "-m", "services.drafting"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2
    assert "KAFKA_BOOTSTRAP_SERVERS must be set" in finished.stderr
