"""Reading a topic without a consumer group: the reader joins no group and commits nothing, so
it never disturbs the platform's consumers. policyctl's `events tail` and `dead-letters`
commands read with it."""

from __future__ import annotations

from typing import Iterator

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from policykit.kafka_security import PLAINTEXT, KafkaSecurity


class UnknownTopic(LookupError):
    """The topic, or the partition asked for, does not exist."""


def header(record: ConsumerRecord, name: str) -> str:
    """A header of the record as text; '' when it is missing."""
    for key, value in record.headers or ():
        if key == name:
            return (value or b"").decode("utf-8", "replace")
    return ""


class TopicReader:
    """Reads one topic, all its partitions or one, from the beginning unless `seek` says
    otherwise. The partitions' first and end offsets are taken when it opens: without
    `follow`, `records` reads up to those end offsets and stops."""

    def __init__(self, bootstrap_servers: str, topic: str, partition: int | None = None,
                 security: KafkaSecurity = PLAINTEXT, **consumer_overrides):
        settings = dict(bootstrap_servers=bootstrap_servers, group_id=None,
                        enable_auto_commit=False, client_id="policykit-reader",
                        # An offset the retention deleted meanwhile reads from the oldest kept.
                        auto_offset_reset="earliest", **security.client_settings())
        settings.update(consumer_overrides)
        self.consumer = KafkaConsumer(**settings)
        try:
            found = self.consumer.partitions_for_topic(topic)
            if not found:
                raise UnknownTopic(f"topic {topic} does not exist")
            if partition is not None and partition not in found:
                raise UnknownTopic(f"topic {topic} has no partition {partition} "
                                   f"(it has 0 to {max(found)})")
            self.partitions = [TopicPartition(topic, p) for p in sorted(found)
                               if partition is None or p == partition]
            self.consumer.assign(self.partitions)
            self.beginnings: dict[TopicPartition, int] = self.consumer.beginning_offsets(
                self.partitions)
            self.ends: dict[TopicPartition, int] = self.consumer.end_offsets(self.partitions)
            self.seek(self.beginnings)
        except BaseException:
            self.consumer.close()
            raise

    def seek(self, offsets: dict[TopicPartition, int]) -> None:
        """Starts each partition given at its offset, kept within the offsets it holds."""
        for tp, offset in offsets.items():
            self.consumer.seek(tp, min(max(offset, self.beginnings[tp]), self.ends[tp]))

    def records(self, follow: bool = False) -> Iterator[ConsumerRecord]:
        """Yields the records from where `seek` put each partition, partitions interleaved;
        with `follow`, waits for new records forever, else stops at the end offsets."""
        return self._follow() if follow else self._up_to_ends()

    def _follow(self) -> Iterator[ConsumerRecord]:
        while True:
            for batch in self.consumer.poll(timeout_ms=500).values():
                yield from batch

    def _up_to_ends(self) -> Iterator[ConsumerRecord]:
        pending = {tp for tp in self.partitions if self.consumer.position(tp) < self.ends[tp]}
        # A partition read to its end is paused, so records produced since are not fetched.
        self.consumer.pause(*(set(self.partitions) - pending))
        while pending:
            for tp, batch in self.consumer.poll(timeout_ms=500).items():
                yield from (record for record in batch if record.offset < self.ends[tp])
                if self.consumer.position(tp) >= self.ends[tp]:
                    pending.discard(tp)
                    self.consumer.pause(tp)

    def close(self) -> None:
        self.consumer.close()

    def __enter__(self) -> "TopicReader":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
