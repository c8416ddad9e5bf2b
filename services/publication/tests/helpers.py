"""The publication service as a restartable process, regulations brought to a state by
producing their drafting events, requests, and reading the publication topics."""

from __future__ import annotations

import asyncio
import itertools
import random
import string
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import asyncpg
import grpc
from google.protobuf.message import Message
from kafka import KafkaProducer

from policy.common.v1 import common_pb2
from policy.drafting.v1 import events_pb2 as drafting
from policy.publication.v1 import publication_service_pb2 as api
from policy.publication.v1 import publication_service_pb2_grpc as api_grpc
from policykit.envelope import Event, from_record, new_event
from policykit.kafka_io import publish
from services.publication.effective_dates import VIETNAM
from policyctl.timeline import fetch_timeline
from tests.support import RunningService, eventually, read_topic, start_service

DRAFTING_TOPIC = "policy.drafting.v1"
PUBLICATION_TOPIC = "policy.publication.v1"
OPEN_DATA_TOPIC = "policy.open-data.v1"
TITLE = "Nghị định quy định chi tiết Luật Đất đai về bồi thường, hỗ trợ, tái định cư"
# Document numbers must be unique: this session's issuer code keeps them apart from other
# sessions' on an external database.
_ISSUER = "".join(random.choices(string.ascii_uppercase, k=6))
_NUMBERS = itertools.count(1)


class Publication:
    """The publication service under test, which a test may restart."""

    def __init__(self, bootstrap: str, database_url: str, log_dir: Path):
        self.env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DATABASE_URL": database_url,
                    "OUTBOX_POLL_INTERVAL_MS": "20", "TIMER_POLL_INTERVAL_MS": "100",
                    "OPEN_DATA_INTERVAL_MS": "200"}
        self.log_dir = log_dir
        self.runs = itertools.count(1)
        self.service = self._start()

    def _start(self) -> RunningService:
        run_dir = self.log_dir / f"run-{next(self.runs)}"
        run_dir.mkdir()
        return start_service("services.publication", run_dir, self.env)

    @property
    def grpc_target(self) -> str:
        return self.service.grpc_target

    def terminate(self) -> int:
        return self.service.terminate()

    def start(self) -> None:
        self.service = self._start()


def key() -> str:
    return f"key-{uuid.uuid4()}"


def regulation_id() -> str:
    return f"reg-{uuid.uuid4()}"


def produce(producer: KafkaProducer, topic: str, payload: Message,
            time: datetime | None = None) -> Event:
    """Publishes the payload as an event of its own, and waits for the broker's ack."""
    event = new_event(payload, "policy/test", time=time)
    publish(producer, topic, event).get(timeout=30)
    return event


def draft_events(regulation: str, regulation_type: int, title: str) -> list[Message]:
    """The drafting events that take a draft from registration to adoption."""
    return [
        drafting.DraftRegistered(
            regulation_id=regulation, regulation_type=regulation_type, title=title,
            summary="Quy định chi tiết về bồi thường khi Nhà nước thu hồi đất.",
            lead_agency_id="bnnmt", impact_level=common_pb2.IMPACT_LEVEL_MEDIUM,
            affected_groups=["nong-dan"], affected_province_codes=["tp-ha-noi"], version=1),
        drafting.DraftSubmittedForConsultation(regulation_id=regulation, version=1),
        drafting.DraftAdopted(regulation_id=regulation, version=1),
    ]


def timeline_of(stub: api_grpc.PublicationServiceStub,
                regulation: str) -> api.GetTimelineResponse | None:
    """Returns the whole timeline, None while the service knows nothing of the regulation."""
    try:
        return fetch_timeline(stub, regulation)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return None


def wait_for_timeline(stub: api_grpc.PublicationServiceStub, regulation: str,
                      ready: Callable[[api.GetTimelineResponse], bool],
                      what: str) -> api.GetTimelineResponse:
    """Returns the timeline once `ready` holds for it."""
    def check():
        timeline = timeline_of(stub, regulation)
        return timeline if timeline is not None and ready(timeline) else None
    return eventually(check, what=what)


def wait_for_status(stub: api_grpc.PublicationServiceStub, regulation: str, status: int) -> None:
    wait_for_timeline(stub, regulation, lambda t: t.regulation.status == status,
                      f"{regulation} to be {api.RegulationStatus.Name(status)}")


def adopted(stub: api_grpc.PublicationServiceStub, producer: KafkaProducer, *,
            regulation_type: int = common_pb2.REGULATION_TYPE_DECREE, title: str = TITLE) -> str:
    """Produces the drafting events of a new adopted regulation and waits until the
    publication service has seen its adoption; returns its id."""
    regulation = regulation_id()
    for payload in draft_events(regulation, regulation_type, title):
        produce(producer, DRAFTING_TOPIC, payload)
    wait_for_status(stub, regulation, api.REGULATION_STATUS_ADOPTED)
    return regulation


def document_number(signed_at: datetime, form: str = "NĐ") -> str:
    return f"{next(_NUMBERS)}/{signed_at.astimezone(VIETNAM).year}/{form}-{_ISSUER}"


def promulgation_request(regulation: str, **overrides) -> api.RecordPromulgationRequest:
    signed_at = overrides.pop("signed_at", datetime.now(timezone.utc) - timedelta(hours=2))
    request = api.RecordPromulgationRequest(
        idempotency_key=key(), regulation_id=regulation,
        document_number=document_number(signed_at), signer="Phó Thủ tướng Trần Hồng Hà",
        gazette_number="Số 215+216")
    request.signed_at.FromDatetime(signed_at)
    request.gazette_published_at.FromDatetime(signed_at + timedelta(hours=1))
    for field, value in overrides.items():
        if isinstance(value, datetime):
            getattr(request, field).FromDatetime(value)
        else:
            setattr(request, field, value)
    return request


def published(stub: api_grpc.PublicationServiceStub, producer: KafkaProducer,
              **overrides) -> api.Promulgation:
    """Returns the promulgation of a new regulation brought to adoption and promulgated."""
    regulation = adopted(stub, producer)
    return stub.RecordPromulgation(promulgation_request(regulation, **overrides),
                                   timeout=10).promulgation


def events_about(bootstrap: str, regulation: str, until: int,
                 topic: str = PUBLICATION_TOPIC) -> list[Event]:
    """Reads the topic until `until` events about the regulation are there; returns them."""
    wanted = regulation.encode()

    def decoded(records) -> list[Event]:
        return [from_record(r.key, r.value, r.headers) for r in records if r.key == wanted]

    return decoded(read_topic(bootstrap, [topic], lambda rs: len(decoded(rs)) >= until))


def scheduled_timers(database_url: str, regulation: str, *,
                     pending: bool = False) -> list[tuple[str, datetime]]:
    """Reads the regulation's timers (only those still to fire if `pending`), kind and time,
    from the service's schema."""
    async def read():
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetch(
                "SELECT kind, fire_at FROM publication.timers WHERE regulation_id = $1"
                " AND (NOT $2 OR (fired_at IS NULL AND cancelled_at IS NULL)) ORDER BY fire_at",
                regulation, pending)
        finally:
            await conn.close()
    return [(row["kind"], row["fire_at"]) for row in asyncio.run(read())]


def entry_types(response: api.GetTimelineResponse) -> list[str]:
    return [e.event_type.rsplit(".", 1)[1] for e in response.entries]
