"""One line of Vietnamese per event, for the timeline, and the Vietnamese names of the
platform's vocabulary that those lines and the printed timeline use.

Descriptions carry no personal data: who accepted a task is left out, and comments are
counted, not described one by one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from policy.common.v1 import common_pb2 as common
from policy.communication.v1 import events_pb2 as communication
from policy.communication.v1 import task_pb2
from policy.consultation.v1 import events_pb2 as consultation
from policy.drafting.v1 import events_pb2 as drafting
from policy.evaluation.v1 import events_pb2 as evaluation
from policy.publication.v1 import events_pb2 as publication
from policy.publication.v1 import publication_service_pb2 as api
from policykit.text import nfc

from services.publication.effective_dates import VIETNAM

REGULATION_TYPES = {
    common.REGULATION_TYPE_LAW: "Luật",
    common.REGULATION_TYPE_ORDINANCE: "Pháp lệnh",
    common.REGULATION_TYPE_NATIONAL_ASSEMBLY_RESOLUTION: "Nghị quyết của Quốc hội",
    common.REGULATION_TYPE_DECREE: "Nghị định",
    common.REGULATION_TYPE_PRIME_MINISTER_DECISION: "Quyết định của Thủ tướng Chính phủ",
    common.REGULATION_TYPE_CIRCULAR: "Thông tư",
    common.REGULATION_TYPE_PROVINCIAL_RESOLUTION: "Nghị quyết của Hội đồng nhân dân tỉnh",
    common.REGULATION_TYPE_PROVINCIAL_DECISION: "Quyết định của Ủy ban nhân dân tỉnh",
}
REGULATION_STATUSES = {
    api.REGULATION_STATUS_DRAFTING: "đang soạn thảo",
    api.REGULATION_STATUS_IN_CONSULTATION: "đang lấy ý kiến",
    api.REGULATION_STATUS_ADOPTED: "đã thông qua, chờ ban hành",
    api.REGULATION_STATUS_WITHDRAWN: "đã rút",
    api.REGULATION_STATUS_PUBLISHED: "đã ban hành, chưa có hiệu lực",
    api.REGULATION_STATUS_EFFECTIVE: "đang có hiệu lực",
    api.REGULATION_STATUS_REPEALED: "đã bị bãi bỏ",
}
TASK_STATUSES = {
    task_pb2.TASK_STATUS_CREATED: "mới tạo",
    task_pb2.TASK_STATUS_ASSIGNED: "đã giao",
    task_pb2.TASK_STATUS_ACCEPTED: "đã nhận",
    task_pb2.TASK_STATUS_IN_PROGRESS: "đang thực hiện",
    task_pb2.TASK_STATUS_COMPLETED: "hoàn thành",
    task_pb2.TASK_STATUS_OVERDUE: "quá hạn",
    task_pb2.TASK_STATUS_CANCELLED: "đã hủy",
}
CHANNELS = {
    common.CHANNEL_PRESS: "báo chí",
    common.CHANNEL_TELEVISION: "truyền hình",
    common.CHANNEL_RADIO: "phát thanh",
    common.CHANNEL_GOVERNMENT_PORTAL: "cổng thông tin",
    common.CHANNEL_SOCIAL_MEDIA: "mạng xã hội",
    common.CHANNEL_SMS: "tin nhắn SMS",
    common.CHANNEL_COMMUNE_LOUDSPEAKER: "loa truyền thanh xã",
    common.CHANNEL_GRASSROOTS_COLLABORATOR: "cộng tác viên cơ sở",
    common.CHANNEL_PRESS_BRIEFING: "họp báo",
    common.CHANNEL_PUBLICATION: "ấn phẩm",
}
STAGES = {
    "policy.drafting.v1": "Soạn thảo",
    "policy.consultation.v1": "Lấy ý kiến",
    "policy.publication.v1": "Ban hành",
    "policy.communication.v1": "Truyền thông",
    "policy.evaluation.v1": "Đánh giá",
}
_IMPACT_LEVELS = {common.IMPACT_LEVEL_LOW: "thấp", common.IMPACT_LEVEL_MEDIUM: "trung bình",
                  common.IMPACT_LEVEL_HIGH: "lớn"}
_FUNNEL_STAGES = {common.FUNNEL_STAGE_KNOW: "Dân biết", common.FUNNEL_STAGE_UNDERSTAND: "Dân hiểu",
                  common.FUNNEL_STAGE_TRUST: "Dân tin", common.FUNNEL_STAGE_FOLLOW: "Dân theo",
                  common.FUNNEL_STAGE_ACT: "Dân làm", common.FUNNEL_STAGE_BENEFIT: "Dân thụ hưởng"}
MAX_LINE = 200

# Comments are counted into the consultation's totals instead of listed: a consultation on
# a large law draws millions of them.
COUNTED_ONLY = frozenset({consultation.CommentReceived.DESCRIPTOR.full_name,
                          consultation.CommentAnswered.DESCRIPTOR.full_name})


@dataclass(frozen=True)
class Context:
    """What a description needs beyond the event: whether the timeline is that of the
    event's own regulation (an amendment or repeal shows on both), the label of the other
    regulation, and the task's (kind, owner) for task events."""

    subject: bool = True
    other: str = ""
    task: tuple[str, str] | None = None


