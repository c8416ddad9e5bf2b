"""Vietnamese-first text handling: NFC everywhere, corrupted input detected, not stored as fine."""

from __future__ import annotations

import re
import unicodedata

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


def without_diacritics(text: str) -> str:
    """Returns an ASCII rendering for channels (SMS) that cannot carry diacritics."""
    text = nfc(text).replace("Đ", "D").replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))
