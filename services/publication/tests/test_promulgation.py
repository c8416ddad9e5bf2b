"""Recording a promulgation over gRPC: validation, the regulation's state, the effective date
per type or by override, the published event, its timers, and spokesperson releases."""

import unicodedata
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from policy.common.v1 import common_pb2
from policy.drafting.v1 import events_pb2 as drafting
from policy.publication.v1 import publication_service_pb2 as api
from policykit.errors import field_violations
from services.publication.effective_dates import VIETNAM, parse_period, shift
from services.publication.tests.helpers import (DRAFTING_TOPIC, adopted, events_about, key,
                                                produce, promulgation_request, regulation_id,
                                                scheduled_timers, wait_for_status)
from policyctl.timeline import fetch_timeline


SIGNER = "Phó Thủ tướng Trần Hồng Hà"


def moment(timestamp: Timestamp) -> datetime:
    return timestamp.ToDatetime(tzinfo=timezone.utc)


def start_of_day_in_vietnam(moment: datetime, plus_days: int) -> datetime:
    day = moment.astimezone(VIETNAM).date() + timedelta(days=plus_days)
    return datetime(day.year, day.month, day.day, tzinfo=VIETNAM)


def violations_of(call) -> dict[str, str]:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return dict(field_violations(raised.value))


def test_a_decree_takes_effect_45_days_after_signing_and_is_published(
        stub, producer, platform_topics, database_url):
    regulation = adopted(stub, producer)
    # The signer sent decomposed (NFD), as some document systems do: kept and emitted as NFC.
    request = promulgation_request(regulation, signer=unicodedata.normalize("NFD", SIGNER))
    signed_at = moment(request.signed_at)
    promulgation = stub.RecordPromulgation(request, timeout=10).promulgation

    assert moment(promulgation.effective_at) == start_of_day_in_vietnam(signed_at, 45)
    assert promulgation.effective_date_rule == "DECREE: P45D after signing"
    assert promulgation.effective_date_override_reason == ""
    assert stub.RecordPromulgation(request, timeout=10).promulgation == promulgation

    [event] = events_about(platform_topics, regulation, until=1)
    assert event.type == "policy.publication.v1.RegulationPublished"
    assert event.source == "policy/publication"
    assert event.payload.document_number == promulgation.document_number
    assert event.payload.effective_at == promulgation.effective_at
    assert event.payload.signer == SIGNER
    effective_at = moment(promulgation.effective_at)
    assert scheduled_timers(database_url, regulation) == [
        ("before-effective", effective_at - timedelta(days=7)),
        ("effective", effective_at),
        ("post-implementation-review", shift(effective_at, parse_period("P12M")))]

    timeline = fetch_timeline(stub, regulation)
    assert timeline.regulation.status == api.REGULATION_STATUS_PUBLISHED
    assert timeline.regulation.promulgation == promulgation
    last = timeline.entries[-1]
    assert (last.event_id, last.source) == (event.id, "policy.publication.v1")
    assert last.description.startswith(f"Ban hành văn bản {promulgation.document_number}, "
                                       f"{SIGNER} ký ngày")


def test_a_provincial_decision_takes_effect_10_days_after(stub, producer):
    regulation = adopted(stub, producer,
                         regulation_type=common_pb2.REGULATION_TYPE_PROVINCIAL_DECISION,
                         title="Quyết định về giá đất của tỉnh Lai Châu")
    request = promulgation_request(regulation)
    promulgation = stub.RecordPromulgation(request, timeout=10).promulgation
    assert moment(promulgation.effective_at) == start_of_day_in_vietnam(
        moment(request.signed_at), 10)
    assert promulgation.effective_date_rule == "PROVINCIAL_DECISION: P10D after signing"


def test_an_override_needs_its_reason(stub, producer):
    regulation = adopted(stub, producer)
    effective_at = datetime.now(timezone.utc) + timedelta(days=3)
    problems = violations_of(lambda: stub.RecordPromulgation(
        promulgation_request(regulation, effective_at=effective_at), timeout=10))
    assert problems == {"effective_date_override_reason": "must not be empty"}

    promulgation = stub.RecordPromulgation(promulgation_request(
        regulation, effective_at=effective_at,
        effective_date_override_reason="Thủ tục rút gọn: xử lý sạt lở đất khẩn cấp"),
        timeout=10).promulgation
    assert moment(promulgation.effective_at) == effective_at
    assert promulgation.effective_date_rule == ""
    assert promulgation.effective_date_override_reason.startswith("Thủ tục rút gọn")


