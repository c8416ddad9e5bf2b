"""Window rules with a clock the test moves, in-process against the session's PostgreSQL:
opening from the submission for the configured length, the refusal of comments outside the
window, extension, closing when the end passes or the draft is adopted or withdrawn."""

from datetime import datetime, timedelta, timezone

import asyncpg
import grpc
import pytest

from policy.common.v1 import common_pb2
from policy.consultation.v1 import consultation_service_pb2 as api
from policy.consultation.v1 import events_pb2 as events
from policy.drafting.v1 import events_pb2 as drafting
from policykit.envelope import new_event
from policykit.reference import default as reference_data
from services.consultation import closing
from services.consultation.config import ConsultationSettings, parse_windows
from services.consultation.drafts import DraftEvents
from services.consultation.intake import Intake, Refused, Stored
from services.consultation.validation import CommentChecker
from services.consultation.tests.helpers import PSEUDONYM_KEY, comment

OPENED = datetime(2026, 3, 2, 1, 30, tzinfo=timezone.utc)


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def settings() -> ConsultationSettings:
    windows, default = parse_windows("LAW=P60D,DECREE=P30D,DEFAULT=P45D")
    return ConsultationSettings(windows=windows, default_window=default,
                                pseudonym_key=PSEUDONYM_KEY.encode(), max_in_flight=1_000,
                                source_rate=0, source_burst=1,
                                sweep_interval_s=1, report_port=0, report_base_url=None)


@pytest.fixture
async def intake(pool):
    clock = Clock(OPENED)
    intake = Intake(pool, clock, max_in_flight=1_000)
    intake.start()
    yield intake
    await intake.stop()


async def apply(pool: asyncpg.Pool, settings: ConsultationSettings, *payloads) -> None:
    for payload in payloads:
        await DraftEvents(pool, settings).handle(new_event(payload, "policy/drafting"))


async def open_draft(pool, settings, regulation_id: str,
                     regulation_type=common_pb2.REGULATION_TYPE_LAW) -> None:
    submitted = drafting.DraftSubmittedForConsultation(regulation_id=regulation_id, version=1)
    submitted.submitted_at.FromDatetime(OPENED)
    await apply(pool, settings, drafting.DraftRegistered(
        regulation_id=regulation_id, regulation_type=regulation_type,
        title="Nghị định về đất trồng lúa", lead_agency_id="bnnmt", version=1), submitted)


async def window(pool, regulation_id: str) -> asyncpg.Record:
    async with pool.acquire() as conn:
        return await conn.fetchrow(
            "SELECT state, opens_at, closes_at, closed_at, closing_reason FROM consultations"
            " WHERE regulation_id = $1", regulation_id)


async def outbox_types(pool) -> list[str]:
    async with pool.acquire() as conn:
        return [row["event_type"].rsplit(".", 1)[1] for row in await conn.fetch(
            "SELECT event_type FROM event_batches ORDER BY id")]


async def send(intake: Intake, regulation_id: str, at: datetime):
    intake.clock.now = at
    checker = CommentChecker(PSEUDONYM_KEY.encode(), reference_data())
    [outcome] = await (await intake.submit([checker.prepare(comment(regulation_id), at.date())]))
    return outcome


@pytest.mark.parametrize("regulation_type, length", [
    (common_pb2.REGULATION_TYPE_LAW, timedelta(days=60)),
    (common_pb2.REGULATION_TYPE_DECREE, timedelta(days=30)),
    (common_pb2.REGULATION_TYPE_CIRCULAR, timedelta(days=45)),
], ids=["law", "decree", "default"])
async def test_a_submitted_draft_opens_a_window_of_its_type_length(
        pool, settings, regulation_type, length):
    await open_draft(pool, settings, "d-1", regulation_type)
    opened = await window(pool, "d-1")
    assert (opened["state"], opened["opens_at"], opened["closes_at"]) == (
        api.CONSULTATION_STATE_OPEN, OPENED, OPENED + length)
    assert await outbox_types(pool) == ["ConsultationOpened"]


