"""No contact detail and no comment text ever reaches a topic: events carry pseudonymous ids."""

from policy.consultation.v1 import consultation_service_pb2 as api
from policy.consultation.v1 import events_pb2 as events
from policykit.topics import load
from services.consultation.tests.helpers import (
    comment, end_draft, events_of, has, key, open_consultation, submit, submit_all)
from tests.support import read_topic, topic_size

NAME = "Phùng Thị Riêng Tư"
EMAIL = "rieng.tu.9931@example.vn"
PHONE = "0987 654 329"
ORGANISATION = "Hợp tác xã Bí Mật"
TEXT = "Gọi tôi theo số 0987654329 để trao đổi về Điều 9, bảo mật giúp tôi."


def test_no_contact_detail_or_text_appears_on_any_topic(platform_topics, stub):
    regulation_id = open_consultation(platform_topics, stub)
    contact = api.ContactDetails(name=NAME, email=EMAIL, phone=PHONE, organisation=ORGANISATION)
    first = submit(stub, comment(regulation_id, TEXT, contact=contact))
    submit_all(stub, [comment(regulation_id, f"{TEXT} ({n})", contact=contact) for n in range(20)]
               + [comment(regulation_id, "x", contact=api.ContactDetails(email=EMAIL,
                                                                          phone="bad"))])
    stub.AnswerComments(api.AnswerCommentsRequest(
        idempotency_key=key(), regulation_id=regulation_id, comment_ids=[first.comment_id],
        outcome=events.ANSWER_OUTCOME_ACCEPTED, explanation="Tiếp thu."), timeout=10)
    end_draft(platform_topics, stub, regulation_id)
    received = [e.payload for e in events_of(platform_topics, regulation_id,
                                             has("ConsultationReportPublished"))
                if isinstance(e.payload, events.CommentReceived)]
    assert len(received) == 21
    assert len({r.commenter_pseudonym for r in received}) == 1  # one commenter, one pseudonym

    topics = [name for name in load().topics if topic_size(platform_topics, name)]
    records = read_topic(platform_topics, topics, lambda rs: len(rs) >= sum(
        topic_size(platform_topics, name) for name in topics))
    secrets = [value.encode("utf-8") for value in (NAME, EMAIL, PHONE, ORGANISATION, TEXT,
                                                    "0987654329", "Riêng Tư", "rieng.tu")]
    for record in records:
        everything = b"".join([record.key or b"", record.value or b"",
                               *(name.encode() + (value or b"")
                                 for name, value in record.headers or ())])
        for secret in secrets:
            assert secret not in everything, (record.topic, secret)
