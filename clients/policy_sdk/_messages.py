"""Builds requests and events from keyword arguments with Python types. Only the
representation is checked here (enum names, time zones, lists); what the values must be is the
drafting service's to say, so there is a single set of rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message

from policykit.wellformed import normalize_message

M = TypeVar("M", bound=Message)


def _enum_value(field: str, enum: EnumDescriptor, value: int | str) -> int:
    if isinstance(value, str):
        if value not in enum.values_by_name:
            names = ", ".join(enum.values_by_name)
            raise ValueError(f"{field}: {value!r} is not one of {names}")
        return enum.values_by_name[value].number
    return value


def build(message_type: type[M], **fields: Any) -> M:
    """Returns the message with the given fields set; None leaves a field unset. Enum fields
    take a value of the generated enum or its name ("IMPACT_LEVEL_HIGH"), timestamps a
    datetime with a time zone, repeated fields any iterable but a string. Text is normalised
    to NFC, as the platform stores it."""
    descriptors = message_type.DESCRIPTOR.fields_by_name
    values = {}
    for name, value in fields.items():
        if value is None:
            continue
        field = descriptors[name]
        if field.enum_type is not None:
            value = _enum_value(name, field.enum_type, value)
        elif isinstance(value, datetime) and value.tzinfo is None:
            # protobuf would read a naive time as UTC, which is rarely what a local time means
            raise ValueError(f"{name}: {value.isoformat()} has no time zone; "
                             "pass e.g. datetime(…, tzinfo=timezone.utc)")
        elif field.is_repeated and isinstance(value, str):
            raise TypeError(f"{name}: expects a list of strings, got the string {value!r}")
        values[name] = value
    message = message_type(**values)
    normalize_message(message)
    return message
