"""The platform's main job, end to end on the running platform (`make demo`).

A drafting system registers a large-impact draft over gRPC; the drafting service stores it
and publishes DraftRegistered through its outbox; a subscriber reads it back from Kafka with
its Vietnamese text intact; the communication task engine turns it into the playbook's tasks,
which are listed with their owners, channels, regions and due dates."""

from __future__ import annotations

import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import grpc
from kafka import KafkaConsumer, TopicPartition

from deploy.local.supervisor import SERVICES, grpc_target, infrastructure_env, ports
from policy.common.v1 import common_pb2
from policy.communication.v1 import task_pb2
from policy.communication.v1 import task_service_pb2 as tasks_api
from policy.communication.v1 import task_service_pb2_grpc as tasks_grpc
from policy.drafting.v1 import drafting_service_pb2 as drafting_api
from policy.drafting.v1 import drafting_service_pb2_grpc as drafting_grpc
from policykit.envelope import Event, from_record
from policykit.reference import default as reference_data
from services.communication.organisations import display_name

TOPIC = "policy.drafting.v1"


def table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    line = "  ".join("{:<%d}" % w for w in widths)
    return "\n".join([f"\n{title}", line.format(*header), line.format(*("─" * w for w in widths)),
                      *(line.format(*row) for row in rows)])


def service_target(name: str) -> str:
    return grpc_target(next(s for s in SERVICES if s.name == name), ports())


def subscribe(bootstrap: str) -> KafkaConsumer:
    """Opens a consumer at the current end of the drafting topic."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(TOPIC, n) for n in consumer.partitions_for_topic(TOPIC)]
    consumer.assign(partitions)
    consumer.seek_to_end()
    for partition in partitions:
        consumer.position(partition)
    return consumer


def register_draft() -> drafting_api.Draft:
    now = datetime.now(timezone.utc)
    request = drafting_api.RegisterDraftRequest(
        idempotency_key=f"demo-{uuid.uuid4()}",
        regulation_type=common_pb2.REGULATION_TYPE_LAW,
        title="Luật Đất đai (sửa đổi): lấy ý kiến Nhân dân",
        summary="Sửa đổi quy định về bồi thường, hỗ trợ, tái định cư khi Nhà nước thu hồi đất.",
        # Registered under the pre-2025 ministry and province codes: the platform maps them.
        lead_agency_id="btnmt", impact_level=common_pb2.IMPACT_LEVEL_HIGH,
        affected_groups=["nong-dan", "doanh-nghiep"],
        affected_province_codes=["02", "04", "22", "01"])
    request.planned_consultation_start.FromDatetime(now + timedelta(days=21))
    request.planned_adoption.FromDatetime(now + timedelta(days=120))
    with grpc.insecure_channel(service_target("drafting")) as channel:
        return drafting_grpc.DraftingServiceStub(channel).RegisterDraft(request, timeout=10).draft


def await_event(consumer: KafkaConsumer, regulation_id: str, deadline: float) -> Event:
    while time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                if record.key == regulation_id.encode():
                    return from_record(record.key, record.value, record.headers)
    raise TimeoutError(f"DraftRegistered for {regulation_id} did not arrive on {TOPIC}")


def await_tasks(regulation_id: str, deadline: float) -> list[task_pb2.Task]:
    """Lists the regulation's tasks once the engine has stopped adding to them."""
    with grpc.insecure_channel(service_target("communication")) as channel:
        stub = tasks_grpc.TaskServiceStub(channel)
        seen: list[task_pb2.Task] = []
        while time.monotonic() < deadline:
            found = list(stub.ListTasks(tasks_api.ListTasksRequest(
                regulation_id=regulation_id, page=common_pb2.PageRequest(page_size=500)),
                timeout=10).tasks)
            if found and len(found) == len(seen):
                return found
            seen = found
            time.sleep(1)
    raise TimeoutError(f"no tasks appeared for {regulation_id}")


def main() -> int:
    bootstrap = infrastructure_env(ports())["KAFKA_BOOTSTRAP_SERVERS"]
    consumer = subscribe(bootstrap)
    started = time.monotonic()
    draft = register_draft()
    print(table("1. A drafting system registers a draft (gRPC DraftingService.RegisterDraft)",
                ("field", "value"), [
                    ("regulation_id", draft.regulation_id), ("title", draft.title),
                    ("lead agency", draft.lead_agency_id),
                    ("impact", common_pb2.ImpactLevel.Name(draft.impact_level)),
                    ("provinces", ", ".join(draft.affected_province_codes)),
                    ("state", drafting_api.DraftState.Name(draft.state))]))

    deadline = started + 60
    event = await_event(consumer, draft.regulation_id, deadline)
    consumer.close()
    intact = event.payload.title.encode("utf-8") == draft.title.encode("utf-8")
    print(table(f"2. The event on Kafka topic {TOPIC} (CloudEvents binary mode)",
                ("attribute", "value"), [
                    ("ce_type", event.type), ("ce_id", event.id), ("ce_source", event.source),
                    ("ce_subject = key", event.subject),
                    ("payload.title", event.payload.title),
                    ("title byte for byte", "identical" if intact else "CHANGED"),
                    ("arrived after", f"{(time.monotonic() - started) * 1000:.0f} ms")]))

    tasks = await_tasks(draft.regulation_id, deadline)
    reference = reference_data()
    today = datetime.now(timezone.utc).date()
    print(table(f"3. The communication tasks the playbook created ({len(tasks)})",
                ("due", "priority", "channel", "owner", "regions", "kind"), [
                    (t.due_at.ToDatetime().strftime("%Y-%m-%d %H:%M"),
                     task_pb2.TaskPriority.Name(t.priority).removeprefix("TASK_PRIORITY_"),
                     common_pb2.Channel.Name(t.channel).removeprefix("CHANNEL_"),
                     display_name(t.owner_org_id, reference, today),
                     ", ".join(t.region_ids), t.kind)
                    for t in tasks]))
    print("\nThe ministry was registered by its pre-2025 id (btnmt) and the provinces by their"
          "\n2008 codes; tasks went to the successor ministry and the 2025 provinces.")
    return 0 if intact and tasks else 1


if __name__ == "__main__":
    sys.exit(main())
