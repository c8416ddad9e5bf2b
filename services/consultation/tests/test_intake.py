"""Comment intake over gRPC, against the running service: validation, flagged text, the
window, idempotency, bulk streams, and a bulk import interrupted and retried."""

import unicodedata
import uuid

import grpc
import pytest

from policy.common.v1 import common_pb2
from policy.consultation.v1 import consultation_service_pb2 as api
from policy.drafting.v1 import events_pb2 as drafting
from policykit.errors import field_violations
from services.consultation.tests.helpers import (
    comment, consultation, events_of, has, of_type, open_consultation, produce_drafting,
    register, submit, submit_all)
from tests.support import eventually


@pytest.fixture(scope="module")
def regulation_id(platform_topics, stub) -> str:
    return open_consultation(platform_topics, stub)


def listed(stub, regulation_id: str, **filters) -> list[api.ReceivedComment]:
    """Every comment of the consultation, page by page."""
    found, token = [], ""
    while True:
        page = stub.ListComments(api.ListCommentsRequest(
            regulation_id=regulation_id, page=common_pb2.PageRequest(page_size=200,
                                                                     page_token=token),
            **filters), timeout=10)
        found += page.comments
        token = page.page.next_page_token
        if not token:
            return found


def test_a_comment_is_stored_once_per_idempotency_key(stub, regulation_id):
    sent = comment(regulation_id, contact=api.ContactDetails(
        name="Nguyễn Văn An", email="An.Nguyen@Example.vn", phone="0912 345 678"))
    first = submit(stub, sent)
    again = submit(stub, sent)
    assert not first.resubmitted and again.resubmitted
    assert again.comment_id == first.comment_id and not first.flagged_corrupted_text
    [stored] = [c for c in listed(stub, regulation_id) if c.comment_id == first.comment_id]
    assert (stored.idempotency_key, stored.article, stored.province_code) == (
        sent.idempotency_key, "Điều 5", "02")
    assert len(stored.commenter_pseudonym) == 32


def test_the_pseudonym_is_stable_per_commenter(stub, regulation_id):
    def pseudonym(contact: api.ContactDetails) -> str:
        comment_id = submit(stub, comment(regulation_id, contact=contact)).comment_id
        return next(c.commenter_pseudonym for c in listed(stub, regulation_id)
                    if c.comment_id == comment_id)

    by_email = pseudonym(api.ContactDetails(email="chi.tran@example.vn"))
    assert pseudonym(api.ContactDetails(email="Chi.Tran@Example.VN", name="Trần Chi")) == by_email
    by_phone = pseudonym(api.ContactDetails(phone="+84 912 000 111"))
    assert pseudonym(api.ContactDetails(phone="0912.000.111")) == by_phone != by_email
    assert pseudonym(api.ContactDetails()) == ""


@pytest.mark.parametrize("overrides, fields", [
    (dict(text=""), {"comment.text"}),
    (dict(text="   \n "), {"comment.text"}),
    (dict(text="ý" * 10_001), {"comment.text"}),
    (dict(text="Đề nghị\x00sửa"), {"comment.text"}),
    (dict(province_code="99"), {"comment.province_code"}),
    (dict(province_code="Hà Nội"), {"comment.province_code"}),
    (dict(stakeholder_type=0), {"comment.stakeholder_type"}),
    (dict(idempotency_key=""), {"comment.idempotency_key"}),
    (dict(article_ref="Đi?u 5"), {"comment.article_ref"}),
    (dict(contact=api.ContactDetails(email="an@", phone="12345")),
     {"comment.contact.email", "comment.contact.phone"}),
    (dict(contact=api.ContactDetails(name="Nguy?n V?n An")), {"comment.contact.name"}),
    (dict(text="", province_code="", stakeholder_type=9),
     {"comment.text", "comment.province_code", "comment.stakeholder_type"}),
], ids=["empty", "blank", "too long", "control character", "unknown code", "a name",
        "no stakeholder", "no key", "corrupted article", "contact formats",
        "corrupted name", "several"])
def test_invalid_comments_are_refused_naming_each_field(stub, regulation_id, overrides, fields):
    with pytest.raises(grpc.RpcError) as caught:
        submit(stub, comment(regulation_id, **overrides))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {field for field, _ in field_violations(caught.value)} == fields


def test_longest_allowed_text_is_counted_after_nfc(stub, regulation_id):
    # 10,000 letters, each sent decomposed (e + combining marks): 20,000 code points before NFC.
    decomposed = unicodedata.normalize("NFD", "ế") * 10_000
    response = submit(stub, comment(regulation_id, text=decomposed))
    [stored] = [c for c in listed(stub, regulation_id) if c.comment_id == response.comment_id]
    assert stored.text == "ế" * 10_000


