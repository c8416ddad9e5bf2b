"""Comment intake: prepared comments are stored in batches, with their CommentReceived events,
by a few writers, each batch in one transaction; every caller waits for its comments to be
stored before it answers.

Unary calls and bulk streams share the writers, so thousands of unary comments a second cost
tens of transactions, not thousands (group commit): while one writer works, comments gather,
and a second writer joins in only once enough have gathered to be worth a transaction of its
own. A batch is one COPY of its comments, one COPY of its new texts for the grouper and one
outbox row for all its CommentReceived events.

The comments accepted but not yet stored are bounded by `max_in_flight`: a submission that
does not fit waits in line up to its `wait_s` (a bulk stream a while, so that it is paced; a
unary call not at all), then fails with IntakeFull, which the API turns into
RESOURCE_EXHAUSTED with a retry delay — the service slows its callers down instead of queueing
without limit. A comment counts as accepted only once its transaction committed.

A batch checks each comment's window under a key-share lock on its consultation, which the
closing of a window waits for: a comment is stored only while its window is open."""

from __future__ import annotations

import asyncio
import collections
import logging
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import asyncpg
import grpc
from prometheus_client import Counter, Gauge

from policy.consultation.v1 import consultation_service_pb2 as api
from policy.consultation.v1 import events_pb2 as events

from policykit import audit
from policykit.ids import uuid_text
from services.consultation import outbox
from services.consultation.validation import PreparedComment

log = logging.getLogger(__name__)

COMMENTS_STORED = Counter("policy_consultation_comments_accepted_total",
                          "Comments stored, flagged ones included.")
COMMENTS_FLAGGED = Counter("policy_consultation_comments_flagged_total",
                           "Comments stored flagged because their text looked corrupted.")
COMMENTS_RESUBMITTED = Counter("policy_consultation_comments_resubmitted_total",
                               "Comments submitted again under a key already stored.")
COMMENTS_REFUSED = Counter("policy_consultation_comments_rejected_total",
                           "Comments refused, by the field at fault.", ["field"])
INTAKE_FULL = Counter("policy_consultation_intake_full_total",
                      "Submissions turned away with RESOURCE_EXHAUSTED.")
IN_FLIGHT = Gauge("policy_consultation_intake_in_flight",
                  "Comments accepted for storage and not yet stored.")

COMMENT_RECEIVED = events.CommentReceived.DESCRIPTOR.full_name
COMMENT_COLUMNS = (
    "comment_id", "consultation_id", "idempotency_key", "received_at", "stakeholder_type",
    "province_code", "province_id", "article_ref", "article", "text", "text_key",
    "flagged_corrupted", "commenter_pseudonym", "contact_name", "contact_email",
    "contact_phone", "contact_organisation")
OPEN = api.CONSULTATION_STATE_OPEN
# Attempts at a batch that collided with a concurrent one storing the same keys.
ATTEMPTS = 3
# Comments waiting that make another writer start a transaction beside the busy ones.
JOIN_AT = 32


@dataclass(frozen=True, slots=True)
class Stored:
    comment_id: str
    flagged: bool
    resubmitted: bool


@dataclass(frozen=True, slots=True)
class Refused:
    """A comment its consultation does not take: no such draft, or outside the window."""

    field: str
    reason: str
    code: grpc.StatusCode


Outcome = Stored | Refused


class IntakeFull(Exception):
    """More comments are in flight than the service is configured to hold."""

    def __init__(self, in_flight: int, retry_after_s: float):
        super().__init__(f"{in_flight} comments are waiting to be stored; retry in "
                         f"{retry_after_s:.1f} s with the same idempotency keys")
        self.retry_after_s = retry_after_s


class IntakeUnavailable(Exception):
    """The comments could not be stored (the database failed); nothing of the batch was."""


def new_comment_id(now: datetime, sequence: int) -> str:
    """Returns a UUIDv7 ordered by time, then by `sequence` (the comment's place in its batch,
    below 4096): new comments append to the primary key's index, and ids sort as comments
    arrived. It is returned as text (policykit.ids)."""
    value = (int(now.timestamp() * 1000) << 80) | (0x7 << 76) | (sequence << 64)
    return uuid_text(value | (0b10 << 62) | random.getrandbits(62))


@dataclass
class _Job:
    comments: list[PreparedComment]
    done: asyncio.Future
    caller: audit.Caller  # the writers run outside the calls: the audit log needs the caller


