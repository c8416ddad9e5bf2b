"""The envelope's encoding rules, as pure logic (the broker round trip is in test_kafka_io)."""

import unicodedata

import pytest

from policy.drafting.v1 import events_pb2 as drafting
from policykit.envelope import (EnvelopeError, from_record, headers_from_json,
                                headers_to_json, new_event, to_record)

TITLE = "Luật Đất đai (sửa đổi): lấy ý kiến Nhân dân"


def record(**payload_fields):
    return to_record(new_event(drafting.DraftRegistered(regulation_id="reg-1", **payload_fields),
                               "policy/drafting"))


def test_binary_mode_headers_and_key():
    key, _, headers = record(title=TITLE)
    names = dict(headers)
    assert key == b"reg-1"
    assert names["ce_specversion"] == b"1.0"
    assert names["ce_type"] == b"policy.drafting.v1.DraftRegistered"
    assert names["ce_subject"] == b"reg-1"
    assert names["content-type"] == b"application/protobuf"
    assert names["ce_id"] and names["ce_time"] and names["ce_source"] == b"policy/drafting"


def test_decomposed_text_is_stored_as_nfc():
    key, value, headers = record(title=unicodedata.normalize("NFD", TITLE))
    assert from_record(key, value, headers).payload.title.encode() == TITLE.encode()


def test_nested_and_repeated_text_is_normalised_and_checked_in_one_walk():
    from policy.communication.v1 import events_pb2 as task_events
    from policy.communication.v1 import task_pb2
    decomposed = unicodedata.normalize("NFD", TITLE)
    task = task_pb2.Task(task_id="t-1", regulation_id="reg-1", title=decomposed,
                         region_ids=["01", unicodedata.normalize("NFD", "Hà Nội")])
    task.evidence.note = decomposed
    event = new_event(task_events.TaskCreated(regulation_id="reg-1", task=task), "x")
    assert event.payload.task.title == event.payload.task.evidence.note == TITLE
    assert list(event.payload.task.region_ids) == ["01", "Hà Nội"]
    task.evidence.note = "ghi chú\x00"
    task.status = 99
    with pytest.raises(EnvelopeError) as caught:
        new_event(task_events.TaskCreated(regulation_id="reg-1", task=task), "x")
    assert caught.value.reason.startswith("task.status: 99 is not a value of")
    assert "task.evidence.note: must not contain control characters" in caught.value.reason


@pytest.mark.parametrize("mutate, reason", [
    (lambda k, v, h: (k, v, [x for x in h if x[0] != "ce_type"]), "missing header ce_type"),
    (lambda k, v, h: (k, v, [(n, b"policy.nope.v1.Gone" if n == "ce_type" else x)
                             for n, x in h]), "unknown ce_type"),
    (lambda k, v, h: (k, b"\xff\xff\xff\xff", h), "payload is not a valid"),
    (lambda k, v, h: (b"reg-2", v, h), "differs from regulation_id"),
    (lambda k, v, h: (k, v, [(n, b"0.3" if n == "ce_specversion" else x) for n, x in h]),
     "unsupported ce_specversion"),
    (lambda k, v, h: (k, v, [(n, b"\xc3\x28" if n == "ce_source" else x) for n, x in h]),
     "not UTF-8"),
    (lambda k, v, h: (k, v, [(n, b"yesterday" if n == "ce_time" else x) for n, x in h]),
     "not an RFC 3339"),
])
def test_bad_records_raise_one_typed_error(mutate, reason):
    key, value, headers = mutate(*record(title=TITLE))
    with pytest.raises(EnvelopeError) as caught:
        from_record(key, value, headers)
    assert reason in caught.value.reason


def test_only_lifecycle_events_are_wrapped():
    from policy.common.v1 import common_pb2
    with pytest.raises(EnvelopeError):
        new_event(common_pb2.PageRequest(), "x")
    with pytest.raises(EnvelopeError, match="regulation_id is empty"):
        new_event(drafting.DraftRegistered(), "x")


def test_stored_headers_read_back_in_every_form_they_are_stored():
    _, _, headers = record(title=TITLE)
    stored = headers_to_json(headers)
    assert headers_from_json(stored) == headers
    # As PostgreSQL prints jsonb (deferred events; outbox rows from before 0006), with
    # whitespace around the list too.
    printed = stored.replace('","', '", "').replace("],[", "], [")
    assert headers_from_json(printed) == headers
    assert headers_from_json(f" {printed}\n") == headers
    # Non-ASCII stays as it is; what is not one JSON list is refused.
    assert headers_from_json('[["ce_source","Bộ Tư pháp"]]') == [
        ("ce_source", "Bộ Tư pháp".encode())]
    for broken in (stored + "]", stored[:-1], "", "not json"):
        with pytest.raises(ValueError):
            headers_from_json(broken)
