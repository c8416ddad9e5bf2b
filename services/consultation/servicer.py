"""The ConsultationService gRPC API: comment intake (unary and bulk), extensions, answers,
and reads of consultations, comments, campaigns and reports.

Comments go through validation.CommentChecker and intake.Intake; extensions and answers are
applied once per idempotency key, each with its event, in one transaction. Only the draft's
lead agency extends, answers and reads the comments (access.py)."""

from __future__ import annotations

import collections
import uuid
from datetime import datetime, timezone
from typing import AsyncIterator, Callable

import asyncpg
import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from policy.consultation.v1 import consultation_service_pb2 as api
from policy.consultation.v1 import consultation_service_pb2_grpc as api_grpc
from policy.consultation.v1 import events_pb2 as events
from policykit import auth, idempotency
from policykit.errors import FailedPrecondition, FieldViolations, NotFound
from policykit.reference import ReferenceData, UnknownReference

from services.consultation import outbox, storage, summary
from services.consultation.intake import (
    COMMENTS_REFUSED, Intake, IntakeFull, IntakeUnavailable, Refused, Stored)
from services.consultation.rate_limits import SourceOverLimit, SourceRateLimits, source_of
from services.consultation.validation import (
    MAX_COMMENTS_PER_MESSAGE, CommentChecker, article_filter, check_answer, check_extension,
    check_regulation, decode_token, encode_token, page_size, prefixed)

# Messages of one stream being stored at once: the stream reads on while they are.
STREAM_WINDOW = 2
# How long a bulk stream's message may wait for room before the stream is turned away; a
# unary call does not wait.
STREAM_ADMISSION_WAIT_S = 10.0


