"""The intake of drafting events that drafting systems produce straight to Kafka, on
policy.drafting-intake.v1.

Each event is validated like the gRPC request it stands for and applied through the same
changes; an accepted event is republished on policy.drafting.v1 under the producer's ce_id,
in the transaction that applies it, and a redelivered one is absorbed by the inbox. An event
that cannot be accepted — invalid fields, unknown draft, a transition its state does not
allow — goes to policy.dlq.drafting with the reason."""

from __future__ import annotations

import functools
import uuid

import asyncpg
import faust

from policykit import faust_io, topics
from policykit.envelope import Event
from policykit.errors import FailedPrecondition, FieldViolations, NotFound
from policykit.kafka_io import RejectedEvent
from policykit.kafka_security import KafkaSecurity
from policykit.outbox import first_delivery

from services.drafting import changes
from services.drafting.validation import CHANGE_TYPES, check_change

GROUP = "drafting"
INTAKE_TOPIC = "policy.drafting-intake.v1"
# The inbox name under which the intake records the events it applied.
INBOX = "drafting-intake"


def _check_envelope(event: Event) -> None:
    if not isinstance(event.payload, CHANGE_TYPES):
        raise RejectedEvent(f"ce_type: {event.type} is not a drafting event "
                            "(policy.drafting.v1.DraftRegistered, DraftRevised, …)")
    # The id becomes the outbox's event id on policy.drafting.v1, a UUID there.
    try:
        canonical = str(uuid.UUID(event.id)) == event.id
    except ValueError:
        canonical = False
    if not canonical:
        raise RejectedEvent(f"ce_id: {event.id!r} is not a UUID in canonical form "
                            "(lowercase, hyphenated)")


async def accept(pool: asyncpg.Pool, event: Event) -> None:
    """Applies one intake event and republishes it; raises RejectedEvent saying why when
    it cannot be accepted."""
    _check_envelope(event)
    try:
        check_change(event.payload)
        async with pool.acquire() as conn, conn.transaction():
            if await first_delivery(conn, INBOX, event):
                await changes.record(conn, event.payload, event_id=event.id, time=event.time)
    except FieldViolations as error:
        raise RejectedEvent("; ".join(f"{field}: {problem}"
                                      for field, problem in error.violations)) from None
    except (NotFound, FailedPrecondition) as error:
        raise RejectedEvent(str(error)) from None


def create_intake(pool: asyncpg.Pool, bootstrap_servers: str,
                  security: KafkaSecurity) -> faust.App:
    """Returns the Faust app of consumer group `drafting` that accepts intake events."""
    app = faust_io.create_app(GROUP, bootstrap_servers, security)
    faust_io.add_event_agent(app, [INTAKE_TOPIC], topics.load().dead_letter_topic(GROUP),
                             functools.partial(accept, pool))
    return app
