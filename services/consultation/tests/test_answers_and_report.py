"""Answers, closing and the report, against the running service: what the agency answers,
the totals when the window closes, the report's content (over gRPC and HTTP), a new version
when answers come after the close, extension of a window, and a window that ends by time."""

import urllib.error
import urllib.request
from datetime import timedelta

import grpc
import pytest

from policy.common.v1 import common_pb2
from policy.consultation.v1 import consultation_service_pb2 as api
from policy.consultation.v1 import events_pb2 as events
from policy.drafting.v1 import events_pb2 as drafting
from policykit.errors import field_violations
from services.consultation.tests.helpers import (
    comment, consultation, end_draft, events_of, has, key, of_type, open_consultation, submit,
    submit_all)
from tests.support import eventually

LETTER = ("Chúng tôi không đồng ý tăng thời hạn giao đất nông nghiệp lên bảy mươi năm vì sẽ làm"
          " tăng tích tụ đất đai và ảnh hưởng đến sinh kế của nông dân nghèo.")


def answer(stub, regulation_id: str, **fields) -> api.AnswerCommentsResponse:
    return stub.AnswerComments(api.AnswerCommentsRequest(
        idempotency_key=key(), regulation_id=regulation_id, **fields), timeout=10)


def campaigns(stub, regulation_id: str) -> list[api.Campaign]:
    return list(stub.ListCampaigns(api.ListCampaignsRequest(regulation_id=regulation_id),
                                   timeout=10).campaigns)


def report(stub, regulation_id: str) -> api.GetConsultationReportResponse:
    return stub.GetConsultationReport(
        api.GetConsultationReportRequest(regulation_id=regulation_id), timeout=10)


@pytest.fixture(scope="module")
def consulted(platform_topics, stub):
    """A consultation with a campaign on Điều 7, independent comments on Điều 7 and Điều 21,
    one on the draft as a whole and one flagged; returns (regulation id, comment ids)."""
    regulation_id = open_consultation(platform_topics, stub)
    ids = {}
    ids["expert"] = submit(stub, comment(
        regulation_id, "Đề nghị định nghĩa rõ \"tích tụ đất đai\" tại Điều 7; liên hệ tôi qua"
        " số 0912 345 678 hoặc chuyengia@example.vn.", article_ref="Khoản 3 Điều 7",
        stakeholder_type=common_pb2.STAKEHOLDER_TYPE_EXPERT, province_code="tp-hue",
        contact=api.ContactDetails(name="Lê Minh Chuyên", email="chuyengia@example.vn"))
    ).comment_id
    ids["business"] = submit(stub, comment(
        regulation_id, "Doanh nghiệp cần được thuê đất trả tiền một lần cho dự án dài hạn.",
        article_ref="Điều 21", stakeholder_type=common_pb2.STAKEHOLDER_TYPE_BUSINESS,
        province_code="79")).comment_id
    ids["general"] = submit(stub, comment(regulation_id, "Dự thảo cần thêm thời gian lấy ý kiến.",
                                          article_ref="")).comment_id
    ids["flagged"] = submit(stub, comment(regulation_id, "Th? t??ng c?n xem l?i")).comment_id
    letters = [comment(regulation_id, LETTER, article_ref="Điều 7", province_code=code)
               for code in ("02", "04", "tuyen-quang", "cao-bang") * 5]
    letters[0].text = "Kính gửi Ban soạn thảo, " + LETTER
    assert submit_all(stub, letters).accepted == 20
    eventually(lambda: campaigns(stub, regulation_id), what="the campaign to be found")
    return regulation_id, ids


def test_the_campaign_is_listed_with_its_size_and_first_text(stub, consulted):
    regulation_id, _ = consulted
    [campaign] = campaigns(stub, regulation_id)
    assert (campaign.comments, campaign.sample_text) == (20, "Kính gửi Ban soạn thảo, " + LETTER)
    members = stub.ListComments(api.ListCommentsRequest(
        regulation_id=regulation_id, campaign_id=campaign.campaign_id,
        page=common_pb2.PageRequest(page_size=500)), timeout=10).comments
    assert len(members) == 20 and {m.campaign_id for m in members} == {campaign.campaign_id}


