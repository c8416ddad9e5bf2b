"""The timeline built from the topics: every stage's events in the order they happened,
whatever order they arrive in, once each; tasks with their latest status and evidence;
consultations with their totals; pages; and what cannot be read goes to the dead letters."""

import uuid
from datetime import datetime, timedelta, timezone

import grpc
import pytest

from policy.common.v1 import common_pb2
from policy.communication.v1 import events_pb2 as communication
from policy.communication.v1 import task_pb2
from policy.consultation.v1 import events_pb2 as consultation
from policy.drafting.v1 import events_pb2 as drafting
from policy.evaluation.v1 import events_pb2 as evaluation
from policy.publication.v1 import publication_service_pb2 as api
from policykit import kafka_io
from policykit.errors import field_violations
from policykit.kafka_io import publish
from services.publication.tests.helpers import (DRAFTING_TOPIC, entry_types, produce,
                                                regulation_id, wait_for_timeline)
from tests.support import read_topic

CONSULTATION_TOPIC = "policy.consultation.v1"
TASK_TOPIC = "policy.communication.v1"
EVALUATION_TOPIC = "policy.evaluation.v1"
START = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=20)


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def stamped(message, field: str, hours: float):
    getattr(message, field).FromDatetime(at(hours))
    return message


def count(key: str, comments: int) -> consultation.CommentCount:
    return consultation.CommentCount(key=key, comments=comments, independent_opinions=comments)


