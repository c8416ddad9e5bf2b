"""Real clients against the five running services: grpcurl lists, describes and calls every
service through server reflection with JSON in and out, and kcat reads every declared topic,
showing each record's key and CloudEvents headers (docs/real-clients.md)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from policy.communication.v1 import task_service_pb2
from policy.consultation.v1 import consultation_service_pb2
from policy.drafting.v1 import drafting_service_pb2
from policy.evaluation.v1 import evaluation_service_pb2
from policy.publication.v1 import publication_service_pb2
from policykit import topics
from services.evaluation.periods import month_of
from tests.support import REPO, eventually, running_platform

# Each service's gRPC API as protos/ declares it: what reflection must show.
APIS = {
    "drafting": drafting_service_pb2.DESCRIPTOR.services_by_name["DraftingService"],
    "communication": task_service_pb2.DESCRIPTOR.services_by_name["TaskService"],
    "consultation": consultation_service_pb2.DESCRIPTOR.services_by_name["ConsultationService"],
    "publication": publication_service_pb2.DESCRIPTOR.services_by_name["PublicationService"],
    "evaluation": evaluation_service_pb2.DESCRIPTOR.services_by_name["EvaluationService"],
}
TITLE = "Nghị định về quản lý đất đai ở vùng biên giới"
LEAD_AGENCY = "bnnmt"
# grpcurl exits with 64 + the gRPC status code when a call fails.
GRPCURL_FAILED = 64
INVALID_ARGUMENT, NOT_FOUND = 3, 5
# One record a line: key, partition, offset, timestamp (ms) and headers (kcat: `n=v,n=v`).
KCAT_FORMAT = r"%k\t%p\t%o\t%T\t%h\n"
# Lifecycle topics the module's regulation puts records on, with one event type seen there.
LIFECYCLE_RECORDS = [
    ("policy.drafting.v1", "policy.drafting.v1.DraftRegistered", "policy/drafting"),
    ("policy.consultation.v1", "policy.consultation.v1.ConsultationOpened", "policy/consultation"),
    ("policy.communication.v1", "policy.communication.v1.TaskCreated", "policy/communication"),
]
DECLARED = topics.load().topics


def client_tool(name: str, install: str) -> str:
    """The tool's path (`make client-tools` builds into .cache/bin); CI installs both, so a
    missing one fails rather than skips."""
    search = os.pathsep.join([str(REPO / ".cache" / "bin"), os.environ.get("PATH", "")])
    found = shutil.which(name, path=search)
    if found is None:
        pytest.fail(f"{name} is not installed; install it with `{install}`")
    return found


def run(*command: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command, input=stdin.encode() if stdin is not None else None,
                          capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def grpcurl() -> str:
    return client_tool("grpcurl", "make client-tools")


@pytest.fixture(scope="module")
def kcat() -> str:
    return client_tool("kcat", "make system-packages")


@pytest.fixture(scope="module")
def platform(platform_topics, database_url, tmp_path_factory):
    with running_platform(platform_topics, database_url,
                          tmp_path_factory.mktemp("real-clients")) as services:
        yield services


def grpcurl_call(grpcurl: str, target: str, method: str, request: dict,
                 *flags: str) -> subprocess.CompletedProcess:
    """Calls a method with a JSON request on stdin (`-d @`), as a shell user would."""
    return run(grpcurl, "-plaintext", *flags, "-d", "@", target, method,
               stdin=json.dumps(request, ensure_ascii=False))


def answer(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def answer_once_known(result: subprocess.CompletedProcess) -> dict | None:
    """The JSON answer, or None while the service has not consumed the regulation yet."""
    if result.returncode == GRPCURL_FAILED + NOT_FOUND:
        return None
    return answer(result)


@pytest.fixture(scope="module")
def registered(grpcurl, platform) -> bytes:
    """What grpcurl printed for RegisterDraft: a high-impact decree for two border provinces."""
    now = datetime.now(timezone.utc)
    request = {
        "idempotency_key": f"real-clients-{uuid.uuid4()}",
        "regulation_type": "REGULATION_TYPE_DECREE",
        "title": TITLE,
        "summary": "Quy định việc giao đất, cho thuê đất và bảo vệ đất ở các xã biên giới.",
        "lead_agency_id": LEAD_AGENCY,
        "impact_level": "IMPACT_LEVEL_HIGH",
        "affected_groups": ["nong-dan", "dong-bao-dan-toc-thieu-so"],
        "affected_province_codes": ["02", "04"],
        "planned_consultation_start": (now + timedelta(days=21)).isoformat(),
        "planned_adoption": (now + timedelta(days=120)).isoformat(),
    }
    result = grpcurl_call(grpcurl, platform["drafting"].grpc_target,
                          "policy.drafting.v1.DraftingService/RegisterDraft", request)
    answer(result)
    return result.stdout


@pytest.fixture(scope="module")
def regulation_id(grpcurl, platform, registered) -> str:
    """The registered draft, submitted for consultation through grpcurl too."""
    regulation = json.loads(registered)["draft"]["regulation_id"]
    submitted = answer(grpcurl_call(
        grpcurl, platform["drafting"].grpc_target,
        "policy.drafting.v1.DraftingService/SubmitForConsultation",
        {"idempotency_key": f"submit-{regulation}", "regulation_id": regulation}))
    assert submitted["draft"]["state"] == "DRAFT_STATE_IN_CONSULTATION"
    return regulation


@pytest.mark.parametrize("name", APIS)
def test_grpcurl_lists_describes_and_health_checks_every_service(grpcurl, platform, name):
    target, api = platform[name].grpc_target, APIS[name]

    listed = run(grpcurl, "-plaintext", target, "list")
    assert listed.returncode == 0, listed.stderr.decode()
    services = listed.stdout.decode().split()
    assert api.full_name in services
    assert "grpc.health.v1.Health" in services
    assert any(s.startswith("grpc.reflection.") for s in services), services

    described = run(grpcurl, "-plaintext", target, "describe", api.full_name)
    assert described.returncode == 0, described.stderr.decode()
    text = described.stdout.decode()
    assert f"{api.full_name} is a service:" in text
    for method in api.methods:
        assert f"rpc {method.name} (" in text

    for service in ("", api.full_name):
        health = grpcurl_call(grpcurl, target, "grpc.health.v1.Health/Check", {"service": service})
        assert answer(health) == {"status": "SERVING"}


def test_grpcurl_registers_a_draft_with_its_vietnamese_title_intact(registered):
    # grpcurl prints UTF-8 as is, never \u escapes: the bytes are the title's own.
    assert TITLE.encode("utf-8") in registered
    draft = json.loads(registered)["draft"]
    assert draft["title"] == TITLE
    assert draft["lead_agency_id"] == LEAD_AGENCY
    assert draft["state"] == "DRAFT_STATE_DRAFTING"


def test_grpcurl_reads_the_draft_back_from_every_other_service(grpcurl, platform, regulation_id):
    def call(name: str, method: str, request: dict) -> dict | None:
        return answer_once_known(grpcurl_call(
            grpcurl, platform[name].grpc_target, f"{APIS[name].full_name}/{method}", request))

    by_regulation = {"regulation_id": regulation_id}
    tasks = eventually(lambda: (call("communication", "ListTasks", by_regulation) or {})
                       .get("tasks"), what="the engine's tasks for the draft")
    assert {task["regulation_id"] for task in tasks} == {regulation_id}
    assert any(TITLE in task["title"] for task in tasks)

    consultation = eventually(lambda: call("consultation", "GetConsultation", by_regulation),
                              what="the consultation to open")["consultation"]
    assert consultation["state"] == "CONSULTATION_STATE_OPEN"
    assert consultation["title"] == TITLE

    def timeline_with_submission():
        timeline = call("publication", "GetTimeline", by_regulation)
        types = {entry["event_type"] for entry in (timeline or {}).get("entries", [])}
        return timeline if "policy.drafting.v1.DraftSubmittedForConsultation" in types else None
    timeline = eventually(timeline_with_submission, what="the submission on the timeline")
    assert timeline["regulation"]["title"] == TITLE

    def kpis_with_tasks():
        kpis = call("evaluation", "GetRegulationKpis", by_regulation)
        counted = {kpi["name"]: kpi.get("value", 0) for kpi in (kpis or {}).get("kpis", [])}
        return kpis if counted.get("tasks") else None
    assert eventually(kpis_with_tasks, what="the tasks in the draft's KPIs")["title"] == TITLE

    # The tasks count towards their lead agency's scorecard of the month (in Vietnam) they
    # were created in.
    created = datetime.fromisoformat(tasks[0]["created_at"])
    month = f"{month_of(created):%Y-%m}"
    ranking = {"kind": "SCORECARD_KIND_AGENCY", "period": month}
    cards = eventually(lambda: [
        card for card in call("evaluation", "ListRankings", ranking).get("scorecards", [])
        if card["subject_id"] == LEAD_AGENCY], what="the lead agency's scorecard")
    assert cards[0]["period"] == month


def test_grpcurl_shows_an_invalid_request_as_invalid_argument_naming_each_field(grpcurl, platform):
    bad = {"idempotency_key": f"bad-{uuid.uuid4()}", "regulation_type": "REGULATION_TYPE_DECREE",
           "title": "", "lead_agency_id": "vtv", "impact_level": "IMPACT_LEVEL_HIGH"}
    target = platform["drafting"].grpc_target
    method = "policy.drafting.v1.DraftingService/RegisterDraft"

    shown = grpcurl_call(grpcurl, target, method, bad)
    assert shown.returncode == GRPCURL_FAILED + INVALID_ARGUMENT
    printed = shown.stderr.decode()
    assert "Code: InvalidArgument" in printed
    assert "type.googleapis.com/google.rpc.BadRequest" in printed
    assert '"field": "title"' in printed and '"field": "lead_agency_id"' in printed

    # -format-error prints the status as JSON instead (still on stderr), for scripts.
    status = json.loads(grpcurl_call(grpcurl, target, method, bad, "-format-error").stderr)
    assert status["code"] == INVALID_ARGUMENT
    [details] = status["details"]
    assert details["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert [v["field"] for v in details["field_violations"]] == ["title", "lead_agency_id"]


@dataclass(frozen=True)
class Record:
    key: str
    partition: int
    offset: int
    timestamp_ms: int
    headers: dict[str, str]


def parse_headers(text: str) -> dict[str, str]:
    # kcat joins headers as `n=v,n=v`; a comma only separates where a new `name=` follows.
    return dict(item.split("=", 1) for item in re.split(r",(?=[\w.-]+=)", text) if item)


def consume(kcat: str, bootstrap: str, topic: str) -> list[Record]:
    """Every record of the topic so far, read by kcat from the beginning to the end."""
    result = run(kcat, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
                 "-f", KCAT_FORMAT)
    assert result.returncode == 0, result.stderr.decode()
    records = []
    for line in result.stdout.decode().splitlines():
        key, partition, offset, timestamp, headers = line.split("\t", 4)
        records.append(Record(key, int(partition), int(offset), int(timestamp),
                              parse_headers(headers)))
    return records


@pytest.mark.parametrize("topic", sorted(DECLARED))
def test_kcat_reads_every_declared_topic(kcat, platform_topics, topic):
    for record in consume(kcat, platform_topics, topic):
        assert record.partition < DECLARED[topic].partitions and record.offset >= 0


@pytest.mark.parametrize(("topic", "ce_type", "source"), LIFECYCLE_RECORDS)
def test_kcat_shows_the_key_and_cloudevents_headers_of_lifecycle_records(
        kcat, platform_topics, regulation_id, topic, ce_type, source):
    def ours():
        return [r for r in consume(kcat, platform_topics, topic)
                if r.key == regulation_id and r.headers.get("ce_type") == ce_type]
    record = eventually(ours, what=f"{ce_type} on {topic}")[0]

    headers = record.headers
    assert headers["ce_specversion"] == "1.0"
    assert str(uuid.UUID(headers["ce_id"])) == headers["ce_id"]
    assert headers["ce_source"] == source
    assert headers["ce_subject"] == regulation_id
    assert datetime.fromisoformat(headers["ce_time"]).tzinfo is not None
    assert headers["content-type"] == "application/protobuf"
    assert record.timestamp_ms > 0


def test_kcat_shows_a_dead_letter_with_its_dlq_headers(kcat, platform, platform_topics):
    # A record without ce_id on the intake topic: the drafting service dead-letters it.
    key = f"kcat-{uuid.uuid4()}"
    produced = run(kcat, "-P", "-b", platform_topics, "-t", "policy.drafting-intake.v1", "-k", key,
                   "-H", "ce_specversion=1.0", "-H", "ce_type=policy.drafting.v1.DraftRegistered",
                   stdin="không phải protobuf\n")
    assert produced.returncode == 0, produced.stderr.decode()

    dead = eventually(lambda: [r for r in consume(kcat, platform_topics, "policy.dlq.drafting")
                               if r.key == key], what="the dead letter")[0]
    assert dead.headers["dlq_reason"] == "missing header ce_id"
    assert dead.headers["dlq_source_topic"] == "policy.drafting-intake.v1"
    assert dead.headers["dlq_consumer_group"] == "drafting"
    assert {"dlq_source_partition", "dlq_source_offset", "dlq_failed_at"} <= dead.headers.keys()
    # The original headers travel with it.
    assert dead.headers["ce_type"] == "policy.drafting.v1.DraftRegistered"


def test_kcat_metadata_lists_every_declared_topic(kcat, platform_topics):
    listed = run(kcat, "-L", "-J", "-b", platform_topics)
    assert listed.returncode == 0, listed.stderr.decode()
    partitions = {t["topic"]: len(t["partitions"]) for t in json.loads(listed.stdout)["topics"]}
    for name, spec in DECLARED.items():
        assert partitions.get(name) == spec.partitions, name