@pytest.mark.parametrize("fields, bad", [
    (dict(outcome=events.ANSWER_OUTCOME_ACCEPTED), {"comment_ids", "explanation"}),
    (dict(comment_ids=["not-an-id"], outcome=events.ANSWER_OUTCOME_ACCEPTED,
          explanation="Tiếp thu."), {"comment_ids[0]"}),
    (dict(comment_ids=["5b0c2f8e-1111-4a4a-9c9c-000000000000"], outcome=0,
          explanation="Tiếp thu."), {"outcome"}),
    (dict(comment_ids=["5b0c2f8e-1111-4a4a-9c9c-000000000000"],
          outcome=events.ANSWER_OUTCOME_ACCEPTED, explanation="Ti?p thu"), {"explanation"}),
], ids=["nothing answered, no explanation", "bad id", "no outcome", "corrupted explanation"])
def test_invalid_answers_name_the_fields(stub, consulted, fields, bad):
    with pytest.raises(grpc.RpcError) as caught:
        answer(stub, consulted[0], **fields)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {field for field, _ in field_violations(caught.value)} == bad


def test_only_comments_and_campaigns_of_the_consultation_can_be_answered(
        platform_topics, stub, consulted):
    regulation_id, ids = consulted
    other = open_consultation(platform_topics, stub)
    with pytest.raises(grpc.RpcError) as caught:
        answer(stub, other, comment_ids=[ids["expert"]], outcome=events.ANSWER_OUTCOME_ACCEPTED,
               explanation="Tiếp thu.")
    assert field_violations(caught.value) == [
        ("comment_ids[0]", "is not a comment of this consultation")]
    [campaign] = campaigns(stub, regulation_id)
    with pytest.raises(grpc.RpcError) as caught:
        answer(stub, other, campaign_id=campaign.campaign_id,
               outcome=events.ANSWER_OUTCOME_ACCEPTED, explanation="Tiếp thu.")
    assert field_violations(caught.value)[0][0] == "campaign_id"


