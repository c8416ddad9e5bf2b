"""A regulation's timeline as the evaluation service knows it: each lifecycle milestone and
task outcome it handled, in one line of Vietnamese. Per-comment, task-progress and listening
events are counted in the KPIs but left off the timeline, where thousands of them would hide
the milestones."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from google.protobuf.message import Message

from policy.common.v1 import common_pb2 as common
from policy.consultation.v1 import events_pb2 as consultation
from policy.drafting.v1 import events_pb2 as drafting
from policy.publication.v1 import events_pb2 as publication

from services.evaluation import labels
from services.evaluation.periods import day_of

IMPACT_LEVELS = {common.IMPACT_LEVEL_LOW: "thấp", common.IMPACT_LEVEL_MEDIUM: "trung bình",
                 common.IMPACT_LEVEL_HIGH: "cao"}


def stage_of(event_type: str) -> str:
    """The lifecycle stage of an event type (`policy.<stage>.v1.X`), for the timeline's
    colours."""
    return event_type.split(".")[1] if event_type.count(".") >= 3 else "other"


def _day(timestamp, fallback: datetime) -> str:
    return day_of(timestamp.ToDatetime(tzinfo=timezone.utc) if timestamp.ByteSize() else fallback)


_DESCRIPTIONS: dict[type[Message], Callable[[Message, datetime], str]] = {
    drafting.DraftRevised: lambda p, at: f"Sửa dự thảo, phiên bản {p.version}: "
                                         f"{p.change_summary or p.title}",
    drafting.ImpactAssessed: lambda p, at: "Đánh giá tác động: mức "
                                           f"{IMPACT_LEVELS.get(p.impact_level, 'chưa rõ')}",
    drafting.DraftSubmittedForConsultation: lambda p, at: "Trình lấy ý kiến dự thảo "
                                                          f"phiên bản {p.version}",
    drafting.DraftAdopted: lambda p, at: f"Thông qua dự thảo phiên bản {p.version}",
    drafting.DraftWithdrawn: lambda p, at: f"Rút dự thảo: {p.reason}",
    consultation.ConsultationOpened: lambda p, at: f"Mở lấy ý kiến ({p.consultation_id}) "
                                                   f"đến {_day(p.closes_at, at)}",
    consultation.ConsultationExtended: lambda p, at: f"Gia hạn lấy ý kiến đến "
                                                     f"{_day(p.closes_at, at)}: {p.reason}",
    consultation.ConsultationClosed: lambda p, at: "Kết thúc lấy ý kiến: "
                                                   f"{labels.number(p.total_comments)} ý kiến",
    consultation.ConsultationReportPublished: lambda p, at: (
        f"Công bố báo cáo tiếp thu, giải trình: {labels.number(p.comments_answered)}/"
        f"{labels.number(p.comments_total)} ý kiến được trả lời"),
    publication.RegulationPublished: lambda p, at: f"Ban hành văn bản {p.document_number}, "
                                                   f"hiệu lực từ {_day(p.effective_at, at)}",
    publication.RegulationEffective: lambda p, at: "Văn bản có hiệu lực",
    publication.RegulationAmended: lambda p, at: f"Được sửa đổi bởi {p.amended_by_regulation_id}",
    publication.RegulationRepealed: lambda p, at: "Bị bãi bỏ bởi "
                                                  f"{p.repealed_by_regulation_id}",
    publication.SpokespersonReleaseIssued: lambda p, at: "Thông cáo của người phát ngôn: "
                                                         f"{p.headline}",
    publication.ReminderDue: lambda p, at: f"Nhắc việc: {p.reminder_kind}",
}


def describe(payload: Message, at: datetime) -> str | None:
    """The timeline line of an event that needs no stored state to describe, None for the
    events the timeline leaves out or describes elsewhere."""
    describe_one = _DESCRIPTIONS.get(type(payload))
    return describe_one(payload, at) if describe_one else None