def test_invalid_fields_are_named(stub):
    now = datetime.now(timezone.utc)
    request = promulgation_request("reg-x", signed_at=now + timedelta(days=1),
                                   document_number="15/2025/nđ-cp", signer="Th? t??ng",
                                   gazette_number="", effective_date_override_reason="vì sao")
    request.ClearField("gazette_published_at")
    assert violations_of(lambda: stub.RecordPromulgation(request, timeout=10)) == {
        "signed_at": f"must not be in the future, got {moment(request.signed_at).isoformat()}",
        "document_number": "must be number/year/form-issuer in capitals, e.g. 15/2026/NĐ-CP "
                           "or 31/2026/QH15",
        "signer": "text looks corrupted ('?' or U+FFFD in place of letters, or mojibake); "
                  "resend it as UTF-8",
        "gazette_number": "must not be empty",
        "gazette_published_at": "must be set",
        "effective_date_override_reason": "is only for an effective_at that overrides the "
                                          "rule; set effective_at or leave the reason empty",
    }
    signed_at = now - timedelta(days=2)
    request = promulgation_request("reg-x", signed_at=signed_at,
                                   document_number=f"7/{signed_at.year - 1}/NĐ-CP",
                                   gazette_published_at=signed_at - timedelta(hours=1),
                                   effective_at=signed_at - timedelta(days=1),
                                   effective_date_override_reason="Hiệu lực trở về trước")
    assert violations_of(lambda: stub.RecordPromulgation(request, timeout=10)) == {
        "document_number": f"carries the year {signed_at.year - 1} but was signed in "
                           f"{signed_at.astimezone(VIETNAM).year}",
        "gazette_published_at": "must not be before signed_at",
        "effective_at": "must not be before signed_at",
    }


def test_only_an_adopted_regulation_can_be_promulgated_once(stub, producer):
    with pytest.raises(grpc.RpcError) as unknown:
        stub.RecordPromulgation(promulgation_request(regulation_id()), timeout=10)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert "DraftRegistered on policy.drafting.v1" in unknown.value.details()

    in_consultation = regulation_id()
    produce(producer, DRAFTING_TOPIC, drafting.DraftRegistered(
        regulation_id=in_consultation, regulation_type=common_pb2.REGULATION_TYPE_CIRCULAR,
        title="Thông tư hướng dẫn đăng ký đất đai", lead_agency_id="bnnmt",
        impact_level=common_pb2.IMPACT_LEVEL_LOW, version=1))
    produce(producer, DRAFTING_TOPIC, drafting.DraftSubmittedForConsultation(
        regulation_id=in_consultation, version=1))
    wait_for_status(stub, in_consultation, api.REGULATION_STATUS_IN_CONSULTATION)
    with pytest.raises(grpc.RpcError) as early:
        stub.RecordPromulgation(promulgation_request(in_consultation), timeout=10)
    assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert early.value.details().startswith(
        f"regulation {in_consultation} is IN_CONSULTATION; only an ADOPTED draft")

    regulation = adopted(stub, producer)
    first = stub.RecordPromulgation(promulgation_request(regulation), timeout=10).promulgation
    with pytest.raises(grpc.RpcError) as again:
        stub.RecordPromulgation(promulgation_request(regulation), timeout=10)
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert again.value.details() == (f"regulation {regulation} is already promulgated as "
                                     f"{first.document_number}")

    other = adopted(stub, producer)
    assert violations_of(lambda: stub.RecordPromulgation(promulgation_request(
        other, document_number=first.document_number), timeout=10)) == {
        "document_number": f"{first.document_number} is already the number of regulation "
                           f"{regulation}"}


def test_a_spokesperson_release_is_published_and_in_the_timeline(stub, producer, platform_topics):
    regulation = adopted(stub, producer)
    request = api.IssueSpokespersonReleaseRequest(
        idempotency_key=key(), regulation_id=regulation,
        headline="Bộ Nông nghiệp và Môi trường thông tin về Nghị định bồi thường",
        body="Nghị định quy định rõ mức bồi thường, hỗ trợ khi Nhà nước thu hồi đất.")
    release_id = stub.IssueSpokespersonRelease(request, timeout=10).release_id
    assert stub.IssueSpokespersonRelease(request, timeout=10).release_id == release_id

    [event] = events_about(platform_topics, regulation, until=1)
    assert event.type == "policy.publication.v1.SpokespersonReleaseIssued"
    assert (event.payload.release_id, event.payload.body) == (release_id, request.body)
    assert fetch_timeline(stub, regulation).entries[-1].description == (
        "Người phát ngôn công bố thông cáo: " + request.headline)
    assert violations_of(lambda: stub.IssueSpokespersonRelease(
        api.IssueSpokespersonReleaseRequest(idempotency_key=key(), regulation_id=regulation),
        timeout=10)) == {"headline": "must not be empty", "body": "must not be empty"}
