"""Vietnamese text through the whole path, on the running services: decomposed diacritics (NFD)
are stored and published precomposed (NFC), whether they came over gRPC or through the
drafting intake topic; mojibake in a comment is flagged, not refused; text past its limit is
INVALID_ARGUMENT naming the field, in every request of every service; control characters are
refused alike everywhere — over gRPC naming the field, on a topic by dead-lettering with the
same words — while tab, line feed and carriage return pass."""

from __future__ import annotations

import unicodedata
import uuid

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from kafka import KafkaProducer

from policy.consultation.v1 import consultation_service_pb2 as consultation_api
from policy.consultation.v1 import consultation_service_pb2_grpc as consultation_grpc
from policy.drafting.v1 import drafting_service_pb2 as drafting_api
from policy.drafting.v1 import drafting_service_pb2_grpc as drafting_grpc
from policy.drafting.v1 import events_pb2 as drafting_events
from policykit.envelope import from_record, new_event, to_record
from policykit.errors import field_violations
from policykit.wellformed import CONTROL_PROBLEM
from services.drafting import changes
from tests.fuzz import seeds
from tests.fuzz.rpcs import RPCS, Rpc, call, with_fresh_keys
from tests.fuzz.strategies import CONTROL
from tests.support import read_topic

TITLE = "Luật Đất đai (sửa đổi): lấy ý kiến Nhân dân về bồi thường, hỗ trợ tái định cư"
DECOMPOSED = unicodedata.normalize("NFD", TITLE)
MOJIBAKE = "Ä\x90iá»\x81u 5 quy Ä\x91á»\x8bnh vá»\x81 Ä\x91áº¥t á»\x9f"  # UTF-8 read as Latin-1
PAST_EVERY_LIMIT = ("Điều 5. " * 2_600)[:20_001]  # the longest limit is 20,000 characters
DRAFTING_TOPIC, INTAKE_TOPIC = "policy.drafting.v1", "policy.drafting-intake.v1"

assert DECOMPOSED != TITLE and len(MOJIBAKE) == len(MOJIBAKE.encode("latin-1"))


def published(bootstrap: str, topic: str, regulation_id: str, event_type: type[Message]) -> Message:
    """The first event of the type about the regulation on the topic."""
    def decoded(records) -> list:
        return [event.payload for event in (from_record(r.key, r.value, r.headers)
                                            for r in records if r.key == regulation_id.encode())
                if isinstance(event.payload, event_type)]
    return decoded(read_topic(bootstrap, [topic], decoded))[0]


@pytest.fixture(scope="module")
def drafts(channels) -> drafting_grpc.DraftingServiceStub:
    return drafting_grpc.DraftingServiceStub(channels["drafting"])


@pytest.fixture(scope="module")
def comments(channels) -> consultation_grpc.ConsultationServiceStub:
    return consultation_grpc.ConsultationServiceStub(channels["consultation"])


def test_a_decomposed_title_is_nfc_in_the_read_api_and_on_the_topic(platform_topics, drafts,
                                                                      world):
    request = world[drafting_api.RegisterDraftRequest]
    request.idempotency_key, request.title = str(uuid.uuid4()), DECOMPOSED
    request.summary = unicodedata.normalize("NFD", "Tóm tắt: Điều 5, khoản 2")
    draft = drafts.RegisterDraft(request, timeout=10).draft
    stored = drafts.GetDraft(drafting_api.GetDraftRequest(regulation_id=draft.regulation_id),
                             timeout=10).draft
    event = published(platform_topics, DRAFTING_TOPIC, draft.regulation_id,
                      drafting_events.DraftRegistered)
    for title in (draft.title, stored.title, event.title):
        assert title.encode() == TITLE.encode()
    assert stored.summary == event.summary == "Tóm tắt: Điều 5, khoản 2"


def produce(bootstrap: str, payload: Message) -> None:
    # The envelope as a drafting system builds it, without policykit's normalisation.
    event = new_event(drafting_events.DraftRegistered(regulation_id=payload.regulation_id),
                      "drafting-system/fuzz")
    key, _, headers = to_record(event)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        producer.send(INTAKE_TOPIC, key=key, value=payload.SerializeToString(),
                      headers=headers).get(timeout=30)
    finally:
        producer.close()


def intake_draft(world, **fields) -> drafting_events.DraftRegistered:
    """A valid DraftRegistered for the intake topic, with the given fields."""
    registered = changes.copy_fields(world[drafting_api.RegisterDraftRequest],
                                     drafting_events.DraftRegistered())
    registered.regulation_id = f"fuzz-{uuid.uuid4().hex[:12]}"
    for name, value in fields.items():
        setattr(registered, name, value)
    return registered


def test_a_decomposed_title_from_the_intake_topic_is_nfc_when_republished(
        platform_topics, drafts, world):
    registered = intake_draft(world, title=DECOMPOSED)
    produce(platform_topics, registered)
    event = published(platform_topics, DRAFTING_TOPIC, registered.regulation_id,
                      drafting_events.DraftRegistered)
    stored = drafts.GetDraft(drafting_api.GetDraftRequest(
        regulation_id=registered.regulation_id), timeout=10).draft
    assert event.title.encode() == stored.title.encode() == TITLE.encode()


