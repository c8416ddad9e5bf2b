"""UUIDs made as text, the form every use of them takes (headers, JSON, asyncpg, which encodes
a uuid column from text in C): making and printing a uuid.UUID costs 5–7 µs, and every event
emitted takes one, every task the engine plans another (and every comment a UUIDv7,
services.consultation.intake)."""

from __future__ import annotations

import hashlib
import os
import uuid

_VARIANT_MASK = ~(0xC000 << 48)  # RFC 9562 variant bits, 10
_VARIANT = 0x8000 << 48
_VERSION_MASK = ~(0xF000 << 64)


def uuid_text(value: int) -> str:
    """The canonical hyphenated form of a 128-bit UUID given as an integer."""
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _versioned(value: int, version: int) -> str:
    return uuid_text((value & _VARIANT_MASK & _VERSION_MASK) | _VARIANT | (version << 76))


def random_uuid() -> str:
    """A random UUID (version 4) from the operating system's randomness, as `uuid.uuid4`."""
    return _versioned(int.from_bytes(os.urandom(16)), 4)


def name_uuid(namespace: uuid.UUID, name: str) -> str:
    """The name-based UUID (version 5, SHA-1) of `name` in `namespace`, as `uuid.uuid5`: the
    same name always gives the same id."""
    digest = hashlib.sha1(namespace.bytes + name.encode("utf-8")).digest()
    return _versioned(int.from_bytes(digest[:16]), 5)
