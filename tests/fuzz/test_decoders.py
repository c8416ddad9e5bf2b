"""The event decoders against any record, as pure logic: policykit.envelope.from_record, which
every consumer uses, and the evaluation's delivery-report reader, which reads the common case
itself. Whatever arrives, a decoder returns an event every handler can rely on, or says what
is wrong for the dead-letter topic — never anything else."""

from __future__ import annotations

import random
import string
import unicodedata
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.communication.v1 import events_pb2 as tasks
from policykit.envelope import (REGULATION_ID, Event, EnvelopeError, from_record,
                                headers_from_json, headers_to_json, new_event, to_record)
from policykit.reference import default as reference_data
from policykit.text import looks_corrupted, nfc, without_diacritics
from policykit.wellformed import MAX_ID, event_problems
from services.evaluation.delivery import ReportReader
from services.evaluation.units import Units
from tests.fuzz import strategies
from tests.fuzz.messages import delivery_record, is_nfc
from tests.fuzz.profiles import examples


@examples(600)
@given(strategies.records)
def test_a_record_is_an_event_every_handler_can_rely_on_or_an_envelope_error(record):
    try:
        event = from_record(*record)
    except EnvelopeError as error:
        assert error.reason
        return
    assert is_nfc(event.payload)
    assert event_problems(event.payload) == []
    assert event.time.utcoffset() is not None
    assert event.regulation_id == event.payload.regulation_id == record[0].decode()
    assert REGULATION_ID.match(event.regulation_id)  # what consumers key their tables by
    assert max(len(event.id), len(event.source), len(event.type)) <= MAX_ID
    # Consumers keep an event to apply later (policykit.deferred) by encoding it again and
    # storing its headers as JSON: it must come back the same.
    key, value, headers = to_record(event)
    assert from_record(key, value, headers_from_json(headers_to_json(headers))) == event


@examples(150)
@given(strategies.events())
def test_the_envelope_wraps_only_what_it_would_unwrap(payload):
    try:
        event = new_event(payload, "policy/fuzz")
    except EnvelopeError as error:
        assert error.reason
        return
    assert is_nfc(event.payload)
    assert from_record(*to_record(event)) == event


@pytest.fixture(scope="module")
def reader() -> ReportReader:
    return ReportReader(Units(reference_data()))


delivery_records = strategies.sound_records(strategies.events(st.just(tasks.DeliveryReported)))


@examples(400)
@given(strategies.records | delivery_records | strategies.mutated_records(delivery_records))
def test_a_delivery_report_is_counted_or_refused_with_a_reason(reader, record):
    try:
        (regulation_id, region, channel, _), reach = reader.read(delivery_record(*record))
    except EnvelopeError as error:
        assert error.reason
        return
    assert regulation_id and region and channel and reach >= 0


# The delivery reader's cheap path skips the envelope's decoding: what it counts must still
# fit the tables, or storing its batch fails and the batch is read again for ever.
@pytest.mark.parametrize("report", [
    tasks.DeliveryReported(regulation_id="fuzz-1\x00", region_id="national", channel=6,
                           reach_count=1),
    tasks.DeliveryReported(regulation_id="".join(random.Random(1).choices(string.ascii_letters,
                                                                          k=3_000)),
                           region_id="national", channel=6, reach_count=1),
    tasks.DeliveryReported(regulation_id="fuzz-1", region_id="national", channel=6,
                           reach_count=1, delivered_at={"seconds": 2**40}),
    tasks.DeliveryReported(regulation_id="fuzz-1", region_id="national", channel=6,
                           reach_count=2**62),
], ids=["NUL in the regulation id", "regulation id past an index entry",
        "delivered after year 9999", "reach that overflows a sum"])
def test_what_the_delivery_reader_counts_can_be_stored(reader, report):
    key, value, headers = to_record(Event(
        id="0b6b3a4e-4f7c-4f43-9d0e-5a8a3c1f0e21", source="channel/sms",
        type=report.DESCRIPTOR.full_name, time=datetime.now(timezone.utc),
        subject=report.regulation_id, payload=report))
    try:
        (regulation_id, _, _, day), reach = reader.read(delivery_record(key, value, headers))
    except EnvelopeError:
        return
    assert REGULATION_ID.match(regulation_id)  # a key of delivery_totals
    assert date(1970, 1, 1) + timedelta(days=day)  # the date it is stored under
    assert reach * 1_000_000 < 2**63  # a million such reports still sum inside a bigint


@examples(200)
@given(strategies.texts)
def test_the_text_helpers_take_any_text(text):
    assert unicodedata.is_normalized("NFC", nfc(text))
    assert isinstance(looks_corrupted(text), bool)
    assert not any(unicodedata.combining(c) for c in without_diacritics(text))