class Intake:
    """The writers and the bound on comments in flight."""

    def __init__(self, pool: asyncpg.Pool, clock: Callable[[], datetime], max_in_flight: int,
                 *, writers: int = 4, batch_rows: int = 2_000,
                 on_stored: Callable[[], None] = lambda: None):
        self.pool = pool
        self.clock = clock
        self.max_in_flight = max_in_flight
        self.batch_rows = batch_rows
        self.on_stored = on_stored
        self.in_flight = 0
        self._writers = writers
        self._jobs: collections.deque[_Job] = collections.deque()
        self._queued = 0
        self._writing = 0
        self._changed = asyncio.Event()
        self._waiting: collections.deque[tuple[int, asyncio.Future]] = collections.deque()
        self._tasks: list[asyncio.Task] = []
        self._rows_per_second = 5_000.0  # refined as batches are stored

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._write_forever(), name=f"intake-writer-{n}")
                       for n in range(self._writers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def submit(self, comments: list[PreparedComment], *,
                     wait_s: float = 0.0) -> asyncio.Future:
        """Queues comments for storage; returns a future of their outcomes, in order. Raises
        IntakeFull when they do not fit within wait_s; one submission always fits an idle
        intake."""
        if self._waiting or not self._fits(len(comments)):
            await self._wait_for_room(len(comments), wait_s)
        else:
            self._adjust(len(comments))
        job = _Job(comments, asyncio.get_running_loop().create_future(), audit.caller())
        self._jobs.append(job)
        self._queued += len(comments)
        self._changed.set()
        return job.done

    def _fits(self, count: int) -> bool:
        return not self.in_flight or self.in_flight + count <= self.max_in_flight

    async def _wait_for_room(self, count: int, wait_s: float) -> None:
        """Waits in line until `count` comments fit; their room is taken when this returns."""
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append((count, turn))
        try:
            await asyncio.wait_for(asyncio.shield(turn), wait_s)
        except BaseException as error:
            if turn.done():  # let in meanwhile
                if isinstance(error, asyncio.TimeoutError):
                    return
                self._release(count)
                raise
            self._waiting.remove((count, turn))
            if not isinstance(error, asyncio.TimeoutError):
                raise
            INTAKE_FULL.inc()
            # Long enough for about half of what is in flight to be stored.
            retry_after = min(5.0, max(0.05, self.in_flight / 2 / self._rows_per_second))
            raise IntakeFull(self.in_flight, retry_after) from None

    def _release(self, count: int) -> None:
        """Frees the room of stored comments and lets in who waits, in order."""
        self._adjust(-count)
        while self._waiting and self._fits(self._waiting[0][0]):
            waiting, turn = self._waiting.popleft()
            self._adjust(waiting)
            turn.set_result(None)

    def _adjust(self, delta: int) -> None:
        self.in_flight += delta
        IN_FLIGHT.set(self.in_flight)

    def _worth_writing(self) -> bool:
        return bool(self._jobs) and (not self._writing
                                     or self._queued >= JOIN_AT)

    def _take(self) -> list[_Job]:
        jobs, rows = [], 0
        while self._jobs and (not jobs or rows + len(self._jobs[0].comments) <= self.batch_rows):
            job = self._jobs.popleft()
            jobs.append(job)
            rows += len(job.comments)
        self._queued -= rows
        return jobs

    async def _write_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._worth_writing():
                self._changed.clear()
                await self._changed.wait()
            jobs = self._take()
            self._writing += 1
            comments = [comment for job in jobs for comment in job.comments]
            callers = [job.caller for job in jobs for _ in job.comments]
            started = loop.time()
            try:
                outcomes = await self._write(comments, callers)
            except Exception as error:
                log.exception("storing %d comment(s) failed", len(comments))
                failure = IntakeUnavailable(f"comments not stored ({type(error).__name__}); "
                                            "retry with the same idempotency keys")
                for job in jobs:
                    if not job.done.done():
                        job.done.set_exception(failure)
            else:
                elapsed = max(loop.time() - started, 1e-3)
                self._rows_per_second = 0.8 * self._rows_per_second + 0.2 * len(comments) / elapsed
                at = 0
                for job in jobs:
                    if not job.done.done():
                        job.done.set_result(outcomes[at:at + len(job.comments)])
                    at += len(job.comments)
                self.on_stored()
            finally:
                self._writing -= 1
                self._release(len(comments))
                self._changed.set()

    async def _write(self, comments: list[PreparedComment],
                     callers: list[audit.Caller]) -> list[Outcome]:
        """Stores the comments that their consultations take, in one transaction, and
        returns each comment's outcome; `callers` submitted them, one per comment."""
        # Resubmissions are rare: a batch is first stored without looking its keys up, and
        # only when one is taken (the unique key refuses the batch) again, looking them up.
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    outcomes = await _store(conn, comments, callers, self.clock(),
                                            look_up_keys=attempt > 1)
                break
            except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError):
                if attempt == ATTEMPTS:
                    raise
        for outcome in outcomes:
            if isinstance(outcome, Refused):
                COMMENTS_REFUSED.labels(outcome.field).inc()
            elif outcome.resubmitted:
                COMMENTS_RESUBMITTED.inc()
            else:
                COMMENTS_STORED.inc()
                if outcome.flagged:
                    COMMENTS_FLAGGED.inc()
        return outcomes