async def test_a_redelivered_submission_opens_nothing_twice(pool, settings):
    await open_draft(pool, settings, "d-1")
    submitted = new_event(drafting.DraftSubmittedForConsultation(regulation_id="d-1"),
                          "policy/drafting")
    events_ = DraftEvents(pool, settings)
    await events_.handle(submitted)
    await events_.handle(submitted)
    assert await outbox_types(pool) == ["ConsultationOpened"]


async def test_comments_are_taken_from_the_opening_until_the_end_only(pool, settings, intake):
    await open_draft(pool, settings, "d-1")
    assert isinstance(await send(intake, "d-1", OPENED), Stored)
    last_moment = OPENED + timedelta(days=60) - timedelta(microseconds=1)
    assert isinstance(await send(intake, "d-1", last_moment), Stored)
    late = await send(intake, "d-1", OPENED + timedelta(days=60))
    assert isinstance(late, Refused) and late.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "is closed" in late.reason


async def test_the_end_closes_the_window_durably_once(pool, settings, intake):
    await open_draft(pool, settings, "d-1")
    assert await closing.close_due(pool, OPENED + timedelta(days=59)) == 0
    assert await closing.close_due(pool, OPENED + timedelta(days=61)) == 1
    assert await closing.close_due(pool, OPENED + timedelta(days=62)) == 0
    closed = await window(pool, "d-1")
    assert (closed["state"], closed["closed_at"], closed["closing_reason"]) == (
        api.CONSULTATION_STATE_CLOSED, OPENED + timedelta(days=60),
        events.CLOSING_REASON_WINDOW_ENDED)
    refused = await send(intake, "d-1", OPENED + timedelta(days=1))
    assert isinstance(refused, Refused)  # closed is closed, whatever a clock says


@pytest.mark.parametrize("ending, reason", [
    (drafting.DraftAdopted(regulation_id="d-1", version=1), events.CLOSING_REASON_DRAFT_ADOPTED),
    (drafting.DraftWithdrawn(regulation_id="d-1", reason="Gộp vào luật khác"),
     events.CLOSING_REASON_DRAFT_WITHDRAWN),
], ids=["adopted", "withdrawn"])
async def test_adoption_or_withdrawal_while_open_closes_the_window_then(
        pool, settings, ending, reason):
    await open_draft(pool, settings, "d-1")
    field = "adopted_at" if isinstance(ending, drafting.DraftAdopted) else "withdrawn_at"
    getattr(ending, field).FromDatetime(OPENED + timedelta(days=10))
    await apply(pool, settings, ending)
    closed = await window(pool, "d-1")
    assert (closed["state"], closed["closed_at"], closed["closing_reason"]) == (
        api.CONSULTATION_STATE_CLOSED, OPENED + timedelta(days=10), reason)


async def test_adoption_after_the_end_keeps_the_end_as_the_reason(pool, settings):
    await open_draft(pool, settings, "d-1")
    adopted = drafting.DraftAdopted(regulation_id="d-1", version=1)
    adopted.adopted_at.FromDatetime(OPENED + timedelta(days=90))
    await apply(pool, settings, adopted)
    closed = await window(pool, "d-1")
    assert (closed["closed_at"], closed["closing_reason"]) == (
        OPENED + timedelta(days=60), events.CLOSING_REASON_WINDOW_ENDED)


async def test_a_revised_title_is_kept_for_the_report(pool, settings):
    await open_draft(pool, settings, "d-1")
    await apply(pool, settings, drafting.DraftRevised(regulation_id="d-1", version=2,
                                                      title="Nghị định (sửa đổi lần 2)"))
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT title FROM drafts WHERE regulation_id = 'd-1'") == (
            "Nghị định (sửa đổi lần 2)")