def test_answers_closing_totals_and_the_report(platform_topics, consultation_service, stub,
                                              consulted):
    regulation_id, ids = consulted
    [campaign] = campaigns(stub, regulation_id)
    request = api.AnswerCommentsRequest(
        idempotency_key=key(), regulation_id=regulation_id, comment_ids=[ids["expert"]],
        outcome=events.ANSWER_OUTCOME_ACCEPTED,
        explanation="Tiếp thu: bổ sung định nghĩa tích tụ đất đai vào Điều 3.")
    first = stub.AnswerComments(request, timeout=10)
    assert stub.AnswerComments(request, timeout=10) == first  # a retry answers nothing twice
    assert first.comments_answered == 1
    by_campaign = answer(stub, regulation_id, campaign_id=campaign.campaign_id,
                         outcome=events.ANSWER_OUTCOME_NOT_ACCEPTED,
                         explanation="Giữ thời hạn 70 năm để người sử dụng đất yên tâm đầu tư.")
    assert by_campaign.comments_answered == 20
    assert consultation(stub, regulation_id).comments_answered == 21
    with pytest.raises(grpc.RpcError) as caught:
        report(stub, regulation_id)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    closed = end_draft(platform_topics, stub, regulation_id)
    assert closed.closing_reason == events.CLOSING_REASON_DRAFT_ADOPTED
    published = events_of(platform_topics, regulation_id, has("ConsultationReportPublished"))
    types = [e.type.rsplit(".", 1)[1] for e in published]
    assert types[0] == "ConsultationOpened" and types[-2:] == [
        "ConsultationClosed", "ConsultationReportPublished"]
    assert types.count("CommentReceived") == 24
    answered = of_type(published, "CommentAnswered")
    assert [(a.comments, a.campaign_id, a.outcome) for a in answered] == [
        (1, "", events.ANSWER_OUTCOME_ACCEPTED),
        (20, campaign.campaign_id, events.ANSWER_OUTCOME_NOT_ACCEPTED)]
    assert answered[0].answered_by_agency_id == "bnnmt"  # btnmt merged into it in 2025

    [totals] = of_type(published, "ConsultationClosed")
    assert (totals.total_comments, totals.flagged_comments, totals.campaigns,
            totals.campaign_comments, totals.independent_opinions) == (24, 1, 1, 20, 4)
    assert [(c.key, c.comments, c.independent_opinions) for c in totals.by_article] == [
        ("", 1, 1), ("Điều 7", 21, 2), ("Điều 21", 1, 1)]
    # A campaign counts once in each province it came from; 2008 codes count as 2025 units.
    assert {c.key: (c.comments, c.independent_opinions) for c in totals.by_province} == {
        "tuyen-quang": (11, 2), "cao-bang": (10, 1), "tp-hue": (1, 1), "tp-ho-chi-minh": (1, 1)}

    [notice] = of_type(published, "ConsultationReportPublished")
    assert (notice.version, notice.comments_answered, notice.comments_total) == (1, 21, 24)
    document = report(stub, regulation_id)
    assert document.summary == totals and document.report_url == notice.report_url
    html = document.html
    for expected in ("Báo cáo tổng hợp, tiếp thu, giải trình ý kiến góp ý",
                     "Luật Đất đai (sửa đổi): lấy ý kiến Nhân dân",
                     "Bộ Nông nghiệp và Môi trường", "dự thảo đã được thông qua",
                     "Ý kiến chung về dự thảo", "<h3>Điều 7</h3>", "<h3>Điều 21</h3>",
                     "Kính gửi Ban soạn thảo, " + LETTER, "<td>20</td>",
                     "Không tiếp thu, có giải trình",
                     "Giữ thời hạn 70 năm để người sử dụng đất yên tâm đầu tư.",
                     "Tiếp thu: bổ sung định nghĩa tích tụ đất đai vào Điều 3.",
                     "Chuyên gia, nhà khoa học", "Thành phố Huế", "Chưa trả lời",
                     "[số điện thoại đã ẩn]", "[thư điện tử đã ẩn]", "Đã trả lời: 21/24"):
        assert expected in html, expected
    assert html.index("Ý kiến chung") < html.index("<h3>Điều 7</h3>") < html.index(
        "<h3>Điều 21</h3>")
    for private in ("Lê Minh Chuyên", "chuyengia@example.vn", "0912 345 678", "Th? t??ng"):
        assert private not in html
    with urllib.request.urlopen(document.report_url, timeout=10) as served:
        assert served.headers["Content-Type"] == "text/html; charset=utf-8"
        assert served.read().decode("utf-8") == html

    # Answers after the close produce the next version of the report.
    answer(stub, regulation_id, comment_ids=[ids["business"], ids["general"]],
           outcome=events.ANSWER_OUTCOME_PARTLY_ACCEPTED,
           explanation="Tiếp thu một phần; xem Điều 21 đã sửa.")
    republished = events_of(platform_topics, regulation_id,
                            has("ConsultationReportPublished", 2))
    second = of_type(republished, "ConsultationReportPublished")[1]
    assert (second.version, second.comments_answered) == (2, 23)
    assert "Tiếp thu một phần; xem Điều 21 đã sửa." in report(stub, regulation_id).html
    with pytest.raises(grpc.RpcError) as caught:
        submit(stub, comment(regulation_id))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_a_withdrawn_draft_gets_its_totals_but_no_report_and_no_answers(platform_topics, stub):
    regulation_id = open_consultation(platform_topics, stub)
    comment_id = submit(stub, comment(regulation_id)).comment_id
    end_draft(platform_topics, stub, regulation_id, drafting.DraftWithdrawn(
        regulation_id=regulation_id, reason="Gộp vào Luật Đất đai"))
    [totals] = of_type(events_of(platform_topics, regulation_id, has("ConsultationClosed")),
                       "ConsultationClosed")
    assert (totals.reason, totals.total_comments) == (events.CLOSING_REASON_DRAFT_WITHDRAWN, 1)
    for call in (lambda: report(stub, regulation_id),
                 lambda: answer(stub, regulation_id, comment_ids=[comment_id],
                                outcome=events.ANSWER_OUTCOME_ACCEPTED, explanation="Tiếp thu.")):
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "withdrawn" in caught.value.details()


