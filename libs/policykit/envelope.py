"""The event envelope: CloudEvents 1.0 Kafka protocol binding, binary mode.

The CloudEvents attributes travel as `ce_*` headers, the value is the raw protobuf payload,
and the record key is the regulation id so that one regulation's events stay in order.
`ce_type` is the payload's full protobuf name (e.g. `policy.drafting.v1.DraftRegistered`).
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from google.protobuf.message import DecodeError, Message

from policykit import wellformed
from policykit.ids import random_uuid
from policykit.text import has_control_characters

SPECVERSION = "1.0"
CONTENT_TYPE = "application/protobuf"
EVENT_PACKAGES = ("drafting", "consultation", "publication", "communication", "evaluation")

Headers = list[tuple[str, bytes]]
# A regulation's id, its events' key: the UUID the drafting service gives it, or the id a
# drafting system chose for it on the intake topic.
REGULATION_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


class EnvelopeError(ValueError):
    """A record that cannot be turned into an event; `reason` says why, for the dead-letter topic."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Event:
    """One lifecycle event: CloudEvents attributes plus the protobuf payload."""

    id: str
    source: str
    type: str
    time: datetime
    subject: str
    payload: Message

    @property
    def regulation_id(self) -> str:
        return self.subject


def _load_event_types() -> dict[str, type[Message]]:
    """Maps ce_type to payload class for every message of every `policy.<stage>.v1.events`."""
    types: dict[str, type[Message]] = {}
    for stage in EVENT_PACKAGES:
        module = importlib.import_module(f"policy.{stage}.v1.events_pb2")
        for descriptor in module.DESCRIPTOR.message_types_by_name.values():
            if "regulation_id" in descriptor.fields_by_name:
                types[descriptor.full_name] = getattr(module, descriptor.name)
    return types


EVENT_TYPES: dict[str, type[Message]] = _load_event_types()


def _check_payload(payload: Message) -> None:
    """Normalises the payload's text to NFC, then raises EnvelopeError naming each field no
    consumer could handle (policykit.wellformed.event_problems), and for a regulation_id that
    is missing or not a regulation id (every consumer keys its tables by it)."""
    problems = wellformed.event_problems(payload, normalize=True)
    if problems:
        raise EnvelopeError("; ".join(f"{field}: {problem}" for field, problem in problems))
    if not payload.regulation_id:
        raise EnvelopeError(f"{payload.DESCRIPTOR.full_name}.regulation_id is empty")
    if not REGULATION_ID.match(payload.regulation_id):
        raise EnvelopeError("regulation_id: must be 1 to 64 characters a-z, 0-9 and '-', "
                            "starting with a letter or digit")


def new_event(payload: Message, source: str, *, event_id: str | None = None,
              time: datetime | None = None) -> Event:
    """Wraps a payload in an envelope; its text is normalised to NFC and its subject is its
    regulation_id, which must be set. A payload from_record would refuse is refused here."""
    type_name = payload.DESCRIPTOR.full_name
    if type_name not in EVENT_TYPES:
        raise EnvelopeError(f"{type_name} is not a lifecycle event type")
    _check_payload(payload)
    return Event(
        id=event_id or random_uuid(),
        source=source,
        type=type_name,
        time=time or datetime.now(timezone.utc),
        subject=payload.regulation_id,
        payload=payload,
    )