def test_a_decomposed_comment_is_stored_and_published_nfc(platform_topics, comments, world):
    request = world[consultation_api.SubmitCommentRequest]
    request.comment.idempotency_key = str(uuid.uuid4())
    request.comment.text = unicodedata.normalize("NFD", "Đề nghị làm rõ khái niệm đất ở")
    request.comment.article_ref = unicodedata.normalize("NFD", "Điều 12")
    comment_id = comments.SubmitComment(request, timeout=10).comment_id
    regulation_id = request.comment.regulation_id
    # The article filter is read like the comment's reference, decomposed or not.
    for article in ("Điều 12", unicodedata.normalize("NFD", "điều 12")):
        [stored] = [c for c in comments.ListComments(consultation_api.ListCommentsRequest(
            regulation_id=regulation_id, article=article), timeout=10).comments
            if c.comment_id == comment_id]
        assert stored.text.encode() == "Đề nghị làm rõ khái niệm đất ở".encode()
        assert stored.article_ref.encode() == "Điều 12".encode()

    def ours(records) -> list:
        return [e.payload for e in (from_record(r.key, r.value, r.headers) for r in records
                                    if r.key == regulation_id.encode())
                if getattr(e.payload, "comment_id", "") == comment_id]
    [received] = ours(read_topic(platform_topics, ["policy.consultation.v1"], ours))
    assert received.article_ref.encode() == "Điều 12".encode()


def test_mojibake_comments_are_flagged_not_refused(comments, world):
    request = world[consultation_api.SubmitCommentRequest]
    request.comment.idempotency_key, request.comment.text = str(uuid.uuid4()), MOJIBAKE
    unary = comments.SubmitComment(request, timeout=10)
    request.comment.idempotency_key = str(uuid.uuid4())
    bulk = comments.SubmitComments(iter([consultation_api.SubmitCommentsRequest(
        comments=[request.comment])]), timeout=10)
    assert unary.flagged_corrupted_text and (bulk.accepted, bulk.flagged_corrupted_text) == (1, 1)
    flagged = comments.ListComments(consultation_api.ListCommentsRequest(
        regulation_id=request.comment.regulation_id, flagged_only=True), timeout=10).comments
    assert unary.comment_id in {c.comment_id for c in flagged}


def text_fields(message: Message, prefix: str = "") -> list[tuple[str, Message, FieldDescriptor]]:
    """(path, owner, field) of each string field of the message and of the messages set in
    it; a repeated field's path names its first entry."""
    found = []
    for field in message.DESCRIPTOR.fields:
        path = prefix + field.name + ("[0]" if field.is_repeated else "")
        if field.type == FieldDescriptor.TYPE_STRING:
            found.append((path, message, field))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.is_repeated:
                nested = getattr(message, field.name)[:1]
            else:
                nested = [getattr(message, field.name)] if message.HasField(field.name) else []
            for item in nested:
                found += text_fields(item, path + ".")
    return found


# Every string field of every request: (rpc, the field's place among them, its path).
FIELDS = [(rpc, index, path) for rpc in RPCS for index, (path, _, _) in
          enumerate(text_fields(seeds.requests()[rpc.request_type]))]
FIELD_IDS = [f"{rpc}.{path}" for rpc, _, path in FIELDS]


def with_text(request: Message, index: int, text: str) -> Message:
    """The request with its index-th string field (text_fields) set to the text."""
    _, owner, field = text_fields(request)[index]
    if field.is_repeated:
        getattr(owner, field.name)[:] = [text]
    else:
        setattr(owner, field.name, text)
    return request


def refusals(channels, rpc: Rpc, request: Message) -> list[tuple[str, str]]:
    """What the call refused, as (field path, problem); a bulk stream answers OK with each
    comment it refused, named by its place and its first bad field, the problems joined."""
    outcome = call(channels, rpc, [with_fresh_keys(request.SerializeToString())])
    if rpc.method.client_streaming:
        assert isinstance(outcome, bytes), outcome
        response = rpc.method.output_type._concrete_class.FromString(outcome)
        return [(f"comments[{r.position}].{r.field}", r.reason) for r in response.rejected]
    assert isinstance(outcome, grpc.RpcError), f"{rpc} accepted it"
    assert outcome.code() == grpc.StatusCode.INVALID_ARGUMENT, outcome.details()
    return field_violations(outcome)


@pytest.mark.parametrize("rpc, index, path", FIELDS, ids=FIELD_IDS)
def test_text_past_its_limit_is_refused_naming_the_field(channels, world, rpc, index, path):
    refused = refusals(channels, rpc, with_text(world[rpc.request_type], index, PAST_EVERY_LIMIT))
    assert path in {field for field, _ in refused}, refused


@pytest.mark.parametrize("rpc, index, path", FIELDS, ids=FIELD_IDS)
def test_control_characters_are_refused_alike_everywhere(channels, world, rpc, index, path):
    control = CONTROL[index % len(CONTROL)]
    refused = refusals(channels, rpc, with_text(world[rpc.request_type], index,
                                                f"Điều 5{control}khoản 2"))
    assert any(field == path and problem.startswith(CONTROL_PROBLEM)
               for field, problem in refused), refused


def test_tab_line_feed_and_carriage_return_pass(drafts, world):
    request = world[drafting_api.RegisterDraftRequest]
    request.idempotency_key = str(uuid.uuid4())
    request.summary = "Điều 5:\tbồi thường\r\nĐiều 6:\thỗ trợ"
    assert drafts.RegisterDraft(request, timeout=10).draft.summary == request.summary


def test_control_characters_on_a_topic_are_dead_lettered_with_the_same_words(
        platform_topics, world):
    registered = intake_draft(world, title=f"{TITLE}\x07")
    produce(platform_topics, registered)

    def ours(records) -> list:
        return [r for r in records if r.key == registered.regulation_id.encode()]
    [dead] = ours(read_topic(platform_topics, ["policy.dlq.drafting"], ours))
    assert dict(dead.headers)["dlq_reason"].decode() == f"title: {CONTROL_PROBLEM}"