class ConsultationServicer(api_grpc.ConsultationServiceServicer):
    def __init__(self, pool: asyncpg.Pool, intake: Intake, checker: CommentChecker,
                 reference: ReferenceData, clock: Callable[[], datetime],
                 report_url: Callable[[str], str], on_change: Callable[[], None],
                 rate_limits: SourceRateLimits):
        self.pool = pool
        self.rate_limits = rate_limits
        self.intake = intake
        self.checker = checker
        self.reference = reference
        self.clock = clock
        self.report_url = report_url
        self.on_change = on_change
        # Calls that may still write events; the relay drains after them at shutdown.
        self.writing_calls = 0

    async def _consultation(self, conn: asyncpg.Connection, regulation_id: str, *,
                            lock: str = "") -> asyncpg.Record:
        consultation = await storage.find_consultation(conn, regulation_id, lock=lock)
        if consultation is None:
            raise NotFound(f"no consultation on regulation {regulation_id!r}")
        return consultation

    async def _as_lead_agency(self, conn: asyncpg.Connection, regulation_id: str,
                              action: str) -> asyncpg.Record:
        """The consultation, once the caller is known to speak for its draft's lead agency."""
        row = await self._consultation(conn, regulation_id)
        auth.require(auth.speaks_for(row["lead_agency_id"]),
                     f"{action} on the consultation of {row['lead_agency_id']}")
        return row

    async def _view(self, conn: asyncpg.Connection, row: asyncpg.Record) -> api.Consultation:
        return storage.consultation_view(
            row, await summary.comments_received(conn, row["consultation_id"]),
            await summary.comments_answered(conn, row["consultation_id"]))

    async def GetConsultation(self, request: api.GetConsultationRequest,
                              context: grpc.aio.ServicerContext) -> api.GetConsultationResponse:
        check_regulation(request)
        async with self.pool.acquire() as conn:
            row = await self._consultation(conn, request.regulation_id)
            return api.GetConsultationResponse(consultation=await self._view(conn, row))

    async def ExtendConsultation(
            self, request: api.ExtendConsultationRequest,
            context: grpc.aio.ServicerContext) -> api.ExtendConsultationResponse:
        idempotency.check_key(request.idempotency_key)
        reason = check_extension(request)
        closes_at = request.closes_at.ToDatetime(tzinfo=timezone.utc)
        # Before the idempotent change: a response remembered for one agency's key is never
        # handed to another.
        async with self.pool.acquire() as conn:
            await self._as_lead_agency(conn, request.regulation_id, "extend")

        async def extend(conn: asyncpg.Connection) -> api.ExtendConsultationResponse:
            row = await self._consultation(conn, request.regulation_id, lock="FOR UPDATE")
            now = self.clock()
            if row["state"] != api.CONSULTATION_STATE_OPEN or now >= row["closes_at"]:
                raise FailedPrecondition(
                    f"the consultation on {request.regulation_id} ended at "
                    f"{(row['closed_at'] or row['closes_at']).isoformat()}; only an open "
                    "window can be extended")
            if closes_at <= row["closes_at"]:
                violations = FieldViolations()
                violations.add("closes_at", "must be later than the window's current end, "
                                            f"{row['closes_at'].isoformat()}")
                raise violations
            await conn.execute("UPDATE consultations SET closes_at = $2"
                               " WHERE consultation_id = $1", row["consultation_id"], closes_at)
            await conn.execute(
                "INSERT INTO extensions (consultation_id, extended_at, previous_closes_at,"
                " closes_at, reason) VALUES ($1, $2, $3, $4, $5)",
                row["consultation_id"], now, row["closes_at"], closes_at, reason)
            extended = events.ConsultationExtended(
                regulation_id=request.regulation_id, consultation_id=str(row["consultation_id"]),
                reason=reason)
            storage.timestamp(closes_at, extended.closes_at)
            await outbox.enqueue(conn, extended, consultation_id=row["consultation_id"], time=now)
            row = await self._consultation(conn, request.regulation_id)
            return api.ExtendConsultationResponse(consultation=await self._view(conn, row))

        return await self._writing(idempotency.once(
            self.pool, request, "ExtendConsultation",
            api.ExtendConsultationResponse, extend))

    async def _writing(self, call):
        """Awaits a call that writes events, counted for the relay's drain at shutdown, and
        wakes the relay once it is done."""
        self.writing_calls += 1
        try:
            return await call
        finally:
            self.writing_calls -= 1
            self.on_change()

    async def SubmitComment(self, request: api.SubmitCommentRequest,
                            context: grpc.aio.ServicerContext) -> api.SubmitCommentResponse:
        try:
            prepared = self.checker.prepare(request.comment, self.clock().date())
        except FieldViolations as error:
            for field, _ in error.violations:
                COMMENTS_REFUSED.labels(field.partition("[")[0]).inc()
            raise prefixed(error, "comment") from None
        try:
            self.rate_limits.admit(source_of(auth.current_principal(), context.peer()))
            [outcome] = await self._writing(await self.intake.submit([prepared]))
        except (SourceOverLimit, IntakeFull) as error:
            await _abort_full(context, error)
        except IntakeUnavailable as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        if isinstance(outcome, Refused):
            if outcome.code == grpc.StatusCode.NOT_FOUND:
                raise NotFound(outcome.reason)
            raise FailedPrecondition(outcome.reason)
        return api.SubmitCommentResponse(comment_id=outcome.comment_id,
                                         flagged_corrupted_text=outcome.flagged,
                                         resubmitted=outcome.resubmitted)

    async def SubmitComments(self, request_iterator: AsyncIterator[api.SubmitCommentsRequest],
                             context: grpc.aio.ServicerContext) -> api.SubmitCommentsResponse:
        return await self._writing(self._submit_stream(request_iterator, context))

    async def _submit_stream(self, request_iterator, context) -> api.SubmitCommentsResponse:
        response = api.SubmitCommentsResponse()
        pending: collections.deque = collections.deque()
        position = 0
        problem: Exception | None = None
        source = source_of(auth.current_principal(), context.peer())
        async for request in request_iterator:
            if len(request.comments) > MAX_COMMENTS_PER_MESSAGE:
                problem = FieldViolations()
                problem.add("comments", f"must be at most {MAX_COMMENTS_PER_MESSAGE} a message, "
                                        f"got {len(request.comments)}")
                break
            today = self.clock().date()
            batch, keys, positions = [], [], []
            for comment in request.comments:
                try:
                    batch.append(self.checker.prepare(comment, today))
                    keys.append(comment.idempotency_key)
                    positions.append(position)
                except FieldViolations as error:
                    _reject(response, comment.idempotency_key, position, error.violations)
                position += 1
            if not batch:
                continue
            try:
                self.rate_limits.admit(source, len(batch))
                pending.append((await self.intake.submit(batch, wait_s=STREAM_ADMISSION_WAIT_S),
                                keys, positions))
            except (SourceOverLimit, IntakeFull) as error:
                problem = error
                break
            while len(pending) > STREAM_WINDOW:
                problem = await _settle(response, *pending.popleft())
                if problem:
                    break
            if problem:
                break
        while pending:  # what was accepted for storage is stored before the call ends
            problem = await _settle(response, *pending.popleft()) or problem
        if isinstance(problem, (SourceOverLimit, IntakeFull)):
            await _abort_full(context, problem)
        if isinstance(problem, IntakeUnavailable):
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(problem))
        if problem:
            raise problem
        return response

    async def AnswerComments(self, request: api.AnswerCommentsRequest,
                             context: grpc.aio.ServicerContext) -> api.AnswerCommentsResponse:
        idempotency.check_key(request.idempotency_key)
        answer = check_answer(request)
        async with self.pool.acquire() as conn:
            await self._as_lead_agency(conn, answer.regulation_id, "answer comments")

        async def record(conn: asyncpg.Connection) -> api.AnswerCommentsResponse:
            # Not FOR UPDATE: answering waits for no comment being stored, only for a report
            # being produced, which must see this answer or be made stale by it.
            row = await self._consultation(conn, answer.regulation_id, lock="FOR NO KEY UPDATE")
            if row["closing_reason"] == events.CLOSING_REASON_DRAFT_WITHDRAWN:
                raise FailedPrecondition(f"draft {answer.regulation_id} was withdrawn; its "
                                         "consultation takes no answers")
            answer_id, now = uuid.uuid4(), self.clock()
            if answer.comment_ids:
                answered = await _answer_comments(conn, row["consultation_id"], answer, answer_id)
            else:
                answered = await _answer_campaign(conn, row["consultation_id"], answer, answer_id)
            agency = self._agency_on(row["lead_agency_id"], now)
            await conn.execute(
                "INSERT INTO answers (answer_id, consultation_id, outcome, explanation,"
                " answered_by_agency_id, answered_at, campaign_id, comments)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                answer_id, row["consultation_id"], answer.outcome, answer.explanation, agency,
                now, answer.campaign_id, answered)
            await conn.execute("UPDATE consultations SET answers_version = answers_version + 1"
                               " WHERE consultation_id = $1", row["consultation_id"])
            event = events.CommentAnswered(
                regulation_id=answer.regulation_id, consultation_id=str(row["consultation_id"]),
                comment_ids=[str(c) for c in answer.comment_ids],
                campaign_id=str(answer.campaign_id or ""), outcome=answer.outcome,
                explanation=answer.explanation, answered_by_agency_id=agency,
                comments=answered, answer_id=str(answer_id))
            storage.timestamp(now, event.answered_at)
            await outbox.enqueue(conn, event, consultation_id=row["consultation_id"], time=now)
            return api.AnswerCommentsResponse(comments_answered=answered,
                                              answer_id=str(answer_id))

        return await self._writing(idempotency.once(
            self.pool, request, "AnswerComments", api.AnswerCommentsResponse,
            record))

    def _agency_on(self, agency_id: str, now: datetime) -> str:
        """The lead agency answering today: its successor if it merged since drafting."""
        try:
            return self.reference.agency_on(agency_id, now.date()).id
        except UnknownReference:
            return agency_id

    async def ListComments(self, request: api.ListCommentsRequest,
                           context: grpc.aio.ServicerContext) -> api.ListCommentsResponse:
        violations = FieldViolations()
        size = page_size(violations, request.page)
        after = decode_token(violations, request.page.page_token, (uuid.UUID,))
        campaign_id = None
        if request.campaign_id:
            try:
                campaign_id = uuid.UUID(request.campaign_id)
            except ValueError:
                violations.add("campaign_id", "is not a campaign id")
        article = article_filter(violations, request.article)
        check_regulation(request)
        violations.raise_if_any()
        async with self.pool.acquire() as conn:
            row = await self._as_lead_agency(conn, request.regulation_id, "read the comments")
            comments, last = await storage.list_comments(conn, storage.CommentQuery(
                consultation_id=row["consultation_id"], article=article,
                campaign_id=campaign_id, unanswered_only=request.unanswered_only,
                flagged_only=request.flagged_only, after=after and after[0], page_size=size))
        response = api.ListCommentsResponse(comments=comments)
        response.page.next_page_token = encode_token(last) if last else ""
        return response

    async def ListCampaigns(self, request: api.ListCampaignsRequest,
                            context: grpc.aio.ServicerContext) -> api.ListCampaignsResponse:
        violations = FieldViolations()
        size = page_size(violations, request.page)
        after = decode_token(violations, request.page.page_token, (int, uuid.UUID))
        check_regulation(request)
        violations.raise_if_any()
        async with self.pool.acquire() as conn:
            row = await self._as_lead_agency(conn, request.regulation_id, "read the campaigns")
            campaigns, last = await storage.list_campaigns(conn, row["consultation_id"], after,
                                                           size)
        response = api.ListCampaignsResponse(campaigns=campaigns)
        response.page.next_page_token = encode_token(*last) if last else ""
        return response

    async def GetConsultationReport(
            self, request: api.GetConsultationReportRequest,
            context: grpc.aio.ServicerContext) -> api.GetConsultationReportResponse:
        check_regulation(request)
        async with self.pool.acquire() as conn:
            row = await storage.report(conn, request.regulation_id)
        if row is None:
            raise NotFound(f"no consultation on regulation {request.regulation_id!r}")
        if row["report_html"] is None:
            if row["closing_reason"] == events.CLOSING_REASON_DRAFT_WITHDRAWN:
                raise FailedPrecondition(f"draft {request.regulation_id} was withdrawn; its "
                                         "consultation has no report")
            if row["state"] == api.CONSULTATION_STATE_OPEN:
                raise FailedPrecondition(
                    f"the consultation on {request.regulation_id} is open until "
                    f"{row['closes_at'].isoformat()}; its report follows its closing")
            raise FailedPrecondition(f"the report on {request.regulation_id} is being "
                                     "produced; retry in a few seconds")
        response = api.GetConsultationReportResponse(
            html=row["report_html"], summary=storage.summary_of(row),
            version=row["report_version"], report_url=self.report_url(request.regulation_id))
        storage.timestamp(row["report_published_at"], response.published_at)
        return response


