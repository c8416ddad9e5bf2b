"""Vietnamese-first text handling: NFC everywhere, corrupted input detected, not stored as fine."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

# "Thủ tướng" after a lossy re-encoding arrives as "Th? t??ng": a '?' or U+FFFD glued to
# letters is the signature. A '?' ending a word before a space or the text's end is a question.
_CORRUPTION = re.compile(r"\ufffd|\w\?+\w|(?<=\s)\?+\w")
# UTF-8 bytes decoded as Latin-1/CP1252 produce pairs like "Ã¡", "Æ°", "á»": mojibake.
_MOJIBAKE = re.compile(r"[ÃÂÄÅÆá][\u0080-\u00bf\u2018-\u203a\u0192\u02c6\u02dc]")
# C0 controls but tab, line feed and carriage return, and DEL: no one types them, and NUL
# cannot be stored in PostgreSQL. C1 controls (U+0080–U+009F) are not among them: they are
# what UTF-8 read as Latin-1 leaves behind, and looks_corrupted flags that as mojibake.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def nfc(text: str) -> str:
    """Returns the text in Unicode normal form C (precomposed diacritics)."""
    return unicodedata.normalize("NFC", text)


def looks_corrupted(text: str) -> bool:
    """Tells whether the text shows the marks of a lossy or wrong decoding."""
    return bool(_CORRUPTION.search(text) or _MOJIBAKE.search(text))


def has_control_characters(text: str) -> bool:
    return _CONTROL.search(text) is not None


def normalize_message(message: Message) -> Message:
    """Normalises every string field of the message, nested ones included, to NFC in place."""
    for field, value in message.ListFields():
        kind, repeated = _field_kind(field)
        if kind == _STRING:
            # Most text is NFC already: checking is cheaper than writing the field again.
            if repeated:
                if not all(unicodedata.is_normalized("NFC", v) for v in value):
                    value[:] = [nfc(v) for v in value]
            elif not unicodedata.is_normalized("NFC", value):
                setattr(message, field.name, nfc(value))
        elif kind == _MESSAGE:
            for item in value if repeated else (value,):
                normalize_message(item)
    return message


_OTHER, _STRING, _MESSAGE = range(3)


@lru_cache(maxsize=None)
def _field_kind(field: FieldDescriptor) -> tuple[int, bool]:
    """(kind, repeated) of a field, worked out once: descriptor options are slow to read, and
    every event consumed or emitted is normalised. Map fields are left alone."""
    if field.type == FieldDescriptor.TYPE_STRING:
        kind = _STRING
    elif (field.type == FieldDescriptor.TYPE_MESSAGE
          and not field.message_type.GetOptions().map_entry):
        kind = _MESSAGE
    else:
        kind = _OTHER
    return kind, field.is_repeated


def without_diacritics(text: str) -> str:
    """Returns an ASCII rendering for channels (SMS) that cannot carry diacritics."""
    text = nfc(text).replace("Đ", "D").replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))
