"""The Vietnamese one-liners of the timeline and the printed timeline."""

import unicodedata
from datetime import datetime
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from policy.communication.v1 import events_pb2 as communication
from policy.communication.v1 import task_pb2
from policy.consultation.v1 import events_pb2 as consultation
from policy.publication.v1 import events_pb2 as publication
from policy.publication.v1 import publication_service_pb2 as api
from policykit.envelope import EVENT_TYPES
from services.publication.descriptions import COUNTED_ONLY, DESCRIBED, Context, describe
from services.publication.effective_dates import VIETNAM
from services.publication.timeline import format_timeline


def at(*args) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime(*args, tzinfo=VIETNAM))
    return stamp


def test_every_event_type_of_the_platform_is_described_or_counted():
    assert set(EVENT_TYPES) - DESCRIBED - COUNTED_ONLY == set()


def test_descriptions_name_what_happened_in_one_nfc_line():
    opened = consultation.ConsultationOpened(regulation_id="r", closes_at=at(2026, 3, 15, 23, 59))
    assert describe(opened) == "Mở lấy ý kiến đến 15/03/2026"
    created = communication.TaskCreated(regulation_id="r", task=task_pb2.Task(
        kind="policy-brief", owner_org_id="bnnmt.communication", due_at=at(2026, 2, 1, 8)))
    assert describe(created) == ("Nhiệm vụ truyền thông được tạo: policy-brief – "
                                 "bnnmt.communication, hạn 08:00 01/02/2026")
    completed = communication.TaskCompleted(
        regulation_id="r", task_id="t1", late=True,
        evidence=task_pb2.Evidence(url="https://baochinhphu.vn/a", reach_count=12500))
    assert describe(completed, Context(task=("press-release", "bnnmt.communication"))) == (
        "Hoàn thành nhiệm vụ press-release: https://baochinhphu.vn/a, tiếp cận 12.500 – trễ hạn")
    long_headline = "Dòng một\nDòng hai " + "dài " * 100
    line = describe(publication.SpokespersonReleaseIssued(regulation_id="r",
                                                          headline=long_headline))
    assert "\n" not in line and len(line) == 200 and line.endswith("…")
    assert unicodedata.is_normalized("NFC", line)


def test_an_amendment_reads_from_either_side():
    amended = publication.RegulationAmended(regulation_id="a", amended_by_regulation_id="b",
                                            amended_articles=["Điều 5", "Khoản 2 Điều 12"])
    assert describe(amended, Context(subject=True, other="20/2026/NĐ-CP")) == (
        "Được sửa đổi, bổ sung bởi 20/2026/NĐ-CP (Điều 5, Khoản 2 Điều 12)")
    assert describe(amended, Context(subject=False, other="15/2026/NĐ-CP")) == (
        "Sửa đổi, bổ sung 15/2026/NĐ-CP (Điều 5, Khoản 2 Điều 12)")


def test_who_accepted_a_task_is_not_in_the_timeline():
    accepted = communication.TaskAccepted(regulation_id="r", task_id="t1",
                                          accepted_by="Nguyễn Văn An")
    line = describe(accepted, Context(task=("faq", "bnnmt.communication")))
    assert line == "Nhận nhiệm vụ faq (bnnmt.communication)"


def test_promulgation_and_published_event_share_their_fields():
    # changes.promulgate turns one into the other through the wire format.
    fields = lambda message: {(f.name, f.number, f.type) for f in message.DESCRIPTOR.fields}
    assert fields(api.Promulgation) == fields(publication.RegulationPublished)


def test_the_printed_timeline_reads_in_order_with_tasks_and_totals():
    response = api.GetTimelineResponse(
        regulation=api.RegulationSummary(
            regulation_id="r1", title="Nghị định về đất trồng lúa", lead_agency_id="bnnmt",
            regulation_type=4, status=api.REGULATION_STATUS_EFFECTIVE,
            promulgation=api.Promulgation(document_number="15/2026/NĐ-CP", signer="Thủ tướng",
                                          gazette_number="Số 1", signed_at=at(2026, 1, 10),
                                          gazette_published_at=at(2026, 1, 12),
                                          effective_at=at(2026, 2, 24),
                                          effective_date_rule="DECREE: P45D after signing")),
        entries=[api.TimelineEntry(occurred_at=at(2026, 1, 2, 9), source="policy.drafting.v1",
                                   description="Đăng ký dự thảo Nghị định: …"),
                 api.TimelineEntry(occurred_at=at(2026, 2, 24), source="policy.publication.v1",
                                   description="Có hiệu lực thi hành từ 24/02/2026")],
        consultations=[api.ConsultationSummary(consultation_id="c1", opens_at=at(2026, 1, 5),
                                               closes_at=at(2026, 1, 9), closed_at=at(2026, 1, 9),
                                               total_comments=1234)],
        tasks=[api.TaskSummary(task=task_pb2.Task(
            kind="faq", owner_org_id="bnnmt.communication", due_at=at(2026, 1, 20, 8),
            status=task_pb2.TASK_STATUS_COMPLETED, channel=4,
            evidence=task_pb2.Evidence(url="https://x.vn/faq", reach_count=3400)))])
    text = format_timeline(response)
    assert text.startswith("Nghị định về đất trồng lúa — 15/2026/NĐ-CP\n")
    assert "đang có hiệu lực" in text and "DECREE: P45D after signing" in text
    assert text.index("Soạn thảo") < text.index("Ban hành") < text.index("Lấy ý kiến\n")
    assert "c1: 05/01/2026 – 09/01/2026, đã kết thúc: 1.234 ý kiến" in text
    assert "hoàn thành" in text and "https://x.vn/faq · tiếp cận 3.400" in text


def test_the_service_source_is_nfc():
    for path in Path(__file__).parents[1].rglob("*"):
        if path.suffix in (".py", ".md", ".json", ".sql"):
            assert unicodedata.is_normalized("NFC", path.read_text("utf-8")), path
