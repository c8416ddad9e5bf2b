"""Grouping comments into campaigns, after intake and in batches.

Intake stores each comment with the exact key of its text (signatures.exact_key) and queues
the distinct keys of each batch (table pending_texts). The grouper takes them from the queue
and places each text it has not placed before (table texts), in the order they arrived
(comment ids sort by arrival): into the group of an earlier near-identical text — found
through the band keys of the groups' MinHash signatures (table group_bands), then confirmed
by the estimated resemblance — or into a new group it leads. Copies share a key, so a mass
campaign of one form letter costs one signature, whatever its size. No text is compared with
every other: lookups go through the band index, which holds the leading text of each group,
and a band key holds a bounded number of groups. A group with two or more comments is a
campaign (summary.py).

Grouping runs behind intake; totals and the report wait until it has caught up with a closed
consultation."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import multiprocessing
import struct
import uuid
from array import array
from collections import defaultdict
from concurrent.futures import Executor, ProcessPoolExecutor

import asyncpg
from prometheus_client import Counter, Gauge

from services.consultation import signatures

log = logging.getLogger(__name__)

GROUPS_FORMED = Counter("policy_consultation_text_groups_total",
                        "Groups formed by a text like no earlier one.")
NEAR_DUPLICATES = Counter("policy_consultation_near_duplicate_texts_total",
                          "Distinct texts placed into the group of a near-identical one.")
UNGROUPED = Gauge("policy_consultation_ungrouped_texts",
                  "Texts found by intake and waiting for the grouper.")

TEXTS_PER_ROUND = 2_000
BUCKET_SIZE = 8
_LOCK_ID = int.from_bytes(hashlib.sha256(b"grouper:consultation").digest()[:8], "big",
                          signed=True)


# What crosses between the service and its signer's process is packed bytes and text, not
# tuples of ints and UUIDs: pickling those (in a thread of the service's process) and
# unpickling the answers took the service's CPU from intake, a tenth of its time during bulk
# intake (py-spy): 220-270 ms a round of 2,000 texts ten rounds into a consultation, now ~30.
# A group already in a bucket, as _place's query packs it: band, band key, group id, signature.
_ENTRY = struct.Struct(f">hq16s{signatures.SIGNATURE_BYTES}s")


def _sign(texts: list[str]) -> tuple[bytes, bytes]:
    """Returns the texts' signatures, packed one after the other, and their band keys
    (BANDS a text, int64)."""
    signed = [signatures.minhash(signatures.fold(text)) for text in texts]
    return (b"".join(map(signatures.pack, signed)),
            array("q", [key for signature in signed
                        for key in signatures.band_keys(signature)]).tobytes())


class _Index:
    """The groups of one consultation that share a band key with the texts being placed.

    A bucket keeps the first BUCKET_SIZE groups that fall into it, no more: texts of one
    topic share phrases, and a bucket that many of them fall into says little, while checking
    all of it would make grouping quadratic. Near-identical texts share several bands, so they
    still meet in another."""

    def __init__(self, buckets: defaultdict[tuple[int, int],
                                            list[tuple[uuid.UUID, tuple[int, ...]]]]) -> None:
        self.buckets = buckets

    def add(self, group_id: uuid.UUID, signature: tuple[int, ...],
            keys: list[int]) -> list[tuple[int, int]]:
        """Indexes a new group; returns the (band, key) buckets that had room for it."""
        added = []
        for band, key in enumerate(keys):
            bucket = self.buckets[(band, key)]
            if len(bucket) < BUCKET_SIZE:
                bucket.append((group_id, signature))
                added.append((band, key))
        return added

    def nearest(self, signature: tuple[int, ...], keys: list[int]) -> uuid.UUID | None:
        """Returns the most resembling group at or above the near-duplicate threshold."""
        candidates = {}
        for band, key in enumerate(keys):
            candidates.update(self.buckets.get((band, key), ()))
        best, best_score = None, signatures.NEAR_DUPLICATE
        for group_id, candidate in candidates.items():
            score = signatures.resemblance(signature, candidate)
            if score >= best_score:
                best, best_score = group_id, score
        return best


async def _place(conn: asyncpg.Connection, consultation_id: uuid.UUID,
                 texts: list[tuple[int, uuid.UUID, str]],
                 signer: Executor | None) -> tuple[list, list, list]:
    """Places one consultation's new texts — (key, first comment id, text) in the order they
    arrived; returns (texts rows, new groups, new bands)."""
    loop = asyncio.get_running_loop()
    signed, keys = await loop.run_in_executor(signer, _sign, [text for *_, text in texts])
    wanted = {(index % signatures.BANDS, key) for index, key in enumerate(array("q", keys))}
    # The groups already in those buckets, each with its signature, in one bytes value.
    entries = await conn.fetchval(
        "SELECT string_agg(int2send(b.band) || int8send(b.band_key) || uuid_send(b.group_id)"
        "                  || g.signature, ''::bytea)"
        " FROM group_bands b"
        " JOIN unnest($2::smallint[], $3::bigint[]) AS w(band, band_key) USING (band, band_key)"
        " JOIN text_groups g USING (group_id) WHERE b.consultation_id = $1",
        consultation_id, [w[0] for w in wanted], [w[1] for w in wanted])
    # Placing is pure computation, done where the texts were signed (a process of its own in
    # the service): in a thread it took the interpreter from intake a tenth of the time.
    placed, groups, bands, near_duplicates = await loop.run_in_executor(
        signer, _assign, str(consultation_id), [(key, str(first)) for key, first, _ in texts],
        signed, keys, entries or b"")
    NEAR_DUPLICATES.inc(near_duplicates)
    return placed, groups, bands


def _assign(consultation_id: str, texts: list[tuple[int, str]], signed: bytes, keys: bytes,
            entries: bytes) -> tuple[list, list, list, int]:
    """Places the texts — (key, first comment id) — given their signatures and band keys as
    _sign packed them and the groups already in their buckets as _place's query packed them;
    returns (texts rows, new groups, new bands, how many texts joined a group), ids as text."""
    known: dict[bytes, tuple[uuid.UUID, tuple[int, ...]]] = {}
    buckets: defaultdict[tuple[int, int], list] = defaultdict(list)
    for band, band_key, group_id, signature in _ENTRY.iter_unpack(entries):
        if group_id not in known:
            known[group_id] = (uuid.UUID(bytes=group_id), signatures.unpack(signature))
        buckets[(band, band_key)].append(known[group_id])
    index = _Index(buckets)
    band_keys = array("q", keys)
    placed, groups, bands, near_duplicates = [], [], [], 0
    for position, (text_key, first_comment_id) in enumerate(texts):
        packed = signed[position * signatures.SIGNATURE_BYTES:
                        (position + 1) * signatures.SIGNATURE_BYTES]
        signature = signatures.unpack(packed)
        text_keys = band_keys[position * signatures.BANDS:(position + 1) * signatures.BANDS]
        group_id = index.nearest(signature, text_keys)
        if group_id is None:
            group_id = uuid.uuid4()
            groups.append((str(group_id), consultation_id, packed, first_comment_id))
            bands += [(consultation_id, band, key, str(group_id))
                      for band, key in index.add(group_id, signature, text_keys)]
        else:
            near_duplicates += 1
        placed.append((consultation_id, text_key, str(group_id)))
    return placed, groups, bands, near_duplicates


async def _new_texts(conn: asyncpg.Connection,
                     taken: list[asyncpg.Record]) -> dict[uuid.UUID, list]:
    """Returns, per consultation, the taken texts not placed before — (key, first comment id,
    text) — each once, in the order they arrived."""
    first: dict[tuple[uuid.UUID, int], uuid.UUID] = {}
    for row in taken:
        text = (row["consultation_id"], row["text_key"])
        first[text] = min(first.get(text, row["first_comment_id"]), row["first_comment_id"])
    placed = {(row["consultation_id"], row["text_key"]) for row in await conn.fetch(
        "SELECT t.consultation_id, t.text_key FROM texts t"
        " JOIN unnest($1::uuid[], $2::bigint[]) AS w(consultation_id, text_key)"
        "      USING (consultation_id, text_key)",
        [c for c, _ in first], [k for _, k in first])}
    new = sorted((comment_id, text) for text, comment_id in first.items() if text not in placed)
    bodies = {row["comment_id"]: row["text"] for row in await conn.fetch(
        "SELECT comment_id, text FROM comments WHERE comment_id = ANY($1::uuid[])",
        [comment_id for comment_id, _ in new])}
    by_consultation: dict[uuid.UUID, list] = defaultdict(list)
    for comment_id, (consultation_id, text_key) in new:
        by_consultation[consultation_id].append((text_key, comment_id, bodies[comment_id]))
    return by_consultation


async def group_pending(pool: asyncpg.Pool, limit: int = TEXTS_PER_ROUND,
                        signer: Executor | None = None) -> int:
    """Takes up to `limit` rows of pending_texts and places their texts, signing them in
    `signer` (a worker thread by default); returns how many rows it took. One grouper works
    at a time (an advisory lock), so two near-identical texts never found two groups."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK_ID):
            return 0
        taken = await conn.fetch(
            "DELETE FROM pending_texts WHERE id IN ("
            "    SELECT id FROM pending_texts ORDER BY id LIMIT $1)"
            " RETURNING consultation_id, text_key, first_comment_id", limit)
        if not taken:
            return 0
        placed, groups, bands = [], [], []
        for consultation_id, texts in (await _new_texts(conn, taken)).items():
            texts_placed, formed, banded = await _place(conn, consultation_id, texts, signer)
            placed += texts_placed
            groups += formed
            bands += banded
        if groups:
            await conn.copy_records_to_table(
                "text_groups", records=groups,
                columns=("group_id", "consultation_id", "signature", "first_comment_id"))
            await conn.copy_records_to_table(
                "group_bands", records=bands,
                columns=("consultation_id", "band", "band_key", "group_id"))
        if placed:
            await conn.copy_records_to_table(
                "texts", records=placed, columns=("consultation_id", "text_key", "group_id"))
    GROUPS_FORMED.inc(len(groups))
    return len(taken)


async def waiting(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM pending_texts")


async def run(pool: asyncpg.Pool, stop: asyncio.Event, interval_s: float) -> None:
    """Groups until `stop` is set: round after round while texts wait, then every interval.
    Texts are signed and placed in a process of their own, so that grouping never takes the
    interpreter from intake. A failed round is logged and retried."""
    signer = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    try:
        while not stop.is_set():
            try:
                taken = await group_pending(pool, signer=signer)
                UNGROUPED.set(await waiting(pool))
            except Exception:
                log.exception("grouping failed; retrying")
                taken = 0
            if taken < TEXTS_PER_ROUND:
                try:
                    await asyncio.wait_for(stop.wait(), interval_s)
                except asyncio.TimeoutError:
                    pass
    finally:
        signer.shutdown(cancel_futures=True)
