"""The task engine as a running process against real Kafka and PostgreSQL: lifecycle events in,
tasks stored, emitted and worked on."""

import signal
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

import grpc
import pytest

from policy.common.v1 import common_pb2
from policy.communication.v1 import events_pb2 as task_events
from policy.communication.v1 import task_pb2
from policy.communication.v1 import task_service_pb2 as api
from policy.communication.v1 import task_service_pb2_grpc as api_grpc
from policy.consultation.v1 import events_pb2 as consultation
from policy.drafting.v1 import events_pb2 as drafting
from policykit.envelope import from_record, new_event
from policykit.errors import field_violations
from policykit.kafka_io import create_producer, publish
from tests.support import PYTHONPATH, REPO, eventually, read_topic, start_service

DRAFTING_TOPIC = "policy.drafting.v1"
TASK_TOPIC = "policy.communication.v1"


@pytest.fixture(scope="module")
def engine_env(platform_topics, database_url):
    return {"KAFKA_BOOTSTRAP_SERVERS": platform_topics, "DATABASE_URL": database_url,
            "OUTBOX_POLL_INTERVAL_MS": "20", "OVERDUE_SWEEP_INTERVAL_S": "1"}


@pytest.fixture(scope="module")
def engine(engine_env, tmp_path_factory):
    service = start_service("services.communication", tmp_path_factory.mktemp("engine"), engine_env)
    yield service
    assert service.terminate() == 0


@pytest.fixture(scope="module")
def producer(platform_topics):
    producer = create_producer(platform_topics)
    yield producer
    producer.close()


@pytest.fixture
def stub(engine):
    with grpc.insecure_channel(engine.grpc_target) as channel:
        yield api_grpc.TaskServiceStub(channel)


def draft_registered(consultation_in: timedelta = timedelta(days=30),
                     provinces=("02", "04", "tp-ha-noi"), agency="btnmt"):
    payload = drafting.DraftRegistered(
        regulation_id=f"reg-{uuid.uuid4()}", regulation_type=common_pb2.REGULATION_TYPE_LAW,
        title="Luật Đất đai (sửa đổi): lấy ý kiến Nhân dân", lead_agency_id=agency,
        impact_level=common_pb2.IMPACT_LEVEL_HIGH, affected_groups=["nong-dan"],
        affected_province_codes=list(provinces))
    payload.planned_consultation_start.FromDatetime(datetime.now(timezone.utc) + consultation_in)
    return new_event(payload, "policy/test")


def tasks_of(stub, regulation_id: str, **filters) -> list:
    found, token = [], ""
    while True:
        reply = stub.ListTasks(api.ListTasksRequest(
            regulation_id=regulation_id, page=common_pb2.PageRequest(page_size=7, page_token=token),
            **filters), timeout=10)
        found += reply.tasks
        token = reply.page.next_page_token
        if not token:
            return found


EXPECTED_FOR_DRAFT = 13  # 6 national/affected + 3 provinces + 2×2 for Tuyên Quang and Cao Bằng


def test_large_impact_draft_for_border_provinces_creates_its_tasks(engine, stub, producer,
                                                                   platform_topics):
    event = draft_registered()
    publish(producer, DRAFTING_TOPIC, event).get(timeout=30)
    tasks = eventually(lambda: (t := tasks_of(stub, event.regulation_id))
                       and len(t) >= EXPECTED_FOR_DRAFT and t, what="the draft's tasks")
    assert len(tasks) == EXPECTED_FOR_DRAFT
    remote = {(t.kind, t.owner_org_id) for t in tasks
              if t.channel in (common_pb2.CHANNEL_COMMUNE_LOUDSPEAKER,
                               common_pb2.CHANNEL_GRASSROOTS_COLLABORATOR)}
    assert remote == {("loudspeaker-announcement", "tuyen-quang.commune-officers"),
                      ("loudspeaker-announcement", "cao-bang.commune-officers"),
                      ("collaborator-briefing", "tuyen-quang.grassroots-collaborators"),
                      ("collaborator-briefing", "cao-bang.grassroots-collaborators")}
    # The merged ministry's new tasks go to its successor.
    assert {t.owner_org_id for t in tasks if t.kind == "policy-brief"} == {"bnnmt.communication"}
    assert all(t.playbook_version == "2026.11-1" and t.trigger_event_id == event.id for t in tasks)

    def created(records):
        return [from_record(r.key, r.value, r.headers) for r in records
                if r.key == event.regulation_id.encode()]
    emitted = read_topic(platform_topics, [TASK_TOPIC],
                         lambda rs: len(created(rs)) >= EXPECTED_FOR_DRAFT)
    on_topic = {e.payload.task.task_id for e in created(emitted)
                if isinstance(e.payload, task_events.TaskCreated)}
    assert on_topic == {t.task_id for t in tasks}


