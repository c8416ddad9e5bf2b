"""Hypothesis strategies for hostile input: the text a Vietnamese-first platform must survive,
protobuf messages of any type built from their descriptors, and Kafka records from sound to
garbage."""

from __future__ import annotations

import base64
import random
import unicodedata
import uuid
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase
from functools import cache

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import strategies as st

from policykit.envelope import CONTENT_TYPE, EVENT_TYPES, SPECVERSION, Event, Headers, to_record
from policykit.wellformed import MAX_SECONDS, MIN_SECONDS, TIMESTAMP

# Sound Vietnamese, precomposed (NFC); `nfd` gives each decomposed.
VIETNAMESE = (
    "Luật Đất đai (sửa đổi): lấy ý kiến Nhân dân", "Thủ tướng Chính phủ", "Điều 5, khoản 2",
    "Nghị định về hỗ trợ tái định cư", "Ủy ban nhân dân tỉnh Hà Giang",
    "Bộ Nông nghiệp và Môi trường", "Đề nghị bổ sung quy định về bồi thường khi thu hồi đất ở.",
    "Vì sao không công khai bảng giá đất?", "Quyết định của Thủ tướng",
    "Xã đảo Thổ Châu, Kiên Giang", "ỹ ữ ự ở ẫ ậ đ",
)
# Text after a lossy or a wrong decoding: '?' for letters, U+FFFD, UTF-8 read as Latin-1 or CP1252.
MOJIBAKE = (
    "Th? t??ng", "Lu?t ??t ?ai", "Ä\x90iá»\x81u 5", "Thá»§ tÆ°á»›ng chá»‰ Ä‘áº¡o", "Nhân d\ufffdn",
    "LuÃ¢t Ä\x90Ã¢t Ä\x91ai",
)
# Every C0 control but tab, line feed and carriage return, and DEL (policykit.text).
CONTROL = tuple(chr(c) for c in (*range(0, 9), 11, 12, *range(14, 32), 127))
# Values that get past a first check — ids, codes, periods, dates, URLs — so that the checks
# and the code behind them are reached, not only the first refusal.
PLAUSIBLE = (
    "", " ", "r-1", "luat-dat-dai-2025", "a" * 64, "a" * 65, "Luật 1", "bnv", "btnmt", "bnnmt",
    "vtv",
    "bnnmt.communication", "tp-ha-noi.information-department", "01", "02", "99", "tp-ha-noi",
    "national", "2026-11", "2026-Q4", "2026", "1999", "2026-11-30", "2026-02-30", "20261130",
    "https://baochinhphu.vn/tin/1", "ftp://x", "15/2026/NĐ-CP", "0/2026/NĐ-CP", "Điều 12",
    "00000000-0000-0000-0000-000000000000", "6f1c1b0e-8a51-4a8e-9a4f-3c9b1f2d7e10",
    "6F1C1B0E-8A51-4A8E-9A4F-3C9B1F2D7E10", "{6f1c1b0e-8a51-4a8e-9a4f-3c9b1f2d7e10}",
    "!!!", "null", "'; DROP TABLE drafts; --",
)


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


# Page tokens in the services' formats (JSON, "|" and U+001F separated), holding what no
# service hands out: times at the ends of the calendar, numbers past int64, ids that are not.
PAGE_TOKENS = tuple(_token(text) for text in (
    '["0001-01-01T00:00:00+14:00", "r-1"]', '["9999-12-31T23:59:59-14:00", 5]',
    '["2026-11-30T00:00:00+00:00", "not-a-uuid"]', "2026-11-30T00:00:00+00:00|99999999999999999999",
    "0001-01-01T00:00:00+14:00|1", "99999999999999999999\x1f6f1c1b0e-8a51-4a8e-9a4f-3c9b1f2d7e10",
    "-1\x1f00000000-0000-0000-0000-000000000000", "[]", "{}", "|"))
# Lengths just past the platform's limits (100, 200, 254, 300, 500, 2,000, 10,000, 20,000).
PAST_LIMITS = (101, 201, 255, 301, 501, 2_001, 10_001, 20_001)

