"""What the publication service records about a regulation: its promulgation (with the
effective date and the timers counted from it), its amendment or repeal by another
regulation, and its spokesperson's releases. Each change is checked against what the service
knows of the regulations, stored and emitted in the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
from google.protobuf.message import Message

from policy.publication.v1 import events_pb2 as publication
from policy.publication.v1 import publication_service_pb2 as api
from policykit.errors import FailedPrecondition, FieldViolations, NotFound

from services.publication import storage, timers
from services.publication.effective_dates import shift
from services.publication.publishing import emit
from services.publication.settings import PublicationSettings
from services.publication.storage import Regulation, optional_time, status_name

# A regulation can be amended or repealed, and amend or repeal another, in these statuses.
LINKABLE = (api.REGULATION_STATUS_PUBLISHED, api.REGULATION_STATUS_EFFECTIVE)


async def _known(conn: asyncpg.Connection, regulation_id: str, field: str) -> Regulation:
    regulation = await storage.get_regulation(conn, regulation_id, lock=True)
    if regulation is None:
        raise NotFound(f"{field}: no regulation {regulation_id!r} is known; the publication "
                       "service learns of regulations from DraftRegistered on policy.drafting.v1")
    return regulation


def _promulgation(request: api.RecordPromulgationRequest, regulation: Regulation,
                  settings: PublicationSettings) -> api.Promulgation:
    promulgation = api.Promulgation(
        regulation_id=request.regulation_id, document_number=request.document_number,
        signer=request.signer, gazette_number=request.gazette_number,
        signed_at=request.signed_at, gazette_published_at=request.gazette_published_at)
    if request.HasField("effective_at"):
        promulgation.effective_at.CopyFrom(request.effective_at)
        promulgation.effective_date_override_reason = request.effective_date_override_reason
    else:
        promulgation.effective_at.FromDatetime(settings.rules.effective_at(
            regulation.regulation_type, optional_time(request, "signed_at")))
        promulgation.effective_date_rule = settings.rules.rule(regulation.regulation_type)
    return promulgation


async def _schedule_timers(conn: asyncpg.Connection, promulgation: api.Promulgation,
                           settings: PublicationSettings, now: datetime) -> None:
    """Schedules the effective event, the reminder before it (unless that time has passed)
    and the post-implementation review reminder."""
    regulation_id = promulgation.regulation_id
    effective_at = optional_time(promulgation, "effective_at")
    await timers.schedule(conn, regulation_id, timers.EFFECTIVE, effective_at,
                          publication.RegulationEffective(regulation_id=regulation_id,
                                                          effective_at=promulgation.effective_at),
                          now)
    reminders = [
        (timers.BEFORE_EFFECTIVE, shift(effective_at, settings.reminder_before, back=True)),
        (timers.POST_IMPLEMENTATION_REVIEW, shift(effective_at, settings.review_after))]
    for kind, due_at in reminders:
        if due_at <= now:
            continue
        reminder = publication.ReminderDue(regulation_id=regulation_id, reminder_kind=kind,
                                           effective_at=promulgation.effective_at)
        reminder.due_at.FromDatetime(due_at)
        await timers.schedule(conn, regulation_id, kind, due_at, reminder, now)


async def promulgate(conn: asyncpg.Connection, request: api.RecordPromulgationRequest,
                     settings: PublicationSettings, now: datetime) -> api.Promulgation:
    """Records the promulgation of an adopted regulation whose fields check_promulgation
    accepted, emits RegulationPublished and schedules its timers."""
    regulation = await _known(conn, request.regulation_id, "regulation_id")
    if regulation.document_number:
        raise FailedPrecondition(f"regulation {regulation.regulation_id} is already promulgated "
                                 f"as {regulation.document_number}")
    if regulation.status != api.REGULATION_STATUS_ADOPTED:
        raise FailedPrecondition(
            f"regulation {regulation.regulation_id} is {status_name(regulation.status)}; only an "
            "ADOPTED draft can be promulgated (its DraftAdopted on policy.drafting.v1 has not "
            "been seen)")
    promulgation = _promulgation(request, regulation, settings)
    holder = await storage.insert_promulgation(conn, promulgation, now)
    if holder is not None:
        violations = FieldViolations()
        violations.add("document_number", f"{promulgation.document_number} is already the "
                                          f"number of regulation {holder}")
        raise violations
    await storage.set_status(conn, regulation.regulation_id, api.REGULATION_STATUS_PUBLISHED, now)
    # RegulationPublished carries the Promulgation field for field, same names and numbers.
    published = publication.RegulationPublished.FromString(promulgation.SerializeToString())
    await emit(conn, published, now)
    await _schedule_timers(conn, promulgation, settings, now)
    return promulgation


async def _link(conn: asyncpg.Connection, payload: Message, by_field: str, action: str,
                now: datetime) -> None:
    """Checks that both regulations of an amendment or repeal are promulgated and not
    repealed, then emits the event and stores the link."""
    by_regulation_id = getattr(payload, by_field)
    # Locks are taken in id order, so two links between the same regulations cannot deadlock.
    fields = {payload.regulation_id: "regulation_id", by_regulation_id: by_field}
    known = {rid: await _known(conn, rid, fields[rid]) for rid in sorted(fields)}
    for regulation, role in ((known[payload.regulation_id], f"be {action}"),
                             (known[by_regulation_id], "amend or repeal another")):
        if regulation.status not in LINKABLE:
            raise FailedPrecondition(
                f"regulation {regulation.regulation_id} is {status_name(regulation.status)}; "
                f"only a promulgated regulation that is not repealed can {role}")
    event = await emit(conn, payload, now)
    articles = list(getattr(payload, "amended_articles", ()))
    if not await storage.insert_link(conn, event, action, by_regulation_id, articles):
        raise FailedPrecondition(f"regulation {payload.regulation_id} is already {action} by "
                                 f"{by_regulation_id}")


async def amend(conn: asyncpg.Connection, request: api.AmendRegulationRequest,
                now: datetime) -> None:
    """Records that one promulgated regulation amends another; emits RegulationAmended."""
    amended = publication.RegulationAmended(
        regulation_id=request.regulation_id,
        amended_by_regulation_id=request.amended_by_regulation_id,
        amended_articles=request.amended_articles)
    amended.amended_at.FromDatetime(now)
    await _link(conn, amended, "amended_by_regulation_id", "amended", now)


async def repeal(conn: asyncpg.Connection, request: api.RepealRegulationRequest,
                 now: datetime) -> None:
    """Records that one promulgated regulation repeals another, emits RegulationRepealed and
    cancels the repealed one's pending timers: it will not take effect or be reviewed."""
    repealed = publication.RegulationRepealed(
        regulation_id=request.regulation_id,
        repealed_by_regulation_id=request.repealed_by_regulation_id)
    repealed.repealed_at.FromDatetime(now)
    await _link(conn, repealed, "repealed_by_regulation_id", "repealed", now)
    await storage.set_status(conn, request.regulation_id, api.REGULATION_STATUS_REPEALED, now)
    await timers.cancel(conn, request.regulation_id, now)


async def issue_release(conn: asyncpg.Connection, request: api.IssueSpokespersonReleaseRequest,
                        now: datetime) -> str:
    """Emits the spokesperson's release about a known regulation; returns its id."""
    await _known(conn, request.regulation_id, "regulation_id")
    release = publication.SpokespersonReleaseIssued(
        regulation_id=request.regulation_id, release_id=str(uuid.uuid4()),
        headline=request.headline, body=request.body)
    release.issued_at.FromDatetime(now)
    await emit(conn, release, now)
    return release.release_id