@pytest.mark.parametrize("text", ["Th? t??ng Chính ph? đã ch? đ?o", "Thủ t\ufffdớng chỉ đạo",
                                  "Thá»§ tÆ°á»›ng chá»‰ Ä‘áº¡o"],
                         ids=["question marks", "replacement character", "mojibake"])
def test_corrupted_text_is_stored_flagged_not_as_if_it_were_fine(stub, regulation_id, text):
    response = submit(stub, comment(regulation_id, text=text))
    assert response.flagged_corrupted_text
    flagged = {c.comment_id for c in listed(stub, regulation_id, flagged_only=True)}
    assert response.comment_id in flagged


def test_a_question_is_not_mistaken_for_corruption(stub, regulation_id):
    response = submit(stub, comment(regulation_id, text="Vì sao không công khai bảng giá đất?"))
    assert not response.flagged_corrupted_text


def test_a_regulation_id_is_checked(stub):
    with pytest.raises(grpc.RpcError) as caught:
        submit(stub, comment("Luật Đất đai"))
    assert [field for field, _ in field_violations(caught.value)] == ["comment.regulation_id"]


def test_unknown_regulations_and_drafts_not_in_consultation_are_refused(
        platform_topics, stub, regulation_id):
    with pytest.raises(grpc.RpcError) as caught:
        submit(stub, comment("no-such-regulation"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    drafting_only = register(platform_topics)

    def refused_as_not_open():
        try:
            submit(stub, comment(drafting_only))
        except grpc.RpcError as error:
            return error.code() == grpc.StatusCode.FAILED_PRECONDITION and error.details()
    assert "is not open for consultation" in eventually(refused_as_not_open)


def test_bulk_stream_stores_the_valid_comments_and_lists_the_rejected(stub, regulation_id):
    comments = [comment(regulation_id, text=f"Ý kiến {n}: đề nghị sửa Điều {n}.")
                for n in range(250)]
    comments[3].text = ""
    comments[120].province_code = "zz"
    comments[200].contact.email = "not-an-email"
    comments[201].text = "Th? t??ng"
    response = submit_all(stub, comments)
    assert (response.accepted, response.flagged_corrupted_text, response.resubmitted) == (247, 1, 0)
    assert [(r.position, r.field, r.idempotency_key) for r in response.rejected] == [
        (3, "text", comments[3].idempotency_key),
        (120, "province_code", comments[120].idempotency_key),
        (200, "contact.email", comments[200].idempotency_key)]
    assert "unknown province 'zz'" in response.rejected[1].reason


def test_bulk_stream_refuses_comments_for_a_closed_window_one_by_one(
        platform_topics, stub, regulation_id):
    closed = open_consultation(platform_topics, stub)
    produce_drafting(platform_topics, drafting.DraftAdopted(regulation_id=closed, version=1))
    eventually(lambda: consultation(stub, closed).state == api.CONSULTATION_STATE_CLOSED)
    response = submit_all(stub, [comment(regulation_id), comment(closed), comment(regulation_id)])
    assert response.accepted == 2
    [refused] = response.rejected
    assert (refused.position, refused.field) == (1, "regulation_id")
    assert "is closed" in refused.reason


def test_an_oversized_message_is_invalid(stub, regulation_id):
    with pytest.raises(grpc.RpcError) as caught:
        submit_all(stub, [comment(regulation_id) for _ in range(1_001)], per_message=1_001)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_an_interrupted_bulk_import_retried_with_its_keys_stores_every_comment_once(
        platform_topics, stub):
    regulation_id = open_consultation(platform_topics, stub)
    comments = [comment(regulation_id, text=f"Góp ý số {n} về Điều {n % 40}: đề nghị bổ sung"
                                            f" quy định chuyển tiếp {uuid.uuid4().hex[:6]}.")
                for n in range(600)]
    messages = [api.SubmitCommentsRequest(comments=comments[i:i + 50])
                for i in range(0, len(comments), 50)]

    def broken_portal():
        yield from messages[:5]
        raise ConnectionError("the portal's link dropped")

    with pytest.raises(grpc.RpcError) as caught:
        stub.SubmitComments(broken_portal(), timeout=60)
    assert caught.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN)

    # What reached the service before the link dropped is stored, or still being stored while
    # the retry arrives; either way the retry counts it as resubmitted, never stores it twice.
    retried = stub.SubmitComments(iter(messages), timeout=60)
    assert (retried.accepted, len(retried.rejected)) == (600, 0)
    assert retried.resubmitted <= 250
    assert consultation(stub, regulation_id).comments_received == 600
    assert len({c.comment_id for c in listed(stub, regulation_id)}) == 600

    received = of_type(events_of(platform_topics, regulation_id, has("CommentReceived", 600)),
                       "CommentReceived")
    assert len(received) == 600
    assert len({event.comment_id for event in received}) == 600