def _reject(response: api.SubmitCommentsResponse, key: str, position: int,
            violations: list[tuple[str, str]]) -> None:
    (field, reason), *others = violations
    reason += "".join(f"; {f}: {r}" for f, r in others)
    response.rejected.add(idempotency_key=key, field=field, reason=reason, position=position)
    for field, _ in violations:
        COMMENTS_REFUSED.labels(field.partition("[")[0]).inc()


async def _settle(response: api.SubmitCommentsResponse, stored, keys: list[str],
                  positions: list[int]) -> Exception | None:
    """Adds a stored batch's outcomes to the response; returns the storage failure, if any."""
    try:
        outcomes = await stored
    except IntakeUnavailable as error:
        return error
    for outcome, key, position in zip(outcomes, keys, positions):
        if isinstance(outcome, Stored):
            response.accepted += 1
            response.resubmitted += outcome.resubmitted
            response.flagged_corrupted_text += outcome.flagged
        else:
            response.rejected.add(idempotency_key=key, field=outcome.field,
                                  reason=outcome.reason, position=position)
    return None


async def _abort_full(context: grpc.aio.ServicerContext,
                      error: SourceOverLimit | IntakeFull) -> None:
    """Aborts with RESOURCE_EXHAUSTED and a google.rpc.RetryInfo saying when to retry."""
    delay = duration_pb2.Duration()
    delay.FromMilliseconds(int(error.retry_after_s * 1000))
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    await context.abort_with_status(rpc_status.to_status(status_pb2.Status(
        code=code_pb2.RESOURCE_EXHAUSTED, message=str(error), details=[detail])))