def day(timestamp: Timestamp) -> str:
    """Formats the day in Vietnam, e.g. "01/03/2026"."""
    return timestamp.ToDatetime(tzinfo=VIETNAM).strftime("%d/%m/%Y")


def moment(timestamp: Timestamp) -> str:
    """Formats the time in Vietnam, e.g. "08:30 01/03/2026"."""
    return timestamp.ToDatetime(tzinfo=VIETNAM).strftime("%H:%M %d/%m/%Y")


def count(number: int) -> str:
    """Formats a count the Vietnamese way, e.g. "12.500"."""
    return f"{number:,}".replace(",", ".")


def _line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_LINE else text[:MAX_LINE - 1] + "…"


def _task(payload: Message, context: Context) -> str:
    return context.task[0] if context.task else f"#{payload.task_id}"


def _accepted_by(payload: communication.TaskAccepted, context: Context) -> str:
    """The task's owner; for a task not seen created (its TaskCreated dead-lettered), who
    accepted it: a TaskAccepted names no owner."""
    return context.task[1] if context.task else payload.accepted_by


def _articles(articles) -> str:
    return f" ({', '.join(articles)})" if articles else ""


def _published(p: publication.RegulationPublished, c: Context) -> str:
    return (f"Ban hành văn bản {p.document_number}, {p.signer} ký ngày {day(p.signed_at)};"
            f" đăng Công báo {p.gazette_number} ngày {day(p.gazette_published_at)};"
            f" có hiệu lực từ {day(p.effective_at)}")


def _amended(p: publication.RegulationAmended, c: Context) -> str:
    if c.subject:
        return f"Được sửa đổi, bổ sung bởi {c.other}{_articles(p.amended_articles)}"
    return f"Sửa đổi, bổ sung {c.other}{_articles(p.amended_articles)}"


def _reminder(p: publication.ReminderDue, c: Context) -> str:
    if p.reminder_kind == "before-effective":
        return f"Nhắc: văn bản có hiệu lực từ {day(p.effective_at)}"
    if p.reminder_kind == "post-implementation-review":
        return f"Đến hạn đánh giá sau thi hành ({day(p.due_at)})"
    return f"Nhắc: {p.reminder_kind} ({day(p.due_at)})"


def _completed(p: communication.TaskCompleted, c: Context) -> str:
    late = " – trễ hạn" if p.late else ""
    return (f"Hoàn thành nhiệm vụ {_task(p, c)}: {p.evidence.url},"
            f" tiếp cận {count(p.evidence.reach_count)}{late}")


