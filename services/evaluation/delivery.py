"""The delivery-report path: policy.delivery-reports.v1 summed per regulation, region,
channel and day (Vietnam time), at the rate a national SMS wave reports — one event per
subscriber, about 100 million.

Why it differs from the other consumers: an inbox row and a transaction per event would cap
it at a few thousand events a second. Instead an aiokafka consumer (its record parsing is
C-accelerated; kafka-python's pure-Python parsing reads about 18,000 records a second on the
reference machine) fetches a batch, a worker thread decodes and sums it, and the sums and the
partitions' next offsets are written to PostgreSQL in ONE transaction. Offsets kept with the
sums make the path exactly-once without an inbox: a batch counts if and only if its offsets
commit with it, and on every partition assignment the consumer seeks to the stored offsets.
Records below a partition's stored offset (a batch fetched before a rebalance) were counted
already and are skipped inside the transaction, under a row lock on that offset, so even two
members reading one partition count each record once. Offsets also go to Kafka after each
commit, for lag monitoring only. A channel service that produces one report twice under two
ids is counted twice: channel services produce with an idempotent producer.

The consumer group `evaluation.delivery-reports` only shares partitions between replicas:
the group `evaluation` is Faust's, whose own partition assignor a plain consumer cannot join.

A well-formed report is read without the full envelope decoding (NFC-normalising every field
is most of its cost, and ASCII text is NFC already); anything unusual goes through
policykit.envelope.from_record, which accepts it or names what is wrong for the dead-letter
topic, policy.dlq.evaluation."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import date, datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from google.protobuf.message import DecodeError
from kafka import KafkaProducer
from prometheus_client import Counter, Gauge, Histogram

from policy.communication.v1 import events_pb2 as tasks
from policykit import metrics
from policykit.envelope import (CONTENT_TYPE, REGULATION_ID, SPECVERSION, EnvelopeError,
                                from_record)
from policykit.kafka_io import dead_letter_headers
from policykit.kafka_security import KafkaSecurity
from policykit.reference import UnknownReference

from services.evaluation import labels, storage
from services.evaluation.ledger import Ledger
from services.evaluation.periods import VIETNAM
from services.evaluation.units import Units

log = logging.getLogger(__name__)

TOPIC = "policy.delivery-reports.v1"
GROUP = "evaluation.delivery-reports"
DEAD_LETTER_GROUP = "evaluation"
DELIVERY_TYPE = tasks.DeliveryReported.DESCRIPTOR.full_name
_EXPECTED_HEADERS = {"ce_specversion": SPECVERSION.encode(), "ce_type": DELIVERY_TYPE.encode(),
                     "content-type": CONTENT_TYPE.encode()}
_UTC_OFFSET_S = int(VIETNAM.utcoffset(None).total_seconds())
_EPOCH_DAY = date(1970, 1, 1).toordinal()
# Days (since 1970-01-01) a report may be stored under: those a date can hold.
_DAYS = range(date.min.toordinal() - _EPOCH_DAY, date.max.toordinal() - _EPOCH_DAY + 1)
# More than everyone in Vietnam many times over; keeps a batch's sums inside bigint.
MAX_REACH = 1_000_000_000

REPORTS_AGGREGATED = Counter("policy_evaluation_delivery_reports_total",
                             "Delivery reports added to the aggregates.")
BATCH_SECONDS = Histogram("policy_evaluation_delivery_batch_seconds",
                          "Time to decode, sum and store one fetched batch of delivery reports.",
                          buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
LAG = Gauge("policy_evaluation_delivery_lag",
            "Delivery reports behind the last batch's partitions, not aggregated yet.")

# (regulation_id, region_id as reported, channel, day number since 1970-01-01 in Vietnam)
Key = tuple[str, str, int, int]


@dataclass
class Tally:
    """One partition's part of a batch: the sums, where it starts and ends, and what could
    not be counted."""

    first_offset: int
    next_offset: int
    sums: dict[Key, list[int]] = field(default_factory=dict)
    rejected: list[tuple[object, str]] = field(default_factory=list)

    @property
    def reports(self) -> int:
        return sum(reports for reports, _ in self.sums.values())


class ReportReader:
    """Turns delivery-report records into aggregation keys and reach."""

    def __init__(self, units: Units):
        self.units = units

    def tally(self, records: list) -> Tally:
        tally = Tally(records[0].offset, records[-1].offset + 1)
        sums = tally.sums
        for record in records:
            try:
                key, reach = self.read(record)
            except EnvelopeError as error:
                tally.rejected.append((record, error.reason))
                continue
            counted = sums.get(key)
            if counted is None:
                sums[key] = [1, reach]
            else:
                counted[0] += 1
                counted[1] += reach
        return tally

    def read(self, record) -> tuple[Key, int]:
        """Returns the record's aggregation key and reach; raises EnvelopeError saying why
        it cannot be counted."""
        report, at = self._well_formed(record) or self._decoded(record)
        # The cheap path checks the envelope, not what the tables can hold: a report they
        # refuse would fail its whole batch, read again for ever.
        if not REGULATION_ID.match(report.regulation_id):
            raise EnvelopeError("regulation_id: must be lowercase letters, digits and '-', "
                                "at most 64 characters")
        region = report.region_id
        try:
            self.units.current_region(region)
        except UnknownReference:
            raise EnvelopeError(f"region_id: {region!r} is neither a province of the reference "
                                "data nor 'national'") from None
        if report.channel not in labels.CHANNELS:
            raise EnvelopeError("channel: must be a channel of policy.common.v1.Channel")
        if not 0 <= report.reach_count <= MAX_REACH:
            raise EnvelopeError(f"reach_count: must be between 0 and {MAX_REACH:,}")
        seconds = report.delivered_at.seconds if report.delivered_at.seconds else at
        day = (seconds + _UTC_OFFSET_S) // 86400
        if day not in _DAYS:
            raise EnvelopeError("delivered_at: must fall between the years 1 and 9999")
        return (report.regulation_id, region, report.channel, day), report.reach_count

    @staticmethod
    def _well_formed(record) -> tuple[tasks.DeliveryReported, int] | None:
        """The common case, read cheaply: exactly the envelope from_record expects, ASCII
        text, key = regulation id. None for anything else."""
        headers = dict(record.headers)
        for name, expected in _EXPECTED_HEADERS.items():
            if headers.get(name) != expected:
                return None
        ce_id, source, ce_time = (headers.get("ce_id"), headers.get("ce_source"),
                                  headers.get("ce_time"))
        if not (ce_id and source and ce_time and ce_id.isascii() and source.isascii()):
            return None
        try:
            at = datetime.fromisoformat(ce_time.decode("ascii"))
            report = tasks.DeliveryReported.FromString(record.value or b"")
        except (UnicodeDecodeError, ValueError, DecodeError):
            return None
        regulation = report.regulation_id
        if (at.tzinfo is None or not regulation or record.key != regulation.encode()
                or headers.get("ce_subject", record.key) not in (b"", record.key)
                or not (regulation.isascii() and report.region_id.isascii()
                        and report.task_id.isascii() and report.reporter.isascii())):
            return None
        return report, int(at.timestamp())

    @staticmethod
    def _decoded(record) -> tuple[tasks.DeliveryReported, int]:
        event = from_record(record.key, record.value, list(record.headers))
        if not isinstance(event.payload, tasks.DeliveryReported):
            raise EnvelopeError(f"ce_type: {event.type} is not {DELIVERY_TYPE}")
        return event.payload, int(event.time.timestamp())


def _day(number: int) -> date:
    return date.fromordinal(_EPOCH_DAY + number)


class _SeekToStored(ConsumerRebalanceListener):
    def __init__(self, aggregator: "DeliveryAggregator", consumer: AIOKafkaConsumer):
        self.aggregator = aggregator
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked) -> None:
        return None

    async def on_partitions_assigned(self, assigned) -> None:
        await self.aggregator.seek_to_stored(self.consumer, assigned)


class DeliveryAggregator:
    """Consumes delivery reports and keeps delivery_totals, reached and the coverage of
    tasks up to date."""

    def __init__(self, pool: asyncpg.Pool, bootstrap_servers: str, units: Units,
                 dead_letter_topic: str, producer: KafkaProducer, security: KafkaSecurity, *,
                 max_records: int = 20_000):
        self.pool = pool
        self.bootstrap_servers = bootstrap_servers
        self.security = security
        self.units = units
        self.reader = ReportReader(units)
        self.dead_letter_topic = dead_letter_topic
        self.producer = producer
        self.max_records = max_records

    async def run(self, stop: asyncio.Event) -> None:
        """Aggregates until `stop` is set; a failed batch is logged, and the partitions go
        back to their stored offsets to read it again."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, group_id=GROUP,
            client_id="evaluation-delivery-reports", enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024, session_timeout_ms=10_000,
            heartbeat_interval_ms=2_000, **self.security.client_settings())
        consumer.subscribe([TOPIC], listener=_SeekToStored(self, consumer))
        await consumer.start()
        reread = False
        try:
            while not stop.is_set():
                # Going back to the stored offsets needs the database too: while it is down,
                # that is retried like the batch itself, rather than ending the aggregation.
                try:
                    if reread:
                        await self.seek_to_stored(consumer, consumer.assignment())
                        reread = False
                    batch = await consumer.getmany(timeout_ms=500, max_records=self.max_records)
                    if batch:
                        await self.absorb(consumer, batch)
                except Exception:
                    log.exception("delivery batch failed; reading it again from the stored "
                                  "offsets")
                    reread = True
                    await asyncio.sleep(1)
        finally:
            await consumer.stop()

    async def seek_to_stored(self, consumer: AIOKafkaConsumer, partitions) -> None:
        partitions = [tp for tp in partitions if tp.topic == TOPIC]
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT partition, next_offset FROM delivery_offsets"
                                    " WHERE topic = $1", TOPIC)
        stored = {row["partition"]: row["next_offset"] for row in rows}
        for tp in partitions:
            if tp.partition in stored:
                consumer.seek(tp, stored[tp.partition])
            else:
                await consumer.seek_to_beginning(tp)

    async def absorb(self, consumer: AIOKafkaConsumer, batch: dict) -> int:
        """Adds one fetched batch to the aggregates; returns the reports counted."""
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        # Decoding is CPU work: a worker thread keeps gRPC and the dashboard answering.
        tallies = await loop.run_in_executor(
            None, lambda: {tp: self.reader.tally(records) for tp, records in batch.items()})
        async with self.pool.acquire() as conn, conn.transaction():
            stored = await self._lock_offsets(conn, tallies)
            for tp in sorted(tallies):
                tally = tallies[tp]
                if stored[tp.partition] > tally.first_offset:
                    counted = [r for r in batch[tp] if r.offset >= stored[tp.partition]]
                    log.info("partition %d: skipping %d report(s) counted before", tp.partition,
                             len(batch[tp]) - len(counted))
                    tallies[tp] = tally = (self.reader.tally(counted) if counted
                                           else Tally(tally.next_offset, tally.next_offset))
                elif stored[tp.partition] < tally.first_offset:
                    log.warning("partition %d: offsets %d to %d expired before they were "
                                "counted", tp.partition, stored[tp.partition],
                                tally.first_offset - 1)
            await self._dead_letter(tallies)
            await self._add_up(conn, tallies)
            await conn.executemany(
                "UPDATE delivery_offsets SET next_offset = $3 WHERE topic = $1"
                " AND partition = $2 AND next_offset < $3",
                [(TOPIC, tp.partition, tally.next_offset) for tp, tally in sorted(tallies.items())])
        counted = sum(tally.reports for tally in tallies.values())
        REPORTS_AGGREGATED.inc(counted)
        BATCH_SECONDS.observe(time.perf_counter() - started)
        await self._report_progress(consumer, tallies)
        return counted

    async def _lock_offsets(self, conn: asyncpg.Connection,
                            tallies: dict[TopicPartition, Tally]) -> dict[int, int]:
        """Locks the partitions' offset rows (new partitions start where their batch does)
        and returns the stored next offsets."""
        partitions = sorted(tp.partition for tp in tallies)
        firsts = [tallies[TopicPartition(TOPIC, p)].first_offset for p in partitions]
        await conn.execute(
            "INSERT INTO delivery_offsets (topic, partition, next_offset)"
            " SELECT $1, p, o FROM unnest($2::int[], $3::bigint[]) AS t(p, o)"
            " ON CONFLICT DO NOTHING", TOPIC, partitions, firsts)
        rows = await conn.fetch(
            "SELECT partition, next_offset FROM delivery_offsets WHERE topic = $1"
            " AND partition = ANY($2::int[]) ORDER BY partition FOR UPDATE", TOPIC, partitions)
        return {row["partition"]: row["next_offset"] for row in rows}

    async def _dead_letter(self, tallies: dict[TopicPartition, Tally]) -> None:
        """Parks what could not be counted, durably, before the offsets that pass it commit."""
        rejected = [(tp, record, reason) for tp, tally in tallies.items()
                    for record, reason in tally.rejected]
        if not rejected:
            return

        def send() -> None:
            futures = []
            for tp, record, reason in rejected:
                log.error("dead-lettering %s[%d]@%d: %s", tp.topic, tp.partition, record.offset,
                          reason)
                headers = dead_letter_headers(list(record.headers), reason, tp.topic,
                                              tp.partition, record.offset, DEAD_LETTER_GROUP)
                futures.append(self.producer.send(self.dead_letter_topic, key=record.key,
                                                  value=record.value, headers=headers))
            self.producer.flush(timeout=60)
            for future in futures:
                future.get(timeout=60)

        await asyncio.get_running_loop().run_in_executor(None, send)
        metrics.EVENTS_DEAD_LETTERED.labels(TOPIC, self.dead_letter_topic).inc(len(rejected))

    async def _add_up(self, conn: asyncpg.Connection, tallies: dict[TopicPartition, Tally]) -> None:
        sums: dict[Key, list[int]] = {}
        for tally in tallies.values():
            for key, (reports, reach) in tally.sums.items():
                total = sums.setdefault(key, [0, 0])
                total[0] += reports
                total[1] += reach
        if not sums:
            return
        keys = sorted(sums)
        await conn.execute(
            "INSERT INTO delivery_totals (regulation_id, region_id, channel, day, reports, reach)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::smallint[], $4::date[],"
            " $5::bigint[], $6::bigint[])"
            " ON CONFLICT (regulation_id, region_id, channel, day) DO UPDATE SET"
            " reports = delivery_totals.reports + EXCLUDED.reports,"
            " reach = delivery_totals.reach + EXCLUDED.reach",
            [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
            [_day(k[3]) for k in keys], [sums[k][0] for k in keys], [sums[k][1] for k in keys])
        first_reached: dict[tuple[str, str, int], int] = {}
        for (regulation, region, channel, day), (_, reach) in sums.items():
            if reach > 0:
                key = (regulation, self.units.current_region(region), channel)
                first_reached[key] = min(day, first_reached.get(key, day))
        if first_reached:
            await self._mark_reached(conn, first_reached)

    async def _mark_reached(self, conn: asyncpg.Connection,
                            first_reached: dict[tuple[str, str, int], int]) -> None:
        """Records the (regulation, region, channel) reached for the first time and takes
        the targets they reach off the tasks' unreached lists."""
        keys = sorted(first_reached)
        new = await conn.fetch(
            "INSERT INTO reached (regulation_id, region_id, channel, first_day)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::smallint[], $4::date[])"
            " ON CONFLICT DO NOTHING RETURNING regulation_id, region_id, channel",
            [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
            [_day(first_reached[k]) for k in keys])
        ledger = Ledger()
        for regulation_id in sorted({row["regulation_id"] for row in new}):
            await storage.lock_regulation(conn, regulation_id)
            regulation = await storage.get_regulation(conn, regulation_id)
            if regulation is None:
                continue  # its tasks, deferred until it is registered, will see `reached`
            for row in (r for r in new if r["regulation_id"] == regulation_id):
                for task in await storage.lock_tasks(
                        conn, "regulation_id = $1 AND channel = $2 AND cardinality(unreached) > 0",
                        regulation_id, row["channel"]):
                    unreached = storage.unreached_targets(task.unreached, {row["region_id"]})
                    if unreached == task.unreached:
                        continue
                    reached = replace(task, unreached=unreached)
                    await storage.save_task(conn, reached)
                    ledger.change(reached.ref(), task.shares(regulation.context, self.units),
                                  reached.shares(regulation.context, self.units))
        await ledger.flush(conn)

    async def _report_progress(self, consumer: AIOKafkaConsumer,
                               tallies: dict[TopicPartition, Tally]) -> None:
        lag = 0
        for tp, tally in tallies.items():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                lag += max(0, highwater - tally.next_offset)
        LAG.set(lag)
        try:
            await consumer.commit({tp: tally.next_offset for tp, tally in tallies.items()})
        except KafkaError as error:  # a rebalance took the partition; PostgreSQL has it
            log.debug("offsets not committed to Kafka: %s", error)
