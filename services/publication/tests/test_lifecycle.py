"""One regulation taken through its whole life by the running services — drafting,
consultation (its events produced here, as the consultation service would), publication and
taking effect, with the communication task engine turning each stage into tasks — and the
timeline that shows all of it in order."""

from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from policy.common.v1 import common_pb2
from policy.communication.v1 import task_pb2
from policy.communication.v1 import task_service_pb2 as tasks_api
from policy.communication.v1 import task_service_pb2_grpc as tasks_grpc
from policy.consultation.v1 import events_pb2 as consultation
from policy.drafting.v1 import drafting_service_pb2 as drafting_api
from policy.drafting.v1 import drafting_service_pb2_grpc as drafting_grpc
from policy.publication.v1 import publication_service_pb2 as api
from services.publication.tests.helpers import (entry_types, key, produce, promulgation_request,
                                                wait_for_status, wait_for_timeline)
from services.publication.timeline import format_timeline
from tests.support import start_service

CONSULTATION_TOPIC = "policy.consultation.v1"
TITLE = "Luật Đất đai (sửa đổi): lấy ý kiến Nhân dân"


@pytest.fixture(scope="module")
def services_env(platform_topics, database_url):
    return {"KAFKA_BOOTSTRAP_SERVERS": platform_topics, "DATABASE_URL": database_url,
            "OUTBOX_POLL_INTERVAL_MS": "20"}


@contextmanager
def serving(name: str, stub_type, env: dict[str, str], log_dir: Path):
    """Runs services.<name> and yields a stub of its API; stops it cleanly afterwards."""
    service = start_service(f"services.{name}", log_dir, env)
    with grpc.insecure_channel(service.grpc_target) as channel:
        yield stub_type(channel)
    assert service.terminate() == 0


@pytest.fixture(scope="module")
def drafting(services_env, tmp_path_factory):
    with serving("drafting", drafting_grpc.DraftingServiceStub, services_env,
                 tmp_path_factory.mktemp("drafting")) as stub:
        yield stub


@pytest.fixture(scope="module")
def tasks(services_env, tmp_path_factory):
    with serving("communication", tasks_grpc.TaskServiceStub, services_env,
                 tmp_path_factory.mktemp("communication")) as stub:
        yield stub


def drafted_and_consulted(drafting, producer) -> str:
    """Registers a large-impact law, consults on it and adopts it; returns its id."""
    now = datetime.now(timezone.utc)
    register = drafting_api.RegisterDraftRequest(
        idempotency_key=key(), regulation_type=common_pb2.REGULATION_TYPE_LAW, title=TITLE,
        summary="Sửa đổi quy định về bồi thường, hỗ trợ, tái định cư.", lead_agency_id="btnmt",
        impact_level=common_pb2.IMPACT_LEVEL_HIGH, affected_groups=["nong-dan"],
        affected_province_codes=["02", "tp-ha-noi"])
    register.planned_consultation_start.FromDatetime(now + timedelta(days=10))
    reg = drafting.RegisterDraft(register, timeout=10).draft.regulation_id
    drafting.SubmitForConsultation(drafting_api.SubmitForConsultationRequest(
        idempotency_key=key(), regulation_id=reg), timeout=10)
    window = f"{reg}-1"
    opened = consultation.ConsultationOpened(regulation_id=reg, consultation_id=window)
    opened.opens_at.FromDatetime(now)
    opened.closes_at.FromDatetime(now + timedelta(days=30))
    closed = Timestamp()
    closed.FromDatetime(now + timedelta(minutes=1))
    for payload in [
            opened,
            consultation.CommentReceived(
                regulation_id=reg, consultation_id=window, comment_id="m1",
                stakeholder_type=common_pb2.STAKEHOLDER_TYPE_CITIZEN, province_code="02"),
            consultation.CommentReceived(
                regulation_id=reg, consultation_id=window, comment_id="m2",
                stakeholder_type=common_pb2.STAKEHOLDER_TYPE_BUSINESS, province_code="01"),
            consultation.ConsultationClosed(
                regulation_id=reg, consultation_id=window, total_comments=2, closed_at=closed,
                by_stakeholder_type=[consultation.CommentCount(key="CITIZEN", comments=1),
                                     consultation.CommentCount(key="BUSINESS", comments=1)]),
            consultation.ConsultationReportPublished(
                regulation_id=reg, consultation_id=window, comments_answered=2,
                comments_total=2, report_url="https://bnnmt.gov.vn/bao-cao-tiep-thu")]:
        produce(producer, CONSULTATION_TOPIC, payload)
    drafting.AdoptDraft(drafting_api.AdoptDraftRequest(idempotency_key=key(), regulation_id=reg),
                        timeout=10)
    return reg