def test_redelivered_event_creates_no_duplicate(engine, stub, producer):
    event = draft_registered()
    for _ in range(3):
        publish(producer, DRAFTING_TOPIC, event).get(timeout=30)
    marker = draft_registered()  # published after the copies, on the same partition key path
    publish(producer, DRAFTING_TOPIC, marker).get(timeout=30)
    eventually(lambda: len(tasks_of(stub, event.regulation_id)) >= EXPECTED_FOR_DRAFT
               and len(tasks_of(stub, marker.regulation_id)) >= EXPECTED_FOR_DRAFT,
               what="tasks of both drafts")
    assert len(tasks_of(stub, event.regulation_id)) == EXPECTED_FOR_DRAFT


def test_consultation_event_that_overtakes_the_registration_is_applied_after_it(
        engine, stub, producer):
    event = draft_registered()
    opened = new_event(consultation.ConsultationOpened(regulation_id=event.regulation_id,
                                                       consultation_id="c-1"), "policy/test")
    publish(producer, "policy.consultation.v1", opened).get(timeout=30)
    publish(producer, DRAFTING_TOPIC, event).get(timeout=30)
    expected = EXPECTED_FOR_DRAFT + 4 + 3 + 2  # national notices, loudspeakers, visits
    tasks = eventually(lambda: (t := tasks_of(stub, event.regulation_id)) and len(t) >= expected
                       and t, what="draft and consultation tasks")
    assert len([t for t in tasks if t.trigger_event_id == opened.id]) == 9