INT32 = (-2**31, 2**31 - 1)
INT64 = (-2**63, 2**63 - 1)
_INTEGER_RANGES = {
    FieldDescriptor.TYPE_INT32: INT32, FieldDescriptor.TYPE_SINT32: INT32,
    FieldDescriptor.TYPE_SFIXED32: INT32, FieldDescriptor.TYPE_INT64: INT64,
    FieldDescriptor.TYPE_SINT64: INT64, FieldDescriptor.TYPE_SFIXED64: INT64,
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1), FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1), FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
NOW = int(datetime(2026, 6, 1, tzinfo=timezone.utc).timestamp())
PROTOBUF_SECONDS = (-62_135_596_800, 253_402_300_799)  # google.protobuf.Timestamp's range
ENVELOPE_HEADERS = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject",
                    "content-type")


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def _repeated_to(length: int, word: str) -> str:
    return (word * (length // len(word) + 1))[:length]


def _scrambled(length: int, seed: int) -> str:
    # Letters in no order: PostgreSQL compresses a long repetitive value, even in an index.
    return "".join(random.Random(seed).choices("aăâbcdđeêghiklmnoôơpqrstuưvxyáàảãạ ", k=length))


# Text past a limit, repeated or scrambled from a drawn seed: drawn character by character it
# would be slow and trip Hypothesis' size checks.
long_texts = st.builds(_repeated_to, st.sampled_from(PAST_LIMITS), st.sampled_from(VIETNAMESE)
                       | st.sampled_from(VIETNAMESE).map(nfd)) | st.builds(
    _scrambled, st.sampled_from(PAST_LIMITS), st.integers(0, 2**32))


# Regulation ids as keys: the platform's own syntax (as often as not, so that events get to
# the handlers), and ids outside it; none another test chooses, so that what garbage leaves
# in the services' projections meets no other test.
regulation_ids = st.sampled_from(("fuzz-1", "fuzz-luat-dat-dai", "fuzz" + "z" * 60)) | \
    st.sampled_from(("fuzz" + "z" * 61, "Luật fuzz", "FUZZ-1", "-fuzz", "fuzz 1", "fuzz/1",
                     "fuzz-😀", "fuzz" + _scrambled(3_000, 1)))


@st.composite
def _with_control(draw, texts: st.SearchStrategy[str]) -> str:
    text = draw(texts)
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.sampled_from(CONTROL)) + text[at:]


sound_texts = (st.sampled_from(VIETNAMESE) | st.sampled_from(PLAUSIBLE)
               | st.sampled_from(PAGE_TOKENS))
# Any text a protobuf string can hold (no lone surrogates): Vietnamese precomposed and
# decomposed, mojibake, control characters, text past the limits, and random Unicode.
# Hypothesis draws the first alternatives most: the hostile ones come first.
texts = st.one_of(
    _with_control(sound_texts), long_texts, st.sampled_from(MOJIBAKE),
    st.sampled_from(VIETNAMESE).map(nfd), st.text(st.characters(codec="utf-8"), max_size=40),
    st.text(st.sampled_from("aăâđeêioôơuưy" + "\u0300\u0301\u0303\u0309\u0323\u031b"),
            max_size=20), sound_texts)

valid_timestamps = st.builds(
    Timestamp, seconds=st.integers(NOW - 10 * 365 * 86400, NOW + 10 * 365 * 86400)
    | st.integers(MIN_SECONDS, MAX_SECONDS) | st.sampled_from((MIN_SECONDS, MAX_SECONDS, 0)),
    nanos=st.integers(0, 999_999_999))
# A Timestamp's fields are plain integers: nothing stops a sender from going past year 9999,
# nor to protobuf's own ends (years 1 and 9999) where datetime arithmetic overflows.
any_timestamps = valid_timestamps | st.builds(
    Timestamp, seconds=st.integers(*INT64) | st.sampled_from(PROTOBUF_SECONDS),
    nanos=st.integers(*INT32))


def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    edges = [n for n in (0, 1, -1, 100, 101, 1000, low, high) if low <= n <= high]
    return st.sampled_from(edges) | st.integers(low, high)


def _values(field: FieldDescriptor) -> st.SearchStrategy:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        value = messages(field.message_type)
    elif field.type == FieldDescriptor.TYPE_ENUM:
        # Open enums: any int32 arrives, not only the declared numbers.
        value = st.sampled_from([v.number for v in field.enum_type.values]) | _integers(*INT32)
    elif field.type == FieldDescriptor.TYPE_STRING:
        value = texts
    elif field.type == FieldDescriptor.TYPE_BYTES:
        value = st.binary(max_size=64)
    elif field.type == FieldDescriptor.TYPE_BOOL:
        value = st.booleans()
    elif field.type == FieldDescriptor.TYPE_DOUBLE:
        value = st.floats()
    elif field.type == FieldDescriptor.TYPE_FLOAT:
        value = st.floats(width=32)
    else:
        value = _integers(*_INTEGER_RANGES[field.type])
    if not field.is_repeated:
        return value
    # A few entries, or many copies of a small one: past the limits on list sizes (200, 1,000)
    # without making a message of megabytes.
    return st.lists(value, max_size=4) | st.builds(
        lambda item, count: [item] * count, value.filter(_small), st.sampled_from((201, 1_001)))


def _small(value) -> bool:
    if isinstance(value, Message):
        return value.ByteSize() < 1_000
    return not isinstance(value, (str, bytes)) or len(value) < 1_000


@cache
def messages(descriptor: Descriptor) -> st.SearchStrategy[Message]:
    """Messages of the type with any subset of fields set, each to any value its type holds."""
    if descriptor.full_name == TIMESTAMP:
        return any_timestamps
    message_class = message_factory.GetMessageClass(descriptor)
    fields = {field.name: st.deferred(lambda field=field: _values(field))
              for field in descriptor.fields}
    return st.fixed_dictionaries({}, optional=fields).map(lambda values: message_class(**values))


def _slots(message: Message):
    """(message, field) for every field of the message and of the messages set in it."""
    for field in message.DESCRIPTOR.fields:
        yield message, field
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.full_name != TIMESTAMP:
            if field.is_repeated:
                for item in getattr(message, field.name):
                    yield from _slots(item)
            elif message.HasField(field.name):
                yield from _slots(getattr(message, field.name))


@st.composite
def variations(draw, seed: Message) -> Message:
    """The seed with one to three fields, nested ones included, set to any value of their type."""
    message = type(seed)()
    message.CopyFrom(seed)
    for _ in range(draw(st.integers(1, 3))):
        owner, field = draw(st.sampled_from(list(_slots(message))))
        value = draw(_values(field))
        owner.ClearField(field.name)
        if field.is_repeated:
            getattr(owner, field.name).extend(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(owner, field.name).CopyFrom(value)
        else:
            setattr(owner, field.name, value)
    return message


def times() -> st.SearchStrategy[datetime]:
    """Aware times around now, at any offset a ce_time may carry."""
    return st.builds(lambda seconds, minutes: datetime.fromtimestamp(seconds, timezone.utc)
                     .astimezone(timezone(timedelta(minutes=minutes))),
                     st.integers(NOW - 365 * 86400, NOW + 365 * 86400), st.integers(-1439, 1439))


def event_types(patterns: tuple[str, ...] = ("*",)) -> st.SearchStrategy[type[Message]]:
    """Lifecycle event types matching a topic's `carries` patterns (topics.yaml)."""
    return st.sampled_from(sorted((t for name, t in EVENT_TYPES.items()
                                   if any(fnmatchcase(name, p) for p in patterns)),
                                  key=lambda t: t.DESCRIPTOR.full_name))


@st.composite
def events(draw, types: st.SearchStrategy[type[Message]] = event_types()) -> Message:
    """Payloads of lifecycle events with random fields and a regulation id."""
    payload = draw(messages(draw(types).DESCRIPTOR))
    payload.regulation_id = draw(regulation_ids)
    return payload


@st.composite
def sound_records(draw, payloads: st.SearchStrategy[Message] = events()) -> tuple:
    """(key, value, headers) as the platform writes them, around any payload — its text not
    normalised, as an outside producer may send it."""
    payload = draw(payloads)
    event_id = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)), version=4))
    return to_record(Event(id=event_id, source="policy/fuzz", type=payload.DESCRIPTOR.full_name,
                           time=draw(times()), subject=payload.regulation_id, payload=payload))