def test_every_stage_in_the_order_it_happened(stub, producer):
    reg = regulation_id()
    task = task_pb2.Task(task_id=str(uuid.uuid4()), regulation_id=reg,
                         kind="portal-notice", title="Thông báo lấy ý kiến",
                         owner_org_id="bnnmt.communication", status=task_pb2.TASK_STATUS_CREATED,
                         channel=common_pb2.CHANNEL_GOVERNMENT_PORTAL)
    late_task = task_pb2.Task(task_id=str(uuid.uuid4()),
                              regulation_id=reg, kind="loudspeaker-script",
                              owner_org_id="lai-chau.commune-officers",
                              status=task_pb2.TASK_STATUS_CREATED)
    stamped(task, "due_at", 30)
    stamped(late_task, "due_at", 40)
    # (topic, payload, hours after START): produced in this order, which is not the order in
    # which they happened.
    produced = [
        (EVALUATION_TOPIC, evaluation.MisinformationAlertRaised(
            regulation_id=reg, alert_id="a1", claim="Thu hồi đất không bồi thường"), 60),
        (TASK_TOPIC, communication.TaskCreated(regulation_id=reg, task=task), 25),
        (TASK_TOPIC, communication.TaskCreated(regulation_id=reg, task=late_task), 26),
        (TASK_TOPIC, communication.TaskAccepted(regulation_id=reg, task_id=task.task_id,
                                                accepted_by="Nguyễn Văn An"), 27),
        (TASK_TOPIC, communication.TaskCompleted(
            regulation_id=reg, task_id=task.task_id, evidence=task_pb2.Evidence(
                url="https://bnnmt.gov.vn/lay-y-kien", reach_count=12500)), 28),
        (TASK_TOPIC, communication.TaskOverdue(
            regulation_id=reg, task_id=late_task.task_id, owner_org_id=late_task.owner_org_id,
            escalated_to_org_id="lai-chau.information-department"), 41),
        (DRAFTING_TOPIC, drafting.DraftRegistered(
            regulation_id=reg, regulation_type=common_pb2.REGULATION_TYPE_LAW,
            title="Luật Đất đai (sửa đổi)", lead_agency_id="bnnmt", version=1), 0),
        (DRAFTING_TOPIC, drafting.DraftSubmittedForConsultation(regulation_id=reg, version=1), 20),
        (CONSULTATION_TOPIC, stamped(consultation.ConsultationOpened(
            regulation_id=reg, consultation_id="c1"), "closes_at", 48), 24),
        (CONSULTATION_TOPIC, consultation.CommentReceived(
            regulation_id=reg, consultation_id="c1", comment_id="m1"), 29),
        (CONSULTATION_TOPIC, consultation.CommentReceived(
            regulation_id=reg, consultation_id="c1", comment_id="m2"), 30),
        (CONSULTATION_TOPIC, consultation.CommentAnswered(
            regulation_id=reg, consultation_id="c1", comment_ids=["m1"]), 31),
        (CONSULTATION_TOPIC, consultation.ConsultationClosed(
            regulation_id=reg, consultation_id="c1", total_comments=3,
            by_stakeholder_type=[count("CITIZEN", 2), count("BUSINESS", 1)]), 50),
    ]
    events = [produce(producer, topic, payload, at(hours)) for topic, payload, hours in produced]
    # A redelivered comment and a redelivered drafting event change nothing.
    publish(producer, CONSULTATION_TOPIC, events[9]).get(timeout=30)
    publish(producer, DRAFTING_TOPIC, events[6]).get(timeout=30)
    recorded = len(produced) - 3  # comments and answers are counted, not listed

    timeline = wait_for_timeline(
        stub, reg, lambda t: len(t.entries) == recorded and t.consultations
        and t.consultations[0].total_comments == 3, "the whole timeline")
    assert entry_types(timeline) == [
        "DraftRegistered", "DraftSubmittedForConsultation", "ConsultationOpened", "TaskCreated",
        "TaskCreated", "TaskAccepted", "TaskCompleted", "TaskOverdue", "ConsultationClosed",
        "MisinformationAlertRaised"]
    by_type = {e.event_type.rsplit(".", 1)[1]: e for e in timeline.entries}
    assert by_type["TaskCompleted"].description == (
        "Hoàn thành nhiệm vụ portal-notice: https://bnnmt.gov.vn/lay-y-kien, tiếp cận 12.500")
    assert by_type["TaskOverdue"].source == TASK_TOPIC
    assert by_type["ConsultationClosed"].description == "Kết thúc lấy ý kiến: 3 ý kiến"
    assert by_type["DraftRegistered"].event_id == events[6].id
    assert timeline.regulation.status == api.REGULATION_STATUS_IN_CONSULTATION

    [summary] = timeline.consultations
    assert (summary.comments_received, summary.comments_answered) == (2, 1)
    assert [(c.key, c.comments) for c in summary.by_stakeholder_type] == [
        ("CITIZEN", 2), ("BUSINESS", 1)]
    assert summary.closes_at.ToDatetime(tzinfo=timezone.utc) == at(48)

    done, overdue = timeline.tasks
    assert (done.task.task_id, done.task.status) == (task.task_id, task_pb2.TASK_STATUS_COMPLETED)
    assert (done.task.evidence.url, done.task.evidence.reach_count, done.percent_done) == (
        "https://bnnmt.gov.vn/lay-y-kien", 12500, 100)
    assert done.status_changed_at.ToDatetime(tzinfo=timezone.utc) == at(28)
    assert (overdue.task.status, overdue.escalated_to_org_id) == (
        task_pb2.TASK_STATUS_OVERDUE, "lai-chau.information-department")

    pages, token = [], ""
    while True:
        page = stub.GetTimeline(api.GetTimelineRequest(
            regulation_id=reg, page=common_pb2.PageRequest(page_size=3, page_token=token)),
            timeout=10)
        pages.append(list(page.entries))
        token = page.page.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    assert sum(pages, []) == list(timeline.entries)
    with pytest.raises(grpc.RpcError) as bad_token:
        stub.GetTimeline(api.GetTimelineRequest(
            regulation_id=reg, page=common_pb2.PageRequest(page_token="not-a-token")), timeout=10)
    assert field_violations(bad_token.value) == [
        ("page.page_token", "is not a next_page_token of GetTimeline; pass it back unchanged")]


def test_a_record_that_cannot_be_read_goes_to_the_dead_letters(publication, producer,
                                                               platform_topics):
    reg = regulation_id()
    producer.send(EVALUATION_TOPIC, key=reg.encode(), value=b"\xff not protobuf",
                  headers=[("ce_specversion", b"1.0")]).get(timeout=30)
    records = read_topic(platform_topics, ["policy.dlq.publication"],
                         lambda rs: any(r.key == reg.encode() for r in rs))
    [dead] = [r for r in records if r.key == reg.encode()]
    headers = dict(dead.headers)
    assert headers[kafka_io.DLQ_CONSUMER_GROUP] == b"publication"
    assert headers[kafka_io.DLQ_REASON] == b"missing header ce_id"