async def _windows(conn: asyncpg.Connection, regulation_ids: list[str],
                   now: datetime) -> tuple[dict[str, asyncpg.Record], dict[str, Refused]]:
    """Returns the open consultations among the regulations, locked against closing until
    the transaction ends, and why each other regulation takes no comment."""
    rows = await conn.fetch(
        "SELECT consultation_id, regulation_id, state, opens_at, closes_at, closed_at"
        " FROM consultations WHERE regulation_id = ANY($1::text[])"
        " ORDER BY consultation_id FOR KEY SHARE", regulation_ids)
    open_, refused = {}, {}
    for row in rows:
        if row["state"] == OPEN and row["opens_at"] <= now < row["closes_at"]:
            open_[row["regulation_id"]] = row
        else:
            until = min(row["closed_at"] or row["closes_at"], row["closes_at"])
            refused[row["regulation_id"]] = Refused(
                "regulation_id", f"the consultation on {row['regulation_id']} is closed: it "
                f"took comments from {row['opens_at'].isoformat()} until {until.isoformat()}",
                grpc.StatusCode.FAILED_PRECONDITION)
    missing = [r for r in regulation_ids if r not in open_ and r not in refused]
    if missing:
        drafts = {row["regulation_id"] for row in await conn.fetch(
            "SELECT regulation_id FROM drafts WHERE regulation_id = ANY($1::text[])", missing)}
        for regulation_id in missing:
            refused[regulation_id] = (
                Refused("regulation_id", f"draft {regulation_id} is not open for consultation",
                        grpc.StatusCode.FAILED_PRECONDITION) if regulation_id in drafts else
                Refused("regulation_id", f"no draft {regulation_id} is known",
                        grpc.StatusCode.NOT_FOUND))
    return open_, refused


async def _store(conn: asyncpg.Connection, comments: list[PreparedComment],
                 callers: list[audit.Caller], now: datetime,
                 look_up_keys: bool) -> list[Outcome]:
    open_, refused = await _windows(conn, sorted({c.regulation_id for c in comments}), now)
    consultation_of = {r: row["consultation_id"] for r, row in open_.items()}
    wanted = [(consultation_of[c.regulation_id], c.idempotency_key)
              for c in comments if c.regulation_id in consultation_of]
    known: dict[tuple, Stored] = {}
    if wanted and look_up_keys:
        for row in await conn.fetch(
                "SELECT c.consultation_id, c.idempotency_key, c.comment_id, c.flagged_corrupted"
                " FROM comments c JOIN unnest($1::uuid[], $2::text[]) AS k(consultation_id,"
                " idempotency_key) USING (consultation_id, idempotency_key)",
                [w[0] for w in wanted], [w[1] for w in wanted]):
            known[(row["consultation_id"], row["idempotency_key"])] = Stored(
                str(row["comment_id"]), row["flagged_corrupted"], resubmitted=True)

    outcomes: list[Outcome] = []
    records: list[tuple] = []
    # Per regulation: the CommentReceived template, event ids, payloads, new texts, callers.
    received: dict[str, tuple[events.CommentReceived, list, list, dict, list]] = {}
    for sequence, comment in enumerate(comments):
        consultation_id = consultation_of.get(comment.regulation_id)
        if consultation_id is None:
            outcomes.append(refused[comment.regulation_id])
            continue
        key = (consultation_id, comment.idempotency_key)
        earlier = known.get(key)
        if earlier is not None:  # stored before, or earlier in this batch
            outcomes.append(earlier if earlier.resubmitted else
                            Stored(earlier.comment_id, earlier.flagged, resubmitted=True))
            continue
        comment_id = new_comment_id(now, sequence)
        known[key] = stored = Stored(comment_id, comment.flagged, resubmitted=False)
        outcomes.append(stored)
        records.append((
            comment_id, consultation_id, comment.idempotency_key, now, comment.stakeholder_type,
            comment.province_code, comment.province_id, comment.article_ref, comment.article,
            comment.text, comment.text_key, comment.flagged, comment.pseudonym, *comment.contact))
        if comment.regulation_id not in received:
            template = events.CommentReceived(regulation_id=comment.regulation_id,
                                              consultation_id=str(consultation_id))
            template.received_at.FromDatetime(now)
            received[comment.regulation_id] = (template, [], [], {}, [])
        event, event_ids, payloads, texts, submitted_by = received[comment.regulation_id]
        event.comment_id = comment_id
        event.commenter_pseudonym = comment.pseudonym
        event.stakeholder_type = comment.stakeholder_type
        event.province_code = comment.province_code
        event.article_ref = comment.article_ref
        event.flagged_corrupted_text = comment.flagged
        event_ids.append(comment_id)
        payloads.append(event.SerializeToString())
        submitted_by.append(callers[sequence])
        if not comment.flagged:
            texts.setdefault(comment.text_key, comment_id)

    if records:
        await conn.copy_records_to_table("comments", records=records, columns=COMMENT_COLUMNS)
    pending = [(consultation_of[regulation_id], key, comment_id)
               for regulation_id, (_, _, _, texts, _) in received.items()
               for key, comment_id in texts.items()]
    if pending:
        await conn.copy_records_to_table("pending_texts", records=pending,
                                         columns=("consultation_id", "text_key",
                                                  "first_comment_id"))
    for regulation_id, (_, event_ids, payloads, _, submitted_by) in received.items():
        await outbox.enqueue_batch(conn, regulation_id, consultation_of[regulation_id],
                                   COMMENT_RECEIVED, now, event_ids, payloads,
                                   callers=submitted_by)
    return outcomes
