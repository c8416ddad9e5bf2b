"""Coverage-guided fuzzing (atheris: libFuzzer over instrumented Python) of the two decoders
that take the most hostile input — the event envelope and a comment — where mutating bytes
towards new branches finds what drawing whole values does not:

    python -m tests.fuzz.atheris_targets envelope -atheris_runs=100000
    python -m tests.fuzz.atheris_targets comment -atheris_runs=100000

Any exception but the decoder's declared refusal is a crash: libFuzzer saves the input as
crash-* (in -artifact_prefix) and exits non-zero. test_atheris.py runs both briefly."""

from __future__ import annotations

import sys
import unicodedata
from datetime import date

import atheris

with atheris.instrument_imports(include=["policykit", "services"]):
    from policy.consultation.v1 import consultation_service_pb2 as api
    from policykit.envelope import (CONTENT_TYPE, EVENT_TYPES, SPECVERSION, EnvelopeError,
                                    from_record, headers_from_json, headers_to_json, to_record)
    from policykit.errors import FieldViolations
    from policykit.reference import default as reference_data
    from policykit.text import has_control_characters
    from policykit.wellformed import event_problems
    from services.consultation.validation import CommentChecker
    from tests.fuzz.messages import is_nfc

from google.protobuf.message import DecodeError

TYPES = sorted(EVENT_TYPES)
TIMES = ("2026-11-30T10:00:00+07:00", "2026-11-30T10:00:00", "1899-12-31T23:59:59+00:00")


def _header(data: atheris.FuzzedDataProvider, sound: str) -> bytes:
    """Mostly the sound value, so that the decoder gets past the headers to the payload."""
    return sound.encode() if data.ConsumeProbability() < 0.9 else data.ConsumeBytes(16)


def envelope(raw: bytes) -> None:
    data = atheris.FuzzedDataProvider(raw)
    regulation_id = "r-1" if data.ConsumeBool() else data.ConsumeUnicodeNoSurrogates(8)
    headers = [(name, _header(data, sound)) for name, sound in (
        ("ce_specversion", SPECVERSION), ("ce_id", "e-1"), ("ce_source", "fuzz"),
        ("ce_type", TYPES[data.ConsumeIntInRange(0, len(TYPES) - 1)]),
        ("ce_time", TIMES[data.ConsumeIntInRange(0, len(TIMES) - 1)]),
        ("ce_subject", regulation_id), ("content-type", CONTENT_TYPE))
        if data.ConsumeProbability() < 0.95]
    key = regulation_id.encode()
    try:
        event = from_record(key, data.ConsumeBytes(data.remaining_bytes()), headers)
    except EnvelopeError:
        return
    assert not event_problems(event.payload)
    assert is_nfc(event.payload)
    again = to_record(event)
    assert from_record(again[0], again[1], headers_from_json(headers_to_json(again[2]))) == event


CHECKER = CommentChecker(b"fuzz-pseudonym-key", reference_data())


def comment(raw: bytes) -> None:
    try:
        submitted = api.Comment.FromString(raw)
    except DecodeError:
        return
    try:
        prepared = CHECKER.prepare(submitted, date(2026, 6, 1))
    except FieldViolations:
        return
    stored = [prepared.text, prepared.article_ref, *prepared.contact]
    assert not any(has_control_characters(text) for text in stored + [prepared.idempotency_key])
    assert all(unicodedata.is_normalized("NFC", text) for text in stored)


TARGETS = {"envelope": envelope, "comment": comment}

if __name__ == "__main__":
    target = TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