def _record(payload: Message, event_id: str | None = None) -> tuple:
    # Each its own event id: consumers absorb a repeated one as a redelivery.
    return to_record(Event(id=event_id or str(uuid.uuid4()), source="policy/fuzz",
                           type=payload.DESCRIPTOR.full_name,
                           time=datetime.fromtimestamp(NOW, timezone.utc),
                           subject=payload.regulation_id, payload=payload))


def edge_records(sound: Message) -> list[tuple]:
    """Records of a sound event with one value at an edge, for each of its fields: text past
    what an index holds, an enum value no enum declares, the platform's first and last
    instants; and one with a ce_id past what an index holds. Random drawing reaches these
    seldom; an explicit example, every run."""
    edges = {FieldDescriptor.TYPE_STRING: [_scrambled(2_001, 7)],
             FieldDescriptor.TYPE_ENUM: [INT32[1]]}
    found = [_record(sound, event_id=_scrambled(2_001, 8))]
    for field in sound.DESCRIPTOR.fields:
        if field.name == "regulation_id" or field.is_repeated:
            continue
        if field.message_type is not None and field.message_type.full_name == TIMESTAMP:
            values = [Timestamp(seconds=MIN_SECONDS), Timestamp(seconds=MAX_SECONDS)]
        else:
            values = edges.get(field.type, [])
        for value in values:
            payload = type(sound)()
            payload.CopyFrom(sound)
            if field.message_type is not None:
                getattr(payload, field.name).CopyFrom(value)
            else:
                setattr(payload, field.name, value)
            found.append(_record(payload))
    return found


