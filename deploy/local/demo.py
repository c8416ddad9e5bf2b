"""The platform's main job, end to end on the running platform (`make demo`).

Today: a drafting system registers a draft over gRPC; the drafting service stores it and
publishes DraftRegistered through its outbox; a downstream subscriber reads it back from
Kafka and checks that the Vietnamese text arrived byte for byte."""

from __future__ import annotations

import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import grpc
from kafka import KafkaConsumer, TopicPartition

from deploy.local.supervisor import SERVICES, grpc_target, infrastructure_env, ports
from policy.common.v1 import common_pb2
from policy.drafting.v1 import drafting_service_pb2 as api
from policy.drafting.v1 import drafting_service_pb2_grpc as api_grpc
from policykit.envelope import from_record

TOPIC = "policy.drafting.v1"


def table(title: str, rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    lines = [f"── {title} " + "─" * max(0, 60 - len(title))]
    lines += [f"  {k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)


def main() -> int:
    p = ports()
    bootstrap = infrastructure_env(p)["KAFKA_BOOTSTRAP_SERVERS"]
    drafting = next(s for s in SERVICES if s.name == "drafting")

    # Subscribe first, at the end of the topic, so only this run's event is awaited.
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(TOPIC, n) for n in consumer.partitions_for_topic(TOPIC)]
    consumer.assign(partitions)
    consumer.seek_to_end()
    for partition in partitions:
        consumer.position(partition)

    now = datetime.now(timezone.utc)
    request = api.RegisterDraftRequest(
        idempotency_key=f"demo-{uuid.uuid4()}",
        regulation_type=common_pb2.REGULATION_TYPE_LAW,
        title="Luật Đất đai (sửa đổi): lấy ý kiến Nhân dân",
        summary="Sửa đổi quy định về bồi thường, hỗ trợ, tái định cư khi Nhà nước thu hồi đất.",
        lead_agency_id="bnnmt", impact_level=common_pb2.IMPACT_LEVEL_HIGH,
        affected_groups=["nong-dan", "doanh-nghiep"],
        affected_province_codes=["02", "04", "lai-chau"])
    request.planned_consultation_start.FromDatetime(now + timedelta(days=14))
    request.planned_adoption.FromDatetime(now + timedelta(days=120))

    sent_at = time.perf_counter()
    with grpc.insecure_channel(grpc_target(drafting, p)) as channel:
        draft = api_grpc.DraftingServiceStub(channel).RegisterDraft(request, timeout=10).draft
    print(table("1. RegisterDraft over gRPC (drafting system → drafting service)", [
        ("regulation_id", draft.regulation_id),
        ("title", draft.title),
        ("lead agency", draft.lead_agency_id),
        ("impact", common_pb2.ImpactLevel.Name(draft.impact_level)),
        ("provinces", ", ".join(draft.affected_province_codes)),
        ("state", api.DraftState.Name(draft.state)),
    ]))

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                if record.key != draft.regulation_id.encode():
                    continue
                event = from_record(record.key, record.value, record.headers)
                elapsed_ms = (time.perf_counter() - sent_at) * 1000
                print(table(f"2. Event read back from Kafka topic {TOPIC}", [
                    *((name, raw.decode()) for name, raw in record.headers),
                    ("key", record.key.decode()),
                    ("partition/offset", f"{record.partition}/{record.offset}"),
                    ("payload.title", event.payload.title),
                    ("payload.summary", event.payload.summary),
                ]))
                same = event.payload.title.encode("utf-8") == request.title.encode("utf-8")
                print(table("3. Round trip", [
                    ("gRPC → PostgreSQL outbox → Kafka → subscriber", f"{elapsed_ms:.0f} ms"),
                    ("Vietnamese title identical byte for byte", "yes" if same else "NO"),
                ]))
                consumer.close()
                return 0 if same else 1
    consumer.close()
    print(f"the event for {draft.regulation_id} did not arrive on {TOPIC} within 30 s",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