def test_a_regulation_from_draft_to_taking_effect(drafting, tasks, stub, producer):
    reg = drafted_and_consulted(drafting, producer)
    wait_for_status(stub, reg, api.REGULATION_STATUS_ADOPTED)
    stub.RecordPromulgation(promulgation_request(
        reg, effective_at=datetime.now(timezone.utc) + timedelta(seconds=2),
        effective_date_override_reason="Thử nghiệm: có hiệu lực sau hai giây"), timeout=10)
    stub.IssueSpokespersonRelease(api.IssueSpokespersonReleaseRequest(
        idempotency_key=key(), regulation_id=reg, headline="Luật Đất đai (sửa đổi) được ban hành",
        body="Người phát ngôn Bộ Nông nghiệp và Môi trường thông tin về các điểm mới."),
        timeout=10)

    # The engine's tasks for the promulgation come back to the timeline; one is completed.
    def task_of_kind(timeline, kind: str) -> task_pb2.Task | None:
        return next((t.task for t in timeline.tasks if t.task.kind == kind), None)

    timeline = wait_for_timeline(stub, reg, lambda t: task_of_kind(t, "spokesperson-release"),
                                 "the spokesperson-release task")
    release_task = task_of_kind(timeline, "spokesperson-release")
    tasks.CompleteTask(tasks_api.CompleteTaskRequest(
        idempotency_key=key(), task_id=release_task.task_id, evidence=task_pb2.Evidence(
            url="https://baochinhphu.vn/thong-cao", reach_count=250000)), timeout=10)

    timeline = wait_for_timeline(
        stub, reg, lambda t: task_of_kind(t, "reminder-portal")
        and task_of_kind(t, "spokesperson-release").status == task_pb2.TASK_STATUS_COMPLETED
        and "TaskCompleted" in entry_types(t), "taking effect and the completed task")
    assert timeline.regulation.status == api.REGULATION_STATUS_EFFECTIVE
    stages = [name for name in entry_types(timeline) if not name.startswith("Task")]
    assert stages == [
        "DraftRegistered", "DraftSubmittedForConsultation", "ConsultationOpened",
        "ConsultationClosed", "ConsultationReportPublished", "DraftAdopted",
        "RegulationPublished", "SpokespersonReleaseIssued", "RegulationEffective"]
    # Each stage created tasks, and every task's creation follows the event that caused it:
    # the n-th TaskCreated entry comes after the n-th earliest trigger.
    position = {e.event_id: i for i, e in enumerate(timeline.entries)}
    triggers = sorted(position[s.task.trigger_event_id] for s in timeline.tasks)
    assert {entry_types(timeline)[i] for i in triggers} == {
        "DraftRegistered", "ConsultationOpened", "ConsultationClosed",
        "ConsultationReportPublished", "RegulationPublished", "RegulationEffective"}
    created = [i for i, name in enumerate(entry_types(timeline)) if name == "TaskCreated"]
    assert len(created) == len(triggers)
    assert all(creation > trigger for creation, trigger in zip(created, triggers))
    completed = next(e for e in timeline.entries if e.event_type.endswith("TaskCompleted"))
    assert completed.description == ("Hoàn thành nhiệm vụ spokesperson-release: "
                                     "https://baochinhphu.vn/thong-cao, tiếp cận 250.000")
    [window] = timeline.consultations
    assert (window.total_comments, window.comments_received, window.comments_answered) == (2, 2, 2)

    printed = format_timeline(timeline)
    assert printed.startswith(f"{TITLE} — {timeline.regulation.promulgation.document_number}")
    assert "Có hiệu lực thi hành từ" in printed and "tiếp cận 250.000" in printed
