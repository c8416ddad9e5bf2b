"""The effective date fires from PostgreSQL, not from memory: a timer due while the service
is down fires once after it starts again, not before its time, and never again."""

import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import grpc

from policy.publication.v1 import publication_service_pb2 as api
from policy.publication.v1 import publication_service_pb2_grpc as api_grpc
from services.publication.tests.helpers import (adopted, events_about, promulgation_request,
                                                scheduled_timers)
from policyctl.timeline import fetch_timeline

REASON = "Có hiệu lực ngay để thử khởi động lại dịch vụ"


@contextmanager
def connected(publication):
    with grpc.insecure_channel(publication.grpc_target) as channel:
        yield api_grpc.PublicationServiceStub(channel)


def effective_soon(stub, producer, seconds: float) -> tuple[str, datetime]:
    """Promulgates a new regulation that takes effect in `seconds`; returns its id and time."""
    regulation = adopted(stub, producer)
    effective_at = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    stub.RecordPromulgation(promulgation_request(
        regulation, effective_at=effective_at, effective_date_override_reason=REASON),
        timeout=10)
    return regulation, effective_at


def effective_events(bootstrap: str, regulation: str) -> list:
    published_and_effective = events_about(bootstrap, regulation, until=2)
    return [e for e in published_and_effective
            if e.type == "policy.publication.v1.RegulationEffective"]


def test_the_effective_date_fires_once_across_restarts(publication, producer, platform_topics,
                                                       database_url):
    with connected(publication) as stub:
        regulation, effective_at = effective_soon(stub, producer, seconds=5)
    assert publication.terminate() == 0
    assert scheduled_timers(database_url, regulation, pending=True) == [
        ("effective", effective_at),
        ("post-implementation-review", effective_at.replace(year=effective_at.year + 1))]

    time.sleep(max(0.0, (effective_at - datetime.now(timezone.utc)).total_seconds()))
    publication.start()
    [effective] = effective_events(platform_topics, regulation)
    assert effective.time == effective_at
    assert effective.payload.effective_at.ToDatetime(tzinfo=timezone.utc) == effective_at
    with connected(publication) as stub:
        timeline = fetch_timeline(stub, regulation)
    assert timeline.regulation.status == api.REGULATION_STATUS_EFFECTIVE
    assert timeline.entries[-1].description.startswith("Có hiệu lực thi hành từ")

    # Once more: a regulation taking effect after this restart shows the worker has run, and
    # the first one's timer has not fired again.
    assert publication.terminate() == 0
    publication.start()
    with connected(publication) as stub:
        later, _ = effective_soon(stub, producer, seconds=1)
    assert len(effective_events(platform_topics, later)) == 1
    assert len(effective_events(platform_topics, regulation)) == 1