_DESCRIPTIONS: dict[type[Message], Callable[[Message, Context], str]] = {
    drafting.DraftRegistered: lambda p, c:
        f"Đăng ký dự thảo {REGULATION_TYPES.get(p.regulation_type, 'văn bản')}: {p.title}",
    drafting.DraftRevised: lambda p, c:
        f"Chỉnh sửa dự thảo, phiên bản {p.version}: {p.change_summary}",
    drafting.ImpactAssessed: lambda p, c:
        f"Đánh giá tác động: mức {_IMPACT_LEVELS.get(p.impact_level, 'chưa xác định')}",
    drafting.DraftSubmittedForConsultation: lambda p, c:
        f"Đưa dự thảo phiên bản {p.version} ra lấy ý kiến",
    drafting.DraftAdopted: lambda p, c: f"Thông qua dự thảo phiên bản {p.version}",
    drafting.DraftWithdrawn: lambda p, c: f"Rút dự thảo: {p.reason}",
    consultation.ConsultationOpened: lambda p, c: f"Mở lấy ý kiến đến {day(p.closes_at)}",
    consultation.ConsultationExtended: lambda p, c:
        f"Gia hạn lấy ý kiến đến {day(p.closes_at)}: {p.reason}",
    consultation.ConsultationClosed: lambda p, c:
        f"Kết thúc lấy ý kiến: {count(p.total_comments)} ý kiến",
    consultation.ConsultationReportPublished: lambda p, c:
        f"Công bố báo cáo tiếp thu, giải trình ({count(p.comments_answered)}/"
        f"{count(p.comments_total)} ý kiến được trả lời): {p.report_url}",
    publication.RegulationPublished: _published,
    publication.RegulationEffective: lambda p, c:
        f"Có hiệu lực thi hành từ {day(p.effective_at)}",
    publication.RegulationAmended: _amended,
    publication.RegulationRepealed: lambda p, c:
        f"Bị bãi bỏ bởi {c.other}" if c.subject else f"Bãi bỏ {c.other}",
    publication.SpokespersonReleaseIssued: lambda p, c:
        f"Người phát ngôn công bố thông cáo: {p.headline}",
    publication.ReminderDue: _reminder,
    communication.TaskCreated: lambda p, c:
        f"Nhiệm vụ truyền thông được tạo: {p.task.kind} – {p.task.owner_org_id},"
        f" hạn {moment(p.task.due_at)}",
    communication.TaskAssigned: lambda p, c: f"Giao nhiệm vụ {_task(p, c)} cho {p.owner_org_id}",
    communication.TaskAccepted: lambda p, c:
        f"Nhận nhiệm vụ {_task(p, c)} ({_accepted_by(p, c)})",
    communication.TaskProgressReported: lambda p, c:
        f"Tiến độ nhiệm vụ {_task(p, c)}: {p.percent_done}%",
    communication.TaskCompleted: _completed,
    communication.TaskOverdue: lambda p, c:
        f"Quá hạn nhiệm vụ {_task(p, c)} của {p.owner_org_id},"
        f" chuyển {p.escalated_to_org_id} đôn đốc",
    communication.TaskCancelled: lambda p, c: f"Hủy nhiệm vụ {_task(p, c)}: {p.reason}",
    communication.DeliveryReported: lambda p, c:
        f"Báo cáo phát qua {CHANNELS.get(p.channel, 'kênh khác')} tại {p.region_id}:"
        f" tiếp cận {count(p.reach_count)}",
    evaluation.MisinformationSignalObserved: lambda p, c:
        f"Ghi nhận thông tin sai lệch: {p.claim}",
    evaluation.MisinformationAlertRaised: lambda p, c:
        f"Cảnh báo thông tin sai lệch: {p.claim}",
    evaluation.SurveyResultRecorded: lambda p, c:
        f"Khảo sát {_FUNNEL_STAGES.get(p.stage, 'mức độ tiếp nhận')}: {count(p.positive)}/"
        f"{count(p.respondents)} người trả lời tích cực",
    evaluation.PostImplementationReviewDue: lambda p, c:
        f"Đến hạn đánh giá sau thi hành ({day(p.due_at)})",
    evaluation.ScorecardUpdated: lambda p, c:
        f"Cập nhật bảng điểm {p.subject_id} kỳ {p.period}: {p.score:.1f} điểm, hạng {p.rank}",
}
DESCRIBED = frozenset(kind.DESCRIPTOR.full_name for kind in _DESCRIPTIONS)


def describe(payload: Message, context: Context = Context()) -> str:
    """Returns the event's one-line Vietnamese description, NFC; an event type added to the
    contracts later is named by its type until it gets its own line."""
    describer = _DESCRIPTIONS.get(type(payload))
    text = describer(payload, context) if describer else payload.DESCRIPTOR.name
    return nfc(_line(text))
