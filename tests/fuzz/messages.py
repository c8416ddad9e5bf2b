"""What the fuzz tests' checks read in messages and records."""

from __future__ import annotations

import unicodedata
from types import SimpleNamespace

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message


def strings(message: Message):
    """Every string the message holds, nested messages' included."""
    for field, value in message.ListFields():
        values = value if field.is_repeated else [value]
        if field.type == FieldDescriptor.TYPE_STRING:
            yield from values
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in values:
                yield from strings(item)


def is_nfc(message: Message) -> bool:
    return all(unicodedata.is_normalized("NFC", text) for text in strings(message))


def delivery_record(key, value, headers) -> SimpleNamespace:
    """A record as services/evaluation/delivery.py reads it from aiokafka."""
    return SimpleNamespace(key=key, value=value, headers=headers, offset=0)
