"""Delivery reports on the batch path: summed per regulation, region, channel and day, each
record exactly once even when a replica is killed mid-stream, and unreadable or invalid
reports parked on the dead-letter topic with the reason."""

import uuid
from datetime import datetime

import pytest

from deploy.local.kafka_broker import free_port
from policy.common.v1 import common_pb2 as common
from policykit import kafka_io
from policykit.envelope import new_event, to_record
from services.evaluation.periods import VIETNAM
from services.evaluation.tests.helpers import (SOURCE, delivery, draft, new_regulation_id,
                                               regulation_kpis)
from tests.support import eventually, read_topic, start_service

TOPIC = "policy.delivery-reports.v1"
DEAD_LETTERS = "policy.dlq.evaluation"
DAY = datetime(2033, 8, 14, 10, tzinfo=VIETNAM)


def delivered(stub, regulation_id: str) -> tuple[int, int]:
    """(reports, reach) summed over every channel of the regulation; (0, 0) until the
    evaluation knows the regulation."""
    kpis = regulation_kpis(stub, regulation_id)
    if kpis is None:
        return 0, 0
    return (sum(c.delivery_reports for c in kpis.coverage), sum(c.reach for c in kpis.coverage))


def registered(produce, name: str) -> str:
    regulation_id = new_regulation_id(name)
    produce.send(draft(regulation_id), at=DAY)
    return regulation_id


def test_reports_are_counted_once_when_a_replica_is_killed_mid_stream(
        evaluation, stub, produce, platform_topics, database_url, tmp_path):
    regulation_id = registered(produce, "song-sms")
    replica = start_service("services.evaluation", tmp_path, {
        "KAFKA_BOOTSTRAP_SERVERS": platform_topics, "DATABASE_URL": database_url,
        "EVALUATION_DASHBOARD_PORT": str(free_port()), "DELIVERY_BATCH_MAX_RECORDS": "2000"})
    regions = ("02", "tuyen-quang", "cao-bang", "04", "tp-ha-noi", "01")
    records = [to_record(new_event(delivery(regulation_id, regions[i % len(regions)],
                                            common.CHANNEL_SMS, 1 + i % 3, DAY), SOURCE))
               for i in range(60_000)]
    try:
        for i, (key, value, headers) in enumerate(records):
            produce.producer.send(TOPIC, key=key, value=value, headers=headers)
            if i == 20_000:
                produce.producer.flush()
                eventually(lambda: delivered(stub, regulation_id)[0] > 0,
                           what="the first reports summed")
                replica.process.kill()  # no goodbye: its open batch rolls back
        produce.producer.flush()
    finally:
        replica.process.kill()
        replica.process.wait()
    total_reach = sum(1 + i % 3 for i in range(60_000))
    eventually(lambda: delivered(stub, regulation_id) == (60_000, total_reach), timeout=90,
               what="all 60,000 reports summed once")
    kpis = regulation_kpis(stub, regulation_id)
    # 2008 codes are summed with the unit they belong to today.
    assert {r.region_id: r.delivery_reports for r in kpis.reach} == {
        "tuyen-quang": 20_000, "cao-bang": 20_000, "tp-ha-noi": 20_000}


@pytest.mark.parametrize("record, reason", [
    (lambda reg: (reg.encode(), b"\xff\xfe not protobuf", [
        ("ce_specversion", b"1.0"), ("ce_id", str(uuid.uuid4()).encode()),
        ("ce_source", b"urn:sms"), ("ce_type", b"policy.communication.v1.DeliveryReported"),
        ("ce_time", DAY.isoformat().encode()), ("content-type", b"application/protobuf")]),
     "payload is not a valid policy.communication.v1.DeliveryReported"),
    (lambda reg: to_record(new_event(delivery(reg, "hai-duong", common.CHANNEL_SMS, 5, DAY),
                                     SOURCE)),
     "region_id: 'hai-duong' is neither a province of the reference data nor 'national'"),
    (lambda reg: to_record(new_event(delivery(reg, "cao-bang", common.CHANNEL_SMS, -5, DAY),
                                     SOURCE)),
     "reach_count: must be between 0 and 1,000,000,000"),
    (lambda reg: to_record(new_event(draft(reg), SOURCE)),
     "ce_type: policy.drafting.v1.DraftRegistered is not policy.communication.v1.DeliveryReported"),
])
def test_unreadable_and_invalid_reports_are_dead_lettered(evaluation, stub, produce,
                                                          platform_topics, record, reason):
    regulation_id = registered(produce, "hong")
    key, value, headers = record(regulation_id)
    produce.producer.send(TOPIC, key=key, value=value, headers=headers).get(timeout=30)
    good = to_record(new_event(delivery(regulation_id, "national", common.CHANNEL_TELEVISION,
                                        7, DAY), SOURCE))
    produce.producer.send(TOPIC, key=good[0], value=good[1], headers=good[2]).get(timeout=30)

    def parked(records):
        return [r for r in records if r.key == regulation_id.encode()]

    [dead] = parked(read_topic(platform_topics, [DEAD_LETTERS], lambda rs: bool(parked(rs))))
    dead_headers = dict(dead.headers)
    assert dead_headers[kafka_io.DLQ_REASON].decode().startswith(reason)
    assert dead_headers[kafka_io.DLQ_SOURCE_TOPIC] == TOPIC.encode()
    assert dead_headers[kafka_io.DLQ_CONSUMER_GROUP] == b"evaluation"
    assert dead.value == value
    # The consumer moved on: the good report after it counts.
    eventually(lambda: delivered(stub, regulation_id) == (1, 7), what="the good report")
