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

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from policykit.text import has_control_characters

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


def _problems(message: Message, prefix: str, event: bool) -> list[tuple[str, str]]:
    found = []
    for field, value in message.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            continue  # the platform's messages have no maps (normalize_message skips them too)
        path = prefix + field.name
        items = list(enumerate(value)) if field.is_repeated else [(None, value)]
        for index, item in items:
            where = path if index is None else f"{path}[{index}]"
            if field.type == FieldDescriptor.TYPE_STRING:
                if has_control_characters(item):
                    found.append((where, CONTROL_PROBLEM))
                elif event and field.name.endswith(_ID_SUFFIXES) and len(item) > MAX_ID:
                    found.append((where, f"must be at most {MAX_ID} characters, an id"))
            elif field.type == FieldDescriptor.TYPE_ENUM:
                if event and item not in field.enum_type.values_by_number:
                    found.append((where, f"{item} is not a value of {field.enum_type.full_name}"))
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                if field.message_type.full_name == TIMESTAMP:
                    problem = _timestamp_problem(item)
                    if problem:
                        found.append((where, problem))
                else:
                    found += _problems(item, where + ".", event)
    return found


def problems(message: Message) -> list[tuple[str, str]]:
    """Returns (field path, problem) for each ill-formed value of the message, nested ones
    included; paths read like `comment.contact.name` or `affected_groups[2]`."""
    return _problems(message, "", event=False)


def event_problems(message: Message) -> list[tuple[str, str]]:
    """The problems of an event's payload: those of any message, and the values consumers
    could not store. An enum field must hold a value its enum declares (enums live in
    smallint columns; dead-lettered, an event with a newer value can be replayed once its
    consumer knows it); an id — a field named *_id or *_ids — is at most MAX_ID characters
    (consumers key tables by ids, and PostgreSQL indexes no value past about 2,700 bytes).
    A request's services check those fields themselves, naming every bad one at once."""
    return _problems(message, "", event=True)