def test_an_open_window_is_extended_with_a_reason(platform_topics, stub):
    regulation_id = open_consultation(platform_topics, stub)
    window = consultation(stub, regulation_id)
    later = window.closes_at.ToDatetime() + timedelta(days=15)
    request = api.ExtendConsultationRequest(idempotency_key=key(), regulation_id=regulation_id,
                                            reason="Nhiều địa phương đề nghị thêm thời gian.")
    request.closes_at.FromDatetime(later)
    extended = stub.ExtendConsultation(request, timeout=10).consultation
    assert extended.closes_at.ToDatetime() == later
    assert stub.ExtendConsultation(request, timeout=10).consultation == extended
    [notice] = of_type(events_of(platform_topics, regulation_id, has("ConsultationExtended")),
                       "ConsultationExtended")
    assert (notice.closes_at.ToDatetime(), notice.reason) == (
        later, "Nhiều địa phương đề nghị thêm thời gian.")

    shorter = api.ExtendConsultationRequest(idempotency_key=key(), regulation_id=regulation_id,
                                            reason="Rút ngắn")
    shorter.closes_at.FromDatetime(later - timedelta(days=1))
    no_reason = api.ExtendConsultationRequest(idempotency_key=key(), regulation_id=regulation_id)
    no_reason.closes_at.FromDatetime(later + timedelta(days=1))
    for bad, field in ((shorter, "closes_at"), (no_reason, "reason")):
        with pytest.raises(grpc.RpcError) as caught:
            stub.ExtendConsultation(bad, timeout=10)
        assert [f for f, _ in field_violations(caught.value)] == [field]


def test_a_window_that_ends_closes_by_itself_and_refuses_later_comments(platform_topics, stub):
    # Circulars' windows last four seconds in these tests (helpers.WINDOWS).
    regulation_id = open_consultation(platform_topics, stub, common_pb2.REGULATION_TYPE_CIRCULAR)
    submit(stub, comment(regulation_id))
    closed = eventually(lambda: (c := consultation(stub, regulation_id)).state
                        == api.CONSULTATION_STATE_CLOSED and c, what="the window to end")
    assert closed.closed_at == closed.closes_at
    with pytest.raises(grpc.RpcError) as caught:
        submit(stub, comment(regulation_id))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    late = api.ExtendConsultationRequest(idempotency_key=key(), regulation_id=regulation_id,
                                         reason="Quá hạn")
    late.closes_at.FromDatetime(closed.closes_at.ToDatetime() + timedelta(days=1))
    with pytest.raises(grpc.RpcError) as caught:
        stub.ExtendConsultation(late, timeout=10)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    [totals] = of_type(events_of(platform_topics, regulation_id, has("ConsultationClosed")),
                       "ConsultationClosed")
    assert (totals.reason, totals.total_comments) == (events.CLOSING_REASON_WINDOW_ENDED, 1)
    assert report(stub, regulation_id).version == 1


def test_an_unknown_report_is_not_found_over_http(consultation_service, stub, consulted):
    url = report_url_of(stub, consulted[0]).rsplit("/", 1)[0] + "/no-such-regulation"
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url, timeout=10)
    assert caught.value.code == 404


def report_url_of(stub, regulation_id: str) -> str:
    return eventually(lambda: _report_url(stub, regulation_id), what="a report")


def _report_url(stub, regulation_id: str) -> str | None:
    try:
        return report(stub, regulation_id).report_url
    except grpc.RpcError:
        return None
