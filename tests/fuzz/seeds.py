"""One valid request of every RPC's request type: varied a field or two at a time
(strategies.variations), they reach the code behind the first checks, which random messages
seldom get past. And one valid event for each topic the services consume, which every
consumer of the topic must handle."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from policy.common.v1 import common_pb2 as common
from policy.communication.v1 import events_pb2 as task_events
from policy.communication.v1 import task_pb2
from policy.communication.v1 import task_service_pb2 as tasks
from policy.consultation.v1 import consultation_service_pb2 as consultation
from policy.consultation.v1 import events_pb2 as consultation_events
from policy.drafting.v1 import drafting_service_pb2 as drafting
from policy.drafting.v1 import events_pb2 as drafting_events
from policy.evaluation.v1 import evaluation_service_pb2 as evaluation
from policy.evaluation.v1 import events_pb2 as evaluation_events
from policy.publication.v1 import events_pb2 as publication_events
from policy.publication.v1 import publication_service_pb2 as publication

# Replaced by a fresh key on every call that does not vary it: a repeated key would only get
# the first call's answer back.
SEED_KEY = "seed-idempotency-key"
TITLE = "Luật Đất đai (sửa đổi): lấy ý kiến Nhân dân"


def _at(moment: datetime) -> Timestamp:
    timestamp = Timestamp()
    timestamp.FromDatetime(moment)
    return timestamp


def requests(regulation_id: str = "luat-dat-dai-2025",
             other_regulation_id: str = "luat-dat-dai-2013",
             task_id: str = "6f1c1b0e-8a51-4a8e-9a4f-3c9b1f2d7e10",
             comment_id: str = "01890a5d-ac96-774b-bcce-b302099a8057",
             now: datetime | None = None) -> dict[type[Message], Message]:
    """A valid request of each type, about the given regulations, task and comment."""
    now = now or datetime.now(timezone.utc)
    page = common.PageRequest(page_size=10)
    comment = consultation.Comment(
        idempotency_key=SEED_KEY, regulation_id=regulation_id,
        stakeholder_type=common.STAKEHOLDER_TYPE_CITIZEN, province_code="02",
        text="Đề nghị làm rõ khái niệm đất ở tại Điều 5.", article_ref="Điều 5",
        contact=consultation.ContactDetails(name="Trần Thị B", organisation="Hợp tác xã"))
    found = [
        drafting.RegisterDraftRequest(
            idempotency_key=SEED_KEY, regulation_type=common.REGULATION_TYPE_LAW, title=TITLE,
            summary="Sửa đổi quy định về bồi thường.", lead_agency_id="bnnmt",
            impact_level=common.IMPACT_LEVEL_HIGH, affected_groups=["nong-dan"],
            affected_province_codes=["02", "tp-ha-noi"],
            planned_consultation_start=_at(now + timedelta(days=7)),
            planned_adoption=_at(now + timedelta(days=90))),
        drafting.ReviseDraftRequest(idempotency_key=SEED_KEY, regulation_id=regulation_id,
                                    change_summary="Bổ sung Điều 5.", title=TITLE),
        drafting.RecordImpactAssessmentRequest(
            idempotency_key=SEED_KEY, regulation_id=regulation_id,
            impact_level=common.IMPACT_LEVEL_MEDIUM, assessment_summary="Tác động vừa.",
            affected_groups=["doanh-nghiep"], affected_province_codes=["tp-ha-noi"]),
        drafting.SubmitForConsultationRequest(idempotency_key=SEED_KEY,
                                              regulation_id=regulation_id),
        drafting.AdoptDraftRequest(idempotency_key=SEED_KEY, regulation_id=regulation_id),
        drafting.WithdrawDraftRequest(idempotency_key=SEED_KEY, regulation_id=regulation_id,
                                      reason="Chưa đủ cơ sở."),
        drafting.GetDraftRequest(regulation_id=regulation_id),
        drafting.ListDraftsRequest(page=page, lead_agency_id="bnnmt",
                                   state=drafting.DRAFT_STATE_DRAFTING),
        tasks.ListTasksRequest(page=page, owner_org_id="bnnmt.communication",
                               regulation_id=regulation_id,
                               status=task_pb2.TASK_STATUS_CREATED,
                               channel=common.CHANNEL_PRESS),
        tasks.GetTaskRequest(task_id=task_id),
        tasks.AcceptTaskRequest(idempotency_key=SEED_KEY, task_id=task_id,
                                accepted_by="Nguyễn Văn An"),
        tasks.ReportProgressRequest(idempotency_key=SEED_KEY, task_id=task_id, percent_done=50,
                                    note="Đã gửi bản tin."),
        tasks.CompleteTaskRequest(idempotency_key=SEED_KEY, task_id=task_id,
                                  evidence=task_pb2.Evidence(url="https://baochinhphu.vn/tin/1",
                                                             reach_count=1200,
                                                             note="Đã đăng.")),
        tasks.CancelTaskRequest(idempotency_key=SEED_KEY, task_id=task_id, reason="Trùng lặp."),
        consultation.GetConsultationRequest(regulation_id=regulation_id),
        consultation.ExtendConsultationRequest(
            idempotency_key=SEED_KEY, regulation_id=regulation_id,
            closes_at=_at(now + timedelta(days=60)), reason="Nhiều ý kiến."),
        consultation.SubmitCommentRequest(comment=comment),
        consultation.SubmitCommentsRequest(comments=[comment]),
        consultation.AnswerCommentsRequest(
            idempotency_key=SEED_KEY, regulation_id=regulation_id, comment_ids=[comment_id],
            outcome=consultation_events.ANSWER_OUTCOME_ACCEPTED, explanation="Tiếp thu."),
        consultation.ListCommentsRequest(regulation_id=regulation_id, page=page,
                                         article="Điều 5", unanswered_only=True),
        consultation.ListCampaignsRequest(regulation_id=regulation_id, page=page),
        consultation.GetConsultationReportRequest(regulation_id=regulation_id),
        publication.RecordPromulgationRequest(
            idempotency_key=SEED_KEY, regulation_id=regulation_id,
            document_number=f"31/{now.year}/QH15", signer="Trần Thanh Mẫn",
            signed_at=_at(now - timedelta(days=2)), gazette_number="Số 12",
            gazette_published_at=_at(now - timedelta(days=1))),
        publication.AmendRegulationRequest(
            idempotency_key=SEED_KEY, regulation_id=other_regulation_id,
            amended_by_regulation_id=regulation_id, amended_articles=["Điều 5"]),
        publication.RepealRegulationRequest(idempotency_key=SEED_KEY,
                                            regulation_id=other_regulation_id,
                                            repealed_by_regulation_id=regulation_id),
        publication.IssueSpokespersonReleaseRequest(
            idempotency_key=SEED_KEY, regulation_id=regulation_id, headline="Thông cáo báo chí",
            body="Luật có hiệu lực từ ngày 1/1."),
        publication.GetTimelineRequest(regulation_id=regulation_id, page=page),
        evaluation.GetScorecardRequest(kind=evaluation.SCORECARD_KIND_AGENCY,
                                       subject_id="bnnmt", period=f"{now.year}-Q1",
                                       lost_points_limit=10),
        evaluation.ListRankingsRequest(kind=evaluation.SCORECARD_KIND_PROVINCE,
                                       period=str(now.year)),
        evaluation.GetRegulationKpisRequest(regulation_id=regulation_id),
    ]
    return {type(request): request for request in found}


def events(regulation_id: str, task_id: str, now: datetime | None = None) -> dict[str, Message]:
    """A valid event for each consumed topic, about the regulation (registered by the first)."""
    now = now or datetime.now(timezone.utc)
    registered = drafting_events.DraftRegistered(
        regulation_id=regulation_id, regulation_type=common.REGULATION_TYPE_DECREE, title=TITLE,
        lead_agency_id="bnnmt", impact_level=common.IMPACT_LEVEL_LOW,
        affected_province_codes=["tp-ha-noi"], registered_at=_at(now), version=1)
    intake = drafting_events.DraftRegistered()
    intake.CopyFrom(registered)
    intake.regulation_id = f"{regulation_id}-intake"
    return {
        "policy.drafting.v1": registered,
        "policy.drafting-intake.v1": intake,
        "policy.consultation.v1": consultation_events.ConsultationOpened(
            regulation_id=regulation_id, consultation_id="0b6b3a4e-4f7c-4f43-9d0e-5a8a3c1f0e21",
            opens_at=_at(now), closes_at=_at(now + timedelta(days=30))),
        "policy.publication.v1": publication_events.RegulationEffective(
            regulation_id=regulation_id, effective_at=_at(now)),
        "policy.communication.v1": task_events.TaskAccepted(
            regulation_id=regulation_id, task_id=task_id, accepted_by="Nguyễn Văn An",
            accepted_at=_at(now)),
        "policy.evaluation.v1": evaluation_events.PostImplementationReviewDue(
            regulation_id=regulation_id, due_at=_at(now + timedelta(days=365))),
        "policy.delivery-reports.v1": task_events.DeliveryReported(
            regulation_id=regulation_id, task_id=task_id, channel=common.CHANNEL_SMS,
            region_id="tp-ha-noi", reach_count=120, reporter="sms-gateway",
            delivered_at=_at(now)),
        "policy.listening.v1": evaluation_events.MisinformationSignalObserved(
            regulation_id=regulation_id, claim="Tin đồn về thu hồi đất", source="mang-xa-hoi",
            region_id="tp-ha-noi", volume=3, observed_at=_at(now)),
    }
