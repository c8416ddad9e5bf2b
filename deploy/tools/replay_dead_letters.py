"""Replays dead letters: reads a consumer group's dead-letter topic (policy.dlq.<group>) and
re-produces the chosen records to the topics they came from, with their own key, value and
headers, the dlq_* headers removed. Consumers are idempotent by event id, so an event that
was handled after all is absorbed, and one that failed is handled anew.

    python deploy/tools/replay_dead_letters.py --group communication --dry-run
    python deploy/tools/replay_dead_letters.py --group communication --reason 'handler failed'
    python deploy/tools/replay_dead_letters.py --group drafting --partition 0 --from-offset 120

It reads the dead-letter topic up to its end as of the start, without a consumer group (it
commits nothing), and prints each record with its dead-letter position, so a replay can be
resumed or repeated with --from-offset. It needs policykit on the path (PYTHONPATH=libs and
gen/python, as every service image has) and KAFKA_BOOTSTRAP_SERVERS or --bootstrap-servers."""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from policykit.kafka_io import DLQ_REASON, DLQ_SOURCE_TOPIC, create_producer
from policykit.topics import load as load_topics


@dataclass(frozen=True)
class Selection:
    """Which dead letters to replay; None matches everything."""

    reason: re.Pattern | None = None
    source_topic: str | None = None
    partition: int | None = None
    from_offset: int | None = None
    to_offset: int | None = None

    def matches(self, record: ConsumerRecord) -> bool:
        headers = dict(record.headers or ())
        if self.partition is not None and record.partition != self.partition:
            return False
        if self.to_offset is not None and record.offset > self.to_offset:
            return False
        reason = headers.get(DLQ_REASON, b"").decode("utf-8", "replace")
        if self.reason is not None and not self.reason.search(reason):
            return False
        source = headers.get(DLQ_SOURCE_TOPIC, b"").decode("utf-8", "replace")
        return self.source_topic is None or source == self.source_topic


def replayable(record: ConsumerRecord) -> tuple[str, list[tuple[str, bytes]]]:
    """Returns the topic to re-produce to and the record's headers without the dlq_* ones;
    raises ValueError for a record that has no usable source topic."""
    headers = list(record.headers or ())
    source = dict(headers).get(DLQ_SOURCE_TOPIC, b"").decode("utf-8", "replace")
    if not source:
        raise ValueError("no dlq_source_topic header")
    if source.startswith("policy.dlq.") or source.endswith(".dlq"):
        raise ValueError(f"source {source} is itself a dead-letter topic")
    return source, [(key, value) for key, value in headers if not key.startswith("dlq_")]


def dead_letters(consumer: KafkaConsumer, topic: str, selection: Selection):
    """Yields the topic's records from the selection's start up to the end offsets taken now."""
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise SystemExit(f"topic {topic} does not exist")
    assigned = [TopicPartition(topic, p) for p in sorted(partitions)
                if selection.partition is None or p == selection.partition]
    consumer.assign(assigned)
    ends = consumer.end_offsets(assigned)
    for tp in assigned:
        if selection.from_offset is None:
            consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, selection.from_offset)
    remaining = {tp for tp in assigned if consumer.position(tp) < ends[tp]}
    while remaining:
        for tp, records in consumer.poll(timeout_ms=1000).items():
            for record in records:
                if record.offset < ends[tp]:
                    yield record
            if consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)


def describe(record: ConsumerRecord) -> str:
    headers = dict(record.headers or ())
    text = {name: headers.get(name, b"").decode("utf-8", "replace")
            for name in ("ce_type", "ce_id", DLQ_SOURCE_TOPIC, DLQ_REASON)}
    key = (record.key or b"").decode("utf-8", "replace")
    return (f"{record.topic}[{record.partition}]@{record.offset} key={key} "
            f"type={text['ce_type'] or '-'} id={text['ce_id'] or '-'} "
            f"from={text[DLQ_SOURCE_TOPIC] or '-'} reason={text[DLQ_REASON]!r}")


def replay(bootstrap_servers: str, dead_letter_topic: str, selection: Selection,
           dry_run: bool, out=sys.stdout) -> int:
    """Replays the selected dead letters; returns how many were (or, dry, would be) sent."""
    # An offset the topic's retention already deleted reads from the oldest one kept.
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             client_id="policy-replay")
    producer = None if dry_run else create_producer(bootstrap_servers, client_id="policy-replay")
    sent = skipped = 0
    try:
        for record in dead_letters(consumer, dead_letter_topic, selection):
            if not selection.matches(record):
                continue
            try:
                target, headers = replayable(record)
            except ValueError as error:
                print(f"skip   {describe(record)}: {error}", file=out)
                skipped += 1
                continue
            if producer is not None:
                # Keyed like the original, so it lands on the regulation's partition and stays
                # in order with that regulation's later events.
                producer.send(target, key=record.key, value=record.value,
                              headers=headers).get(timeout=30)
            print(f"{'would' if dry_run else 'replay'} {describe(record)} -> {target}", file=out)
            sent += 1
    finally:
        consumer.close()
        if producer is not None:
            producer.close()
    verb = "would replay" if dry_run else "replayed"
    print(f"{verb} {sent} record(s) from {dead_letter_topic}; skipped {skipped}", file=out)
    return sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="replay_dead_letters.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--group", help="the consumer group whose dead letters to replay, "
                       "e.g. communication (reads its declared dead-letter topic)")
    where.add_argument("--dead-letter-topic", help="a dead-letter topic named directly")
    parser.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
                        help="default: $KAFKA_BOOTSTRAP_SERVERS")
    parser.add_argument("--reason", type=re.compile,
                        help="replay only records whose dlq_reason matches this regex")
    parser.add_argument("--source-topic", help="replay only records that came from this topic")
    parser.add_argument("--partition", type=int, help="only this partition of the dead-letter topic")
    parser.add_argument("--from-offset", type=int,
                        help="start at this offset (with --partition; default: the beginning)")
    parser.add_argument("--to-offset", type=int,
                        help="stop after this offset, inclusive (with --partition)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be replayed")
    args = parser.parse_args(argv)
    if not args.bootstrap_servers:
        parser.error("set KAFKA_BOOTSTRAP_SERVERS or pass --bootstrap-servers")
    if args.partition is None and (args.from_offset, args.to_offset) != (None, None):
        parser.error("--from-offset and --to-offset need --partition: offsets are per partition")
    try:
        topic = args.dead_letter_topic or load_topics().dead_letter_topic(args.group)
    except KeyError as error:
        parser.error(str(error.args[0]))
    selection = Selection(args.reason, args.source_topic, args.partition, args.from_offset,
                          args.to_offset)
    replay(args.bootstrap_servers, topic, selection, args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