def _header_value(name: str) -> st.SearchStrategy[bytes | None]:
    plausible = {"ce_specversion": [SPECVERSION, "0.3", "1.0 "], "content-type":
                 [CONTENT_TYPE, "application/json", "application/protobuf; charset=utf-8"],
                 "ce_type": [*EVENT_TYPES, "policy.drafting.v1.DraftDeleted", "policy.common.v1."
                             "PageRequest", "policy.drafting.v1.draftregistered", "."],
                 "ce_time": ["2026-11-30T10:00:00+07:00", "2026-11-30T10:00:00",
                             "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                             "2026-11-30", "yesterday"]}.get(name, ())
    text = st.sampled_from(plausible) | texts if plausible else texts
    return st.none() | st.binary(max_size=32) | text.map(str.encode)


@st.composite
def cut_or_flipped(draw, data: bytes) -> bytes:
    """Serialized bytes cut short, with a byte flipped, or with random bytes put in."""
    at = draw(st.integers(0, len(data)))
    mutation = draw(st.sampled_from(("cut", "flip", "insert")))
    if mutation == "cut":
        return data[:at]
    if mutation == "flip" and at < len(data):
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]


@st.composite
def mutated_records(draw, records: st.SearchStrategy[tuple] = sound_records()) -> tuple:
    """A sound record with one thing wrong: a header dropped, added or replaced, another key,
    or the payload's bytes cut, flipped or added to."""
    key, value, headers = draw(records)
    headers = list(headers)
    mutation = draw(st.sampled_from(("drop header", "replace header", "add header", "key",
                                     "value")))
    if mutation == "drop header":
        del headers[draw(st.integers(0, len(headers) - 1))]
    elif mutation == "replace header":
        at = draw(st.integers(0, len(headers) - 1))
        headers[at] = (headers[at][0], draw(_header_value(headers[at][0])))
    elif mutation == "add header":
        name = draw(st.sampled_from(ENVELOPE_HEADERS) | texts)
        headers.insert(draw(st.integers(0, len(headers))), (name, draw(_header_value(name))))
    elif mutation == "key":
        key = draw(st.none() | st.binary(max_size=16) | regulation_ids.map(str.encode))
    else:
        value = draw(cut_or_flipped(value))
    return key, value, headers


random_headers: st.SearchStrategy[Headers] = st.lists(st.tuples(
    st.sampled_from(ENVELOPE_HEADERS) | st.text(max_size=12),
    st.none() | st.binary(max_size=32)), max_size=9)
random_records = st.tuples(st.none() | st.binary(max_size=32), st.none() | st.binary(max_size=128),
                           random_headers)
# Every kind of record a topic may be sent, from sound to garbage.
records = random_records | sound_records() | mutated_records()