def test_invalid_input_names_the_field_and_illegal_transitions_are_refused(engine, stub, producer):
    event = draft_registered()
    publish(producer, DRAFTING_TOPIC, event).get(timeout=30)
    task = eventually(lambda: tasks_of(stub, event.regulation_id), what="a task")[0]
    with pytest.raises(grpc.RpcError) as caught:
        stub.CompleteTask(api.CompleteTaskRequest(
            idempotency_key="k1", task_id=task.task_id,
            evidence=task_pb2.Evidence(url="not a url", reach_count=-5)), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {f for f, _ in field_violations(caught.value)} == {"evidence.url", "evidence.reach_count"}
    with pytest.raises(grpc.RpcError) as caught:
        stub.AcceptTask(api.AcceptTaskRequest(idempotency_key="k2", task_id="nope",
                                              accepted_by="x"), timeout=10)
    assert {f for f, _ in field_violations(caught.value)} == {"task_id"}

    stub.CancelTask(api.CancelTaskRequest(idempotency_key=f"c-{task.task_id}",
                                          task_id=task.task_id, reason="Trùng nhiệm vụ"), timeout=10)
    with pytest.raises(grpc.RpcError) as caught:
        stub.AcceptTask(api.AcceptTaskRequest(idempotency_key=f"a-{task.task_id}",
                                              task_id=task.task_id, accepted_by="Chị Lan"),
                        timeout=10)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "TASK_STATUS_CANCELLED" in caught.value.details()


def test_complete_overdue_and_escalation_flow(engine, stub, producer, platform_topics):
    # Consultation opens in two days: the "goes first" tasks due a week before are late already.
    event = draft_registered(consultation_in=timedelta(days=2))
    publish(producer, DRAFTING_TOPIC, event).get(timeout=30)
    tasks = eventually(lambda: (t := tasks_of(stub, event.regulation_id))
                       and len(t) >= EXPECTED_FOR_DRAFT and t, what="tasks")
    brief = next(t for t in tasks if t.kind == "policy-brief")
    plan = next(t for t in tasks if t.kind == "affected-groups-plan")  # due in 5 days

    overdue = eventually(lambda: stub.GetTask(api.GetTaskRequest(task_id=brief.task_id)).task
                         .status == task_pb2.TASK_STATUS_OVERDUE, what="the brief overdue")
    assert overdue
    escalated = tasks_of(stub, event.regulation_id, owner_org_id="bnnmt")
    assert brief.task_id in {t.task_id for t in escalated}
    assert plan.task_id not in {t.task_id for t in escalated}

    # Late work still counts once done; the owner accepts, reports and completes with evidence.
    key = brief.task_id
    stub.AcceptTask(api.AcceptTaskRequest(idempotency_key=f"a-{key}", task_id=brief.task_id,
                                          accepted_by="Nguyễn Thị Hoa"), timeout=10)
    stub.ReportProgress(api.ReportProgressRequest(idempotency_key=f"p-{key}", task_id=brief.task_id,
                                                  percent_done=60, note="Đã có bản nháp"), timeout=10)
    request = api.CompleteTaskRequest(
        idempotency_key=f"c-{key}", task_id=brief.task_id,
        evidence=task_pb2.Evidence(url="https://baochinhphu.vn/tom-tat", reach_count=125000))
    done = stub.CompleteTask(request, timeout=10).task
    assert stub.CompleteTask(request, timeout=10).task == done  # a retry changes nothing
    assert done.status == task_pb2.TASK_STATUS_COMPLETED
    assert done.evidence.reach_count == 125000

    def flow(records):
        return [from_record(r.key, r.value, r.headers).payload for r in records
                if r.key == event.regulation_id.encode()
                and dict(r.headers)["ce_type"] != b"policy.communication.v1.TaskCreated"]
    payloads = flow(read_topic(platform_topics, [TASK_TOPIC], lambda rs: any(
        isinstance(p, task_events.TaskCompleted) for p in flow(rs))))
    about_brief = [type(p).__name__ for p in payloads if p.task_id == brief.task_id]
    assert about_brief == ["TaskOverdue", "TaskAccepted", "TaskProgressReported", "TaskCompleted"]
    overdue_event = next(p for p in payloads if isinstance(p, task_events.TaskOverdue)
                         and p.task_id == brief.task_id)
    assert overdue_event.escalated_to_org_id == "bnnmt"
    assert next(p for p in payloads if isinstance(p, task_events.TaskCompleted)).late


def test_withdrawn_draft_cancels_its_open_tasks(engine, stub, producer):
    event = draft_registered()
    publish(producer, DRAFTING_TOPIC, event).get(timeout=30)
    eventually(lambda: len(tasks_of(stub, event.regulation_id)) >= EXPECTED_FOR_DRAFT, what="tasks")
    publish(producer, DRAFTING_TOPIC, new_event(drafting.DraftWithdrawn(
        regulation_id=event.regulation_id, reason="Chưa đủ điều kiện"), "policy/test")).get(timeout=30)
    eventually(lambda: {t.status for t in tasks_of(stub, event.regulation_id)}
               == {task_pb2.TASK_STATUS_CANCELLED}, what="every task cancelled")


def test_restart_mid_stream_loses_no_event(engine_env, tmp_path, producer):
    """Runs its own engine: killed with SIGKILL while a stream of drafts is being handled."""
    # Enough that the engine, handling them in batches, is still at it when killed.
    events = [draft_registered(provinces=("tp-ha-noi",)) for _ in range(600)]
    service = start_service("services.communication", tmp_path, {**engine_env,
                                                                 "GRPC_PORT": "0"})
    try:
        with grpc.insecure_channel(service.grpc_target) as channel:
            stub = api_grpc.TaskServiceStub(channel)
            for event in events:
                publish(producer, DRAFTING_TOPIC, event)
            producer.flush()
            eventually(lambda: tasks_of(stub, events[5].regulation_id), what="first drafts handled")
            assert not tasks_of(stub, events[-1].regulation_id), "all handled before the kill"
        service.process.send_signal(signal.SIGKILL)
        service.process.wait()
    finally:
        if service.process.poll() is None:
            service.process.kill()
    restarted = start_service("services.communication", tmp_path, engine_env)
    try:
        with grpc.insecure_channel(restarted.grpc_target) as channel:
            stub = api_grpc.TaskServiceStub(channel)
            # Hà Nội only: 6 national/affected tasks + 1 province plan, no remote-area tasks.
            eventually(lambda: all(len(tasks_of(stub, e.regulation_id)) == 7 for e in events),
                       timeout=120, what="every draft's tasks after the restart")
            assert all(len(tasks_of(stub, e.regulation_id)) == 7 for e in events)
    finally:
        assert restarted.terminate() == 0


def test_invalid_playbook_stops_start_up_naming_the_rule(engine_env, tmp_path):
    playbook = tmp_path / "playbook.yaml"
    playbook.write_text((REPO / "services/communication/playbooks/default.yaml").read_text()
                        .replace("channel: SMS", "channel: FAX", 1), "utf-8")
    finished = subprocess.run(
        [sys.executable, "-m", "services.communication"], cwd=REPO, capture_output=True, text=True,
        timeout=120, env={**engine_env, "PATH": "/usr/bin:/bin", "PYTHONPATH": PYTHONPATH,
                          "AUTH_MODE": "none", "PLAYBOOK_PATH": str(playbook)})
    assert finished.returncode == 2
    assert ("rule 'consultation-opened' field 'tasks[3].channel': 'FAX' is not one of"
            in finished.stderr)
