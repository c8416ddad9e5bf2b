"""Emits a draft's lifecycle straight to Kafka, then reads back what the drafting service made
of each event: accepted (republished on policy.drafting.v1 under the same ce_id) or rejected
(parked on policy.dlq.drafting with the reason).

    .venv/bin/python clients/policy_sdk/examples/emit_lifecycle.py [--bootstrap-servers H:P]

The default broker is the local platform's (`make up`, deploy/local/ports.env). Exits 0 when
every event was accepted, 1 when one was rejected or no answer came in time."""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

from kafka import KafkaConsumer, TopicPartition

from policy_sdk import DEAD_LETTER_TOPIC, DRAFTING_TOPIC, DraftingEventProducer
from policykit.envelope import Event, from_record
from policykit.kafka_io import DLQ_REASON

TITLE = "Nghị định về quản lý đất đai"


def subscribe(bootstrap_servers: str) -> KafkaConsumer:
    """A consumer at the current end of the accepted and the rejected events' topics, so that
    it sees exactly what arrives after this point."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    partitions = [TopicPartition(topic, number) for topic in (DRAFTING_TOPIC, DEAD_LETTER_TOPIC)
                  for number in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_end()
    for partition in partitions:
        consumer.position(partition)  # resolves the end now, before anything is produced
    return consumer


def verdicts(consumer: KafkaConsumer, event_ids: list[str],
             timeout: float) -> dict[str, Event | str]:
    """Reads until every event was accepted or rejected, or the timeout passed; maps each ce_id
    to the accepted event as published, or to the reason it was rejected."""
    found: dict[str, Event | str] = {}
    deadline = time.monotonic() + timeout
    while len(found) < len(event_ids) and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                headers = dict(record.headers)
                event_id = headers.get("ce_id", b"").decode()
                if event_id not in event_ids:
                    continue
                if record.topic == DEAD_LETTER_TOPIC:
                    found[event_id] = headers[DLQ_REASON].decode()
                else:
                    found[event_id] = from_record(record.key, record.value, record.headers)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:19092",
                        help="Kafka's bootstrap servers (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=60,
                        help="seconds to wait for the drafting service's verdicts")
    args = parser.parse_args(argv)

    # A drafting system that produces events chooses the regulation id itself.
    regulation_id = f"nd-quan-ly-dat-dai-{uuid.uuid4().hex[:8]}"
    now = datetime.now(timezone.utc)
    consumer = subscribe(args.bootstrap_servers)
    try:
        with DraftingEventProducer(args.bootstrap_servers,
                                   source="urn:example:drafting-system") as producer:
            event_ids = [
                producer.draft_registered(
                    regulation_id, regulation_type="REGULATION_TYPE_DECREE", title=TITLE,
                    summary="Quy định chi tiết về giá đất, bồi thường và tái định cư.",
                    lead_agency_id="bnnmt", impact_level="IMPACT_LEVEL_MEDIUM",
                    affected_groups=["nong-dan"], affected_province_codes=["lai-chau"],
                    planned_consultation_start=now + timedelta(days=14)),
                producer.draft_revised(regulation_id,
                                       change_summary="Bổ sung quy định về tái định cư"),
                producer.impact_assessed(
                    regulation_id, impact_level="IMPACT_LEVEL_HIGH",
                    assessment_summary="Ảnh hưởng đến hộ nông dân ở các tỉnh miền núi.",
                    affected_province_codes=["lai-chau", "dien-bien"]),
                producer.draft_submitted_for_consultation(regulation_id),
            ]
        # Leaving the block flushed: Kafka has every event; now the drafting service's verdicts.
        found = verdicts(consumer, event_ids, args.timeout)
    finally:
        consumer.close()

    for event_id in event_ids:
        verdict = found.get(event_id, "no verdict in time")
        if isinstance(verdict, Event):
            print(f"accepted  {event_id}  {verdict.type}")
        else:
            print(f"rejected  {event_id}  {verdict}")
    registered = found.get(event_ids[0])
    title_intact = isinstance(registered, Event) and registered.payload.title == TITLE
    if isinstance(registered, Event):
        print(f"{regulation_id} on {DRAFTING_TOPIC}: {registered.payload.title} "
              f"({'as sent' if title_intact else f'sent as {TITLE}'})")
    accepted = all(isinstance(found.get(event_id), Event) for event_id in event_ids)
    return 0 if accepted and title_intact else 1


if __name__ == "__main__":
    sys.exit(main())
