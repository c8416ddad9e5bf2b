"""Text signatures for finding identical and near-identical comments without comparing every
pair.

Copies that differ only in case and spacing share one `exact_key`. Near-identical texts — a
form letter with a name added or a word changed, retyped without diacritics or with other
punctuation — are found by MinHash over word 3-grams of the folded text (lower case,
Vietnamese diacritics and đ removed, punctuation ignored, so "Tôi đồng ý!" and "toi dong y"
fold alike): `minhash` gives a signature whose matching positions estimate the Jaccard
resemblance of two texts, and `band_keys` cuts it into bands for locality-sensitive lookup, so
texts that resemble each other by 0.7 or more share a band key with probability ≥ 0.98 while
unrelated ones almost never do.

The signature uses one-permutation hashing (one hash per shingle, 32 bins) with optimal
densification (Shrivastava, ICML 2017): a text costs one cached hash per 3-gram instead of one
per 3-gram and permutation."""

from __future__ import annotations

import hashlib
import operator
import random
import struct
import unicodedata
from functools import lru_cache

BINS = 32
BANDS = 10
ROWS = 3  # BANDS * ROWS of the BINS bins are banded
# Texts that resemble each other at least this much (estimated Jaccard of word 3-grams) are
# near-identical.
NEAR_DUPLICATE = 0.7
_VALUE_MASK = (1 << 32) - 1
_EMPTY = 1 << 64
_SIGNATURE = struct.Struct(f"<{BINS}I")
SIGNATURE_BYTES = _SIGNATURE.size
# Bytes that are neither ASCII letters nor digits become spaces once diacritics are gone.
_ASCII_FOLD = bytes(b if chr(b).isalnum() else 32 for b in range(128)).lower() + b" " * 128
# Optimal densification: an empty bin copies the first non-empty bin of its own fixed random
# sequence, the same for every text, so similar texts fill their empty bins alike.
_DONORS = [random.Random(bin_).choices(range(BINS), k=4 * BINS) for bin_ in range(BINS)]


def fold(text: str) -> list[str]:
    """Returns the text's words without case, diacritics or punctuation. A text with no
    Latin letters or digits at all (another script, only symbols) keeps its own words."""
    lowered = text.lower().replace("đ", "d")
    ascii_only = unicodedata.normalize("NFD", lowered).encode("ascii", "ignore")
    words = ascii_only.translate(_ASCII_FOLD).decode("ascii").split()
    return words or lowered.split()


def exact_key(text: str) -> int:
    """Returns a signed 64-bit key shared by texts that differ at most in case and spacing —
    copies, as a campaign sends them. It is cheap enough for every comment at intake; texts
    that differ in more (punctuation, diacritics, a word) are matched by `minhash`."""
    lowered = text.lower()
    # No whitespace but ' ' is printable: most texts are spaced once already, and splitting
    # them into words to join them again would cost half of the key.
    if (not lowered.isprintable() or "  " in lowered or lowered[:1] == " "
            or lowered[-1:] == " "):
        lowered = " ".join(lowered.split())
    digest = hashlib.blake2b(lowered.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@lru_cache(maxsize=1 << 16)
def _shingle_hash(shingle: str) -> int:
    return int.from_bytes(hashlib.blake2b(shingle.encode("utf-8"), digest_size=8).digest(),
                          "little")


def minhash(words: list[str]) -> tuple[int, ...]:
    """Returns the text's MinHash signature: BINS 32-bit values."""
    shingles = set(map(" ".join, zip(words, words[1:], words[2:]))) or {" ".join(words)}
    mins = [_EMPTY] * BINS
    for hashed in map(_shingle_hash, shingles):
        bin_, value = hashed % BINS, hashed // BINS
        if value < mins[bin_]:
            mins[bin_] = value
    filled = [m for m in mins if m != _EMPTY]
    if len(filled) < BINS:
        for bin_ in range(BINS):
            if mins[bin_] == _EMPTY:
                donor = next(d for d in _DONORS[bin_] if mins[d] != _EMPTY)
                # The donor's value, marked by the bin it fills, as the paper's offset does.
                mins[bin_] = _shingle_hash(f"{mins[donor]}:{bin_}")
    return tuple(m & _VALUE_MASK for m in mins)


def band_keys(signature: tuple[int, ...]) -> list[int]:
    """Returns one signed 64-bit key per band: ROWS values of the signature, 21 bits each."""
    keys = []
    for band in range(BANDS):
        rows = signature[band * ROWS:(band + 1) * ROWS]
        key = 0
        for value in rows:
            key = (key << 21) | (value & 0x1FFFFF)
        keys.append(key)
    return keys


def resemblance(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Estimates the Jaccard resemblance of two texts from their signatures."""
    return sum(map(operator.eq, a, b)) / BINS


def pack(signature: tuple[int, ...]) -> bytes:
    return _SIGNATURE.pack(*signature)


def unpack(data: bytes) -> tuple[int, ...]:
    return _SIGNATURE.unpack(data)
