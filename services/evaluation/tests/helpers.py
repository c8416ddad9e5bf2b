"""Events as the other services and outside systems send them to the evaluation service, and
ways to wait for its answers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import grpc
from google.protobuf.message import Message
from kafka import KafkaProducer

from policy.common.v1 import common_pb2 as common
from policy.communication.v1 import events_pb2 as tasks
from policy.communication.v1 import task_pb2
from policy.drafting.v1 import events_pb2 as drafting
from policy.evaluation.v1 import evaluation_service_pb2 as api
from policy.evaluation.v1 import events_pb2 as evaluation
from policykit.envelope import Event, new_event
from policykit.kafka_io import publish
from tests.support import RunningService, eventually

SOURCE = "policy/test"
TITLE = "Luật Đất đai (sửa đổi): lấy ý kiến Nhân dân"
_LISTENING = (evaluation.SurveyResultRecorded, evaluation.MisinformationSignalObserved)


@dataclass
class Evaluation:
    service: RunningService
    dashboard_url: str


def topic_for(payload: Message) -> str:
    if isinstance(payload, tasks.DeliveryReported):
        return "policy.delivery-reports.v1"
    if isinstance(payload, _LISTENING):
        return "policy.listening.v1"
    return f"policy.{payload.DESCRIPTOR.full_name.split('.')[1]}.v1"


class Producer:
    """Produces events to the topics their producers use."""

    def __init__(self, producer: KafkaProducer):
        self.producer = producer

    def send(self, payload: Message, at: datetime | None = None, **envelope) -> Event:
        event = new_event(payload, SOURCE, time=at, **envelope)
        publish(self.producer, topic_for(payload), event).get(timeout=30)
        return event


def new_regulation_id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def stamp(message: Message, **times: datetime) -> Message:
    for field, value in times.items():
        getattr(message, field).FromDatetime(value)
    return message


def draft(regulation_id: str, *, lead: str = "btnmt", provinces=("02", "cao-bang"),
          planned_start: datetime | None = None) -> drafting.DraftRegistered:
    """A draft of low impact: the playbook's draft rules (high impact) create no tasks."""
    registered = drafting.DraftRegistered(
        regulation_id=regulation_id, regulation_type=common.REGULATION_TYPE_LAW, title=TITLE,
        lead_agency_id=lead, impact_level=common.IMPACT_LEVEL_LOW,
        affected_groups=["nong-dan"], affected_province_codes=list(provinces))
    if planned_start:
        registered.planned_consultation_start.FromDatetime(planned_start)
    return registered


def task_created(regulation_id: str, kind: str, owner: str, due: datetime, *,
                 channel: int = common.CHANNEL_GOVERNMENT_PORTAL, regions=("national",),
                 trigger: str = "") -> tasks.TaskCreated:
    """A task as the engine creates it."""
    task = task_pb2.Task(
        task_id=str(uuid.uuid4()), regulation_id=regulation_id,
        trigger_event_id=trigger or str(uuid.uuid4()), playbook_rule="test",
        playbook_version="test", kind=kind, channel=channel, owner_org_id=owner,
        audience="general-public", region_ids=list(regions), title=f"{kind}: {TITLE}",
        priority=task_pb2.TASK_PRIORITY_HIGH, status=task_pb2.TASK_STATUS_CREATED)
    task.due_at.FromDatetime(due)
    return tasks.TaskCreated(regulation_id=regulation_id, task=task)


def task_completed(created: tasks.TaskCreated, at: datetime, reach: int = 0) -> tasks.TaskCompleted:
    return stamp(tasks.TaskCompleted(
        regulation_id=created.regulation_id, task_id=created.task.task_id,
        evidence=task_pb2.Evidence(url="https://baochinhphu.vn/bai-viet", reach_count=reach),
        late=at > created.task.due_at.ToDatetime(tzinfo=at.tzinfo)), completed_at=at)


def task_overdue(created: tasks.TaskCreated) -> tasks.TaskOverdue:
    overdue = tasks.TaskOverdue(regulation_id=created.regulation_id, task_id=created.task.task_id,
                                owner_org_id=created.task.owner_org_id, escalated_to_org_id="vpcp")
    overdue.due_at.CopyFrom(created.task.due_at)
    return overdue


def delivery(regulation_id: str, region: str, channel: int, reach: int,
             at: datetime) -> tasks.DeliveryReported:
    return stamp(tasks.DeliveryReported(regulation_id=regulation_id, channel=channel,
                                        region_id=region, reach_count=reach,
                                        reporter="sms-gateway"), delivered_at=at)


def scorecard(stub, kind: int, subject_id: str, period: str, *, report_date: str = "",
              limit: int = 0) -> api.Scorecard:
    return stub.GetScorecard(api.GetScorecardRequest(
        kind=kind, subject_id=subject_id, period=period, report_date=report_date,
        lost_points_limit=limit), timeout=10).scorecard


def regulation_kpis(stub, regulation_id: str) -> api.GetRegulationKpisResponse | None:
    """The regulation's KPIs; None while the evaluation has not seen it registered."""
    try:
        return stub.GetRegulationKpis(
            api.GetRegulationKpisRequest(regulation_id=regulation_id), timeout=10)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return None


def kpi(card, name: str) -> float:
    return next(k.value for k in card.kpis if k.name == name)


def scorecard_when(stub, kind: int, subject_id: str, period: str, until, **options):
    """Waits until the scorecard satisfies `until`; returns it. A timeout shows the last one."""
    last = []

    def check():
        last[:] = [scorecard(stub, kind, subject_id, period, **options)]
        return until(last[0]) and last[0]

    try:
        return eventually(check, what=f"the scorecard of {subject_id} {period}")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{last[0]}") from None
