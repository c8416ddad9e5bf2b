"""What every message the platform takes in must be, whatever its type and whatever the
service's own checks: text without control characters, times within the platform's years.

A NUL cannot be stored in PostgreSQL. A Timestamp's fields are plain integers, beyond what a
datetime holds; and the services add windows, reminders and review periods to times and read
them in Vietnam time, which overflows near the ends of datetime's years (1 and 9999). Left to
the handlers, either fails a call with INTERNAL, or an event five times before it is
dead-lettered. So every gRPC request (policykit.grpc_requests) and every consumed event
(policykit.envelope) is checked here first, each problem named by its field's path."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from unicodedata import is_normalized

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from policykit.text import has_control_characters, nfc

TIMESTAMP = "google.protobuf.Timestamp"
# The times the platform takes, far from where datetime arithmetic overflows.
EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(3000, 1, 1, tzinfo=timezone.utc)  # excluded
MIN_SECONDS, MAX_SECONDS = int(EARLIEST.timestamp()), int(LATEST.timestamp()) - 1
CONTROL_PROBLEM = ("must not contain control characters (tab, line feed and carriage return "
                   "are the only ones allowed)")
TIME_PROBLEM = "must be a time from 1900-01-01 to 2999-12-31 (UTC)"
MAX_ID = 200
_ID_SUFFIXES = ("_id", "_ids")


def is_platform_time(moment: datetime) -> bool:
    """Tells whether an aware datetime is within the platform's years."""
    return EARLIEST <= moment < LATEST


def _timestamp_problem(value: Message) -> str | None:
    if MIN_SECONDS <= value.seconds <= MAX_SECONDS and 0 <= value.nanos <= 999_999_999:
        return None
    return f"{TIME_PROBLEM}, with 0 to 999999999 nanos"


# How a field's values are checked: (kind, name, repeated), worked out once per field, as
# descriptor attributes and options are slow to read and intake checks every comment.
_OTHER, _STRING, _ENUM, _TIME, _MESSAGE = range(5)


@lru_cache(maxsize=None)
def _plan(field: FieldDescriptor) -> tuple[int, str, bool]:
    if field.type == FieldDescriptor.TYPE_STRING:
        kind = _STRING
    elif field.type == FieldDescriptor.TYPE_ENUM:
        kind = _ENUM
    elif field.type != FieldDescriptor.TYPE_MESSAGE or field.message_type.GetOptions().map_entry:
        kind = _OTHER  # the platform's messages have no maps
    else:
        kind = _TIME if field.message_type.full_name == TIMESTAMP else _MESSAGE
    return kind, field.name, field.is_repeated


@lru_cache(maxsize=None)
def _fields(descriptor: Descriptor) -> tuple[tuple[int, str, bool, FieldDescriptor, frozenset],
                                             ...]:
    """The fields a walk looks at, in field number order (the order ListFields gives), each
    with the numbers its enum declares: every event emitted or consumed is walked, and reading
    each field by name from a plan made once per type is a third of the cost of listing the
    set ones."""
    ordered = sorted(descriptor.fields, key=lambda field: field.number)
    return tuple((*_plan(field), field, frozenset(field.enum_type.values_by_number)
                  if field.enum_type else frozenset())
                 for field in ordered if _plan(field)[0] != _OTHER)


def _problems(message: Message, prefix: str, event: bool, normalize: bool,
              found: list[tuple[str, str]]) -> list[tuple[str, str]]:
    for kind, name, repeated, field, declared in _fields(message.DESCRIPTOR):
        if repeated:
            values = getattr(message, name)
            if not values:
                continue
            if normalize and kind == _STRING and not all(is_normalized("NFC", v) for v in values):
                values[:] = [nfc(v) for v in values]
            for index, item in enumerate(values):
                if _suspect(kind, item, declared, event):
                    _check(kind, field, item, f"{prefix}{name}[{index}]", event, normalize,
                           found)
            continue
        if kind == _STRING:
            value = getattr(message, name)
            if not value:
                continue
            if normalize and not is_normalized("NFC", value):
                value = nfc(value)
                setattr(message, name, value)
        elif kind == _ENUM:
            value = getattr(message, name)
        elif message.HasField(name):
            value = getattr(message, name)
        else:
            continue
        if _suspect(kind, value, declared, event):
            _check(kind, field, value, prefix + name, event, normalize, found)
    return found


def _suspect(kind: int, value, declared: frozenset, event: bool) -> bool:
    """Whether _check may find a problem with the value: a cheap test, as nearly all have none
    (control characters are never printable, so printable text needs no pattern search; 0, an
    enum's default, is every enum's first value)."""
    if kind == _STRING:
        return not value.isprintable() or (event and len(value) > MAX_ID)
    if kind == _ENUM:
        return event and value not in declared
    return kind == _MESSAGE or _timestamp_problem(value) is not None


def _check(kind: int, field: FieldDescriptor, value, where: str, event: bool, normalize: bool,
           found: list[tuple[str, str]]) -> None:
    if kind == _STRING:
        if not value.isprintable() and has_control_characters(value):
            found.append((where, CONTROL_PROBLEM))
        elif event and len(value) > MAX_ID and field.name.endswith(_ID_SUFFIXES):
            found.append((where, f"must be at most {MAX_ID} characters, an id"))
    elif kind == _ENUM:
        if value not in field.enum_type.values_by_number:
            found.append((where, f"{value} is not a value of {field.enum_type.full_name}"))
    elif kind == _TIME:
        problem = _timestamp_problem(value)
        if problem:
            found.append((where, problem))
    else:
        _problems(value, where + ".", event, normalize, found)


def problems(message: Message) -> list[tuple[str, str]]:
    """Returns (field path, problem) for each ill-formed value of the message, nested ones
    included; paths read like `comment.contact.name` or `affected_groups[2]`."""
    return _problems(message, "", False, False, [])


def event_problems(message: Message, *, normalize: bool = False) -> list[tuple[str, str]]:
    """The problems of an event's payload: those of any message, and the values consumers
    could not store. An enum field must hold a value its enum declares (enums live in
    smallint columns; dead-lettered, an event with a newer value can be replayed once its
    consumer knows it); an id — a field named *_id or *_ids — is at most MAX_ID characters
    (consumers key tables by ids, and PostgreSQL indexes no value past about 2,700 bytes).
    A request's services check those fields themselves, naming every bad one at once.

    With `normalize`, the message's text is first made NFC in place, in the same walk (as
    normalize_message does): every event is normalised and checked on every hop."""
    return _problems(message, "", True, normalize, [])


def normalize_message(message: Message) -> Message:
    """Normalises every string field of the message, nested ones included, to NFC in place
    (most text is NFC already: checking is cheaper than writing the field again); returns it.
    The walk of `problems`, its findings left to the caller's own checks."""
    _problems(message, "", False, True, [])
    return message