async def _answer_comments(conn: asyncpg.Connection, consultation_id: uuid.UUID,
                           answer, answer_id: uuid.UUID) -> int:
    found = {row["comment_id"] for row in await conn.fetch(
        "UPDATE comments SET answer_id = $3 WHERE consultation_id = $1"
        " AND comment_id = ANY($2::uuid[]) RETURNING comment_id",
        consultation_id, answer.comment_ids, answer_id)}
    violations = FieldViolations()
    for index, comment_id in enumerate(answer.comment_ids):
        if comment_id not in found:
            violations.add(f"comment_ids[{index}]", "is not a comment of this consultation")
    violations.raise_if_any()  # and the transaction rolls the updates back
    return len(found)


async def _answer_campaign(conn: asyncpg.Connection, consultation_id: uuid.UUID,
                           answer, answer_id: uuid.UUID) -> int:
    comments = await conn.fetchval(
        "SELECT count(*) FROM text_groups g JOIN texts t ON t.group_id = g.group_id"
        " JOIN comments c ON c.consultation_id = t.consultation_id AND c.text_key = t.text_key"
        " WHERE g.group_id = $2 AND g.consultation_id = $1 AND NOT c.flagged_corrupted",
        consultation_id, answer.campaign_id)
    if comments < 2:
        violations = FieldViolations()
        violations.add("campaign_id", "is not a campaign of this consultation")
        raise violations
    await conn.execute("UPDATE text_groups SET answer_id = $2 WHERE group_id = $1",
                       answer.campaign_id, answer_id)
    return comments
