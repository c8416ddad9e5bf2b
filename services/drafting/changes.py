"""Changes to drafts — registration, revision, impact assessment, submission for
consultation, adoption, withdrawal — each expressed as the drafting event that records it.

`record` applies a validated change to the draft's current state and puts the event in the
outbox, in the caller's transaction. The gRPC servicer and the intake agent both go through
it, so a change is checked and stored the same way whichever way it came in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Awaitable, Callable

import asyncpg
from google.protobuf.message import Message

from policy.drafting.v1 import drafting_service_pb2 as api
from policy.drafting.v1 import events_pb2 as events
from policykit.envelope import new_event
from policykit.errors import FieldViolations, NotFound
from policykit.outbox import enqueue

from services.drafting import lifecycle, storage

SOURCE = "policy/drafting"
TOPIC = "policy.drafting.v1"


def copy_fields(source: Message, target: Message) -> Message:
    """Copies every set field of `source` into the field of the same name in `target`, if it
    has one; returns `target`. Requests, events and drafts share their field names."""
    fields = target.DESCRIPTOR.fields_by_name
    for field, value in source.ListFields():
        if field.name not in fields:
            continue
        if field.is_repeated:
            getattr(target, field.name).extend(value)
        elif field.message_type is not None:
            getattr(target, field.name).CopyFrom(value)
        else:
            setattr(target, field.name, value)
    return target


def _stamp(change: Message, field: str, time: datetime) -> datetime:
    """Returns when the change happened: its own timestamp, set to `time` when it has none."""
    stamped = storage.optional_time(change, field)
    if stamped is None:
        getattr(change, field).FromDatetime(time)
        return time
    return stamped


def _expect_version(change: Message, expected: int, meaning: str) -> None:
    if change.version not in (0, expected):
        violations = FieldViolations()
        violations.add("version", f"must be {expected}, {meaning}, or unset; got {change.version}")
        raise violations
    change.version = expected


async def _revise(conn: asyncpg.Connection, draft: api.Draft, revised: events.DraftRevised) -> None:
    _expect_version(revised, draft.version + 1, "the draft's next version")
    draft.title = revised.title or draft.title
    draft.summary = revised.summary or draft.summary
    revised.title, revised.summary = draft.title, draft.summary
    draft.version = revised.version
    await storage.insert_version(conn, draft, revised.change_summary)


async def _assess_impact(conn: asyncpg.Connection, draft: api.Draft,
                         assessed: events.ImpactAssessed) -> None:
    draft.impact_level = assessed.impact_level
    for audience in ("affected_groups", "affected_province_codes"):
        if getattr(assessed, audience):
            getattr(draft, audience)[:] = getattr(assessed, audience)
        else:
            getattr(assessed, audience)[:] = getattr(draft, audience)
    await storage.insert_assessment(conn, assessed)


async def _mark_version(conn: asyncpg.Connection, draft: api.Draft,
                        change: events.DraftSubmittedForConsultation | events.DraftAdopted) -> None:
    _expect_version(change, draft.version, "the draft's current version")


async def _withdraw(conn: asyncpg.Connection, draft: api.Draft,
                    withdrawn: events.DraftWithdrawn) -> None:
    draft.withdrawal_reason = withdrawn.reason


@dataclass(frozen=True)
class _Kind:
    """How one kind of change applies: its transition, the event's own time field, and what
    it does to the draft beyond the state and the time."""

    transition: lifecycle.Transition
    time_field: str
    apply: Callable[[asyncpg.Connection, api.Draft, Message], Awaitable[None]]


_KINDS: dict[type[Message], _Kind] = {
    events.DraftRevised: _Kind(lifecycle.REVISE, "revised_at", _revise),
    events.ImpactAssessed: _Kind(lifecycle.ASSESS_IMPACT, "assessed_at", _assess_impact),
    events.DraftSubmittedForConsultation: _Kind(
        lifecycle.SUBMIT_FOR_CONSULTATION, "submitted_at", _mark_version),
    events.DraftAdopted: _Kind(lifecycle.ADOPT, "adopted_at", _mark_version),
    events.DraftWithdrawn: _Kind(lifecycle.WITHDRAW, "withdrawn_at", _withdraw),
}


async def _register(conn: asyncpg.Connection, registered: events.DraftRegistered,
                    time: datetime) -> api.Draft:
    registered.version = 1
    draft = copy_fields(registered, api.Draft(state=lifecycle.INITIAL))
    at = _stamp(registered, "registered_at", time)
    draft.created_at.FromDatetime(at)
    draft.updated_at.FromDatetime(at)
    if not await storage.insert_draft(conn, draft):
        violations = FieldViolations()
        violations.add("regulation_id", f"draft {registered.regulation_id} already exists")
        raise violations
    return draft


async def _transition(conn: asyncpg.Connection, change: Message, time: datetime) -> api.Draft:
    kind = _KINDS[type(change)]
    draft = await storage.lock_draft(conn, change.regulation_id)
    if draft is None:
        raise NotFound(f"no draft with regulation_id {change.regulation_id!r}")
    draft.state = lifecycle.state_after(draft.regulation_id, draft.state, kind.transition)
    draft.updated_at.FromDatetime(_stamp(change, kind.time_field, time))
    await kind.apply(conn, draft, change)
    await storage.update_draft(conn, draft)
    return draft


async def record(conn: asyncpg.Connection, change: Message, *, event_id: str | None = None,
                 time: datetime | None = None) -> api.Draft:
    """Applies a change whose fields check_change accepted to its draft, and enqueues it on
    policy.drafting.v1 as event `event_id` (a new one by default) at `time` (now by default),
    completed with the version, title, summary and time it got; returns the draft as it now
    is. Raises NotFound for an unknown draft, FailedPrecondition when the draft's state does
    not allow the change, FieldViolations for a taken regulation id or a version out of turn."""
    time = time or datetime.now(timezone.utc)
    if isinstance(change, events.DraftRegistered):
        draft = await _register(conn, change, time)
    else:
        draft = await _transition(conn, change, time)
    await enqueue(conn, TOPIC, new_event(change, SOURCE, event_id=event_id, time=time))
    return draft