def to_record(event: Event) -> tuple[bytes, bytes, Headers]:
    """Returns (key, value, headers) for a Kafka record carrying the event."""
    headers = [
        ("ce_specversion", SPECVERSION.encode()),
        ("ce_id", event.id.encode()),
        ("ce_source", event.source.encode()),
        ("ce_type", event.type.encode()),
        ("ce_time", event.time.astimezone(timezone.utc).isoformat().encode()),
        ("ce_subject", event.subject.encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
    return event.subject.encode(), event.payload.SerializeToString(), headers


def from_record(key: bytes | None, value: bytes | None, headers: Headers | None) -> Event:
    """Decodes a Kafka record into an event, or raises EnvelopeError saying what is wrong."""
    attrs: dict[str, str] = {}
    for name, raw in headers or ():
        if name.startswith("ce_") or name == "content-type":
            try:
                attrs[name] = (raw or b"").decode("utf-8")
            except UnicodeDecodeError:
                raise EnvelopeError(f"header {name} is not UTF-8") from None
            if has_control_characters(attrs[name]):
                raise EnvelopeError(f"header {name}: {wellformed.CONTROL_PROBLEM}")
            if len(attrs[name]) > wellformed.MAX_ID:  # consumers key their inboxes by ce_id
                raise EnvelopeError(f"header {name}: must be at most {wellformed.MAX_ID} "
                                    "characters")
    for required in ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type"):
        if not attrs.get(required):
            raise EnvelopeError(f"missing header {required}")
    if attrs["ce_specversion"] != SPECVERSION:
        raise EnvelopeError(f"unsupported ce_specversion {attrs['ce_specversion']!r}")
    if attrs["content-type"] != CONTENT_TYPE:
        raise EnvelopeError(f"unsupported content-type {attrs['content-type']!r}")
    payload_class = EVENT_TYPES.get(attrs["ce_type"])
    if payload_class is None:
        raise EnvelopeError(f"unknown ce_type {attrs['ce_type']!r}")
    try:
        time = datetime.fromisoformat(attrs["ce_time"])
    except ValueError:
        raise EnvelopeError(f"ce_time {attrs['ce_time']!r} is not an RFC 3339 timestamp") from None
    if time.tzinfo is None:
        raise EnvelopeError(f"ce_time {attrs['ce_time']!r} has no time zone")
    if not wellformed.is_platform_time(time):
        raise EnvelopeError(f"ce_time {attrs['ce_time']!r}: {wellformed.TIME_PROBLEM}")
    try:
        payload = payload_class.FromString(value or b"")
    except (DecodeError, RuntimeError) as error:
        raise EnvelopeError(f"payload is not a valid {attrs['ce_type']}: {error}") from None
    _check_payload(payload)
    key_text = (key or b"").decode("utf-8", errors="replace")
    if key_text != payload.regulation_id:
        raise EnvelopeError(
            f"record key {key_text!r} differs from regulation_id {payload.regulation_id!r}")
    subject = attrs.get("ce_subject") or payload.regulation_id
    if subject != payload.regulation_id:
        raise EnvelopeError(
            f"ce_subject {subject!r} differs from regulation_id {payload.regulation_id!r}")
    return Event(id=attrs["ce_id"], source=attrs["ce_source"], type=attrs["ce_type"],
                 time=time, subject=subject, payload=payload)


_json_string = json.encoder.encode_basestring  # a JSON string literal, non-ASCII kept


def headers_to_json(headers: Headers) -> str:
    """Serialises envelope headers (all UTF-8 text) as JSON for storage: a list of
    [name, value] pairs, each string escaped by json's own C function (every event emitted
    is stored so; the encoder's object walk took twice the time)."""
    return "[" + ",".join(f"[{_json_string(name)},{_json_string(raw.decode('utf-8'))}]"
                          for name, raw in headers) + "]"


_json_decoder = json.JSONDecoder()


def headers_from_json(text: str) -> Headers:
    """Reads what headers_to_json wrote (or PostgreSQL printed from jsonb), with the
    decoder's `raw_decode`: `json.loads` around it took as long again, and every record a
    relay publishes is read so. Whitespace around the list, or text that is not one, is
    left to `json.loads`, which skips the one and raises a clear error for the other."""
    try:
        pairs, end = _json_decoder.raw_decode(text)
    except ValueError:
        end = -1
    if end != len(text):
        pairs = json.loads(text)
    return [(name, value.encode("utf-8")) for name, value in pairs]
