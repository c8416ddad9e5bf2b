"""Evaluation benchmark: `python -m tests.bench.bench_evaluation` (PYTHONPATH=.:gen/python:libs).

Starts a Kafka broker and a PostgreSQL server of its own (free ports, a temporary directory)
and the evaluation service as a subprocess, then measures:

- delivery reports aggregated per second: N DeliveryReported records (pre-encoded, with the
  CloudEvents headers, over 20 regulations, 40 region ids — 2008 codes among them — and three
  channels) wait on policy.delivery-reports.v1 as after a national SMS wave; the service is
  started and the rate is counted from the first stored sum until the stored sums account for
  all N. The records are produced with aiokafka's batch API: kafka-python's producer manages
  about 12,000 records a second here, which would make the setup longer than the measurement;
- scorecard query latency over 10 million tasks: the tasks, their lost items and the
  pre-aggregated counters are bulk-loaded straight into the evaluation schema's tables (SQL
  over generate_series: setup, not the service's write path); then GetScorecard (months,
  quarters, the year; random agencies and provinces) and ListRankings are called over gRPC,
  one at a time, and timed end to end;
- the service's resident memory, idle (started, nothing to do) and loaded (its peak);
- in the same run, baselines on the same machine: a raw kafka-python consumer and a raw
  aiokafka consumer reading the same records without decoding them; the same counters and
  lost-items SQL issued directly with asyncpg; and, for scale, the naive GROUP BY over the
  tasks table that the counters replace. Each figure is printed with its ratio to its baseline.

Results go to stdout and to tests/bench/results/evaluation.json. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import tempfile
import time
from contextlib import ExitStack
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import grpc
import psutil
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from deploy.local.kafka_broker import free_port
from policy.common.v1 import common_pb2 as common
from policy.communication.v1 import events_pb2 as tasks
from policy.evaluation.v1 import evaluation_service_pb2 as api
from policy.evaluation.v1 import evaluation_service_pb2_grpc as api_grpc
from policykit.envelope import new_event, to_record
from policykit.reference import default as reference_data
from services.evaluation.scorecards import COUNTERS_SQL, LOST_ITEMS_SQL
from services.evaluation.scoring import COMPONENT_NAMES
from tests.bench.baselines import aiokafka_consume_rate, kafka_python_consume_rate
from tests.bench.measure import broker_and_database, percentiles, run_timed
from tests.support import idle_rss_mb, start_service

RESULTS = Path(__file__).with_name("results") / "evaluation.json"
TOPIC = "policy.delivery-reports.v1"
VIETNAM = timezone(timedelta(hours=7))
YEAR = 2027
TARGETS = {"delivery_reports_per_s": 50_000, "scorecard_p95_ms": 200}


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


# Delivery reports.

def delivery_records(distinct: int) -> list[tuple[bytes, bytes, list]]:
    """Pre-encoded reports: 20 regulations × 40 region ids × 3 channels, over three days."""
    regions = ["national", *(p.id for p in reference_data().provinces_in_force(date(2025, 7, 1))),
               "02", "08", "04", "46", "79"]
    channels = (common.CHANNEL_SMS, common.CHANNEL_COMMUNE_LOUDSPEAKER, common.CHANNEL_PRESS)
    start = datetime(YEAR, 3, 2, 8, tzinfo=VIETNAM)
    records = []
    for i in range(distinct):
        report = tasks.DeliveryReported(
            regulation_id=f"song-{i % 20:02d}", channel=channels[i % 3],
            region_id=regions[i % len(regions)], reach_count=1, reporter="sms-gateway")
        report.delivered_at.FromDatetime(start + timedelta(minutes=i % 4320))
        records.append(to_record(new_event(report, "urn:sms-gateway")))
    return records


async def produce(bootstrap: str, records: list, total: int) -> float:
    """Produces `total` records cycling over `records`, each to its key's partition; returns
    the rate."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20,
                                max_batch_size=1024 * 1024)
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(TOPIC))
        partitioner = DefaultPartitioner()
        by_partition: dict[int, list] = {}
        for record in records:
            by_partition.setdefault(partitioner(record[0], partitions, partitions), []).append(
                record)
        started = time.perf_counter()
        sent, futures = 0, []
        while sent < total:
            for partition, chosen in by_partition.items():
                batch = producer.create_batch()
                index = 0
                while sent < total:
                    key, value, headers = chosen[index % len(chosen)]
                    if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                        break
                    index += 1
                    sent += 1
                batch.close()
                futures.append(await producer.send_batch(batch, TOPIC, partition=partition))
                if sent >= total:
                    break
        await asyncio.gather(*futures)
        return total / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def aggregation_rate(database_url: str, total: int, pid: int,
                           timeout: float = 600) -> tuple[float, float]:
    """Watches the stored sums until they account for `total` reports; returns the rate from
    the first stored sum to the last, and the service's peak memory meanwhile."""
    conn = await asyncpg.connect(database_url)
    peak = 0.0
    try:
        first = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counted = await conn.fetchval(
                "SELECT coalesce(sum(reports), 0)::bigint FROM evaluation.delivery_totals")
            now = time.perf_counter()
            peak = max(peak, rss_mb(pid))
            if counted >= total and first is not None:
                return (counted - first[1]) / (now - first[0]), peak
            if counted and first is None:
                first = (now, counted)
            await asyncio.sleep(0.2)
        raise RuntimeError(f"only {counted} of {total} reports aggregated in {timeout}s")
    finally:
        await conn.close()


# Scorecards over 10 million tasks.

def subjects() -> tuple[list[str], list[str]]:
    """Agency and province ids tasks are recorded under: those in force, a few merged ones."""
    reference = reference_data()
    agencies = [a.id for a in reference.agencies_in_force(date(YEAR, 1, 1))]
    provinces = [p.id for p in reference.provinces_in_force(date(YEAR, 1, 1))]
    return agencies + ["btnmt", "bgtvt"], provinces + ["02", "46", "79"]


async def without_indexes(conn: asyncpg.Connection, table: str) -> list[str]:
    """Drops the table's primary key and indexes; returns the statements that rebuild them."""
    primary = await conn.fetchrow(
        "SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint"
        " WHERE conrelid = $1::regclass AND contype = 'p'", table)
    indexes = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        " AND tablename = $1 AND indexname <> $2", table, primary["conname"])
    await conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{primary["conname"]}"')
    for index in indexes:
        await conn.execute(f'DROP INDEX "{index["indexname"]}"')
    return [f'ALTER TABLE {table} ADD CONSTRAINT "{primary["conname"]}" '
            f'{primary["definition"]}', *(index["indexdef"] for index in indexes)]


async def load_tasks(database_url: str, count: int) -> dict[str, float]:
    """Bulk-loads `count` tasks with their lost items and counters into the evaluation schema,
    building the indexes after the rows (as a restore would); returns the timings."""
    agencies, provinces = subjects()
    owners = ([f"{a}.communication" for a in agencies] + ["vtv", "vov"]
              + [f"{p}.information-department" for p in provinces]
              + [f"{p}.commune-officers" for p in provinces])
    kinds = [1 if owner.split(".")[0] in agencies else 2 for owner in owners]
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "evaluation"})
    timings = {}
    try:
        await conn.execute("SET maintenance_work_mem = '512MB'")
        rebuild = [*await without_indexes(conn, "tasks"),
                   *await without_indexes(conn, "lost_items")]
        started = time.perf_counter()
        # Outcome by i % 50: 35 on time, 5 late, 4 overdue, 5 open, 1 cancelled; a quarter of
        # the settled ones reached nobody.
        await conn.execute("""
            INSERT INTO tasks (task_id, regulation_id, trigger_event_id, kind, title, channel,
                owner_org_id, audience, targets, unreached, due_at, created_at, status,
                goes_first, completed_at, late, evidence_reach, overdue_at)
            SELECT md5(i::text)::uuid, 'reg-' || (i % 50000), 'event-' || (i / 12),
                'press-release', 'Nhiệm vụ truyền thông ' || i, 1 + i % 9, o.owner,
                'general-public', t.targets, CASE WHEN i % 4 = 0 AND s.settled THEN t.targets
                ELSE '{}' END, due, due - interval '20 days', s.status, false,
                CASE WHEN s.status = 5 THEN due + CASE WHEN s.late THEN interval '2 days'
                ELSE interval '-1 day' END END, s.late, 0,
                CASE WHEN s.overdue THEN due + interval '1 hour' END
            FROM generate_series(1, $1::bigint) AS i,
            LATERAL (SELECT $2::text[] AS owners) AS arrays,
            LATERAL (SELECT arrays.owners[1 + (i * 7919) % cardinality(arrays.owners)]
                     AS owner) AS o,
            LATERAL (SELECT CASE WHEN position('.' IN o.owner) > 0
                     AND split_part(o.owner, '.', 2) <> 'communication'
                     THEN ARRAY[split_part(o.owner, '.', 1)] ELSE '{national}'::text[] END
                     AS targets) AS t,
            LATERAL (SELECT timestamptz '2027-01-01 00:00+07'
                     + ((i * 104729) % 31536000) * interval '1 second' AS due) AS d,
            LATERAL (SELECT CASE WHEN i % 50 < 40 THEN 5 WHEN i % 50 < 44 THEN 6
                     WHEN i % 50 < 49 THEN 3 ELSE 7 END AS status,
                     i % 50 BETWEEN 35 AND 39 AS late, i % 50 BETWEEN 40 AND 43 AS overdue,
                     i % 50 < 44 AS settled) AS s""", count, owners)
        timings["tasks_insert_s"] = time.perf_counter() - started
        started = time.perf_counter()
        units = "SELECT unnest($1::text[]) AS owner_org_id, unnest($2::smallint[]) AS kind"
        # Months and dates in Vietnam time (UTC+07:00, no daylight saving).
        local = "((t.due_at AT TIME ZONE 'UTC') + interval '7 hours')"
        month = f"date_trunc('month', {local})::date"
        await conn.execute(f"""
            INSERT INTO lost_items (item_key, component, subject_kind, unit_id, month, severity,
                at, regulation_id, task_id, item_id, owner_org_id, reason)
            SELECT 'task:' || t.task_id, c.component, u.kind, split_part(t.owner_org_id, '.', 1),
                {month}, c.severity, t.due_at, t.regulation_id, t.task_id, '', t.owner_org_id,
                c.reason || ': ' || t.kind || ' (' || t.owner_org_id || '), hạn '
                || to_char({local}, 'YYYY-MM-DD')
            FROM tasks t JOIN ({units}) u USING (owner_org_id),
            LATERAL (VALUES
                ('timeliness', CASE WHEN t.late THEN 0.5 ELSE 1 END,
                 CASE WHEN t.late THEN 'Hoàn thành trễ hạn' ELSE 'Nhiệm vụ quá hạn' END,
                 t.late OR t.status = 6),
                ('coverage', cardinality(t.unreached), 'Chưa có báo cáo tiếp cận',
                 cardinality(t.unreached) > 0)) AS c(component, severity, reason, lost)
            WHERE c.lost""", owners, kinds)
        timings["lost_items_insert_s"] = time.perf_counter() - started
        started = time.perf_counter()
        for statement in rebuild:
            await conn.execute(statement)
        timings["indexes_s"] = time.perf_counter() - started
        started = time.perf_counter()
        settled = "(t.status = 5 OR t.status = 6)"
        await conn.execute(f"""
            INSERT INTO score_counters (subject_kind, month, unit_id, tasks, tasks_on_time,
                tasks_late, tasks_overdue, coverage_targets, coverage_reached, lost_items,
                changed, changed_by_regulation)
            SELECT u.kind, {month}, split_part(t.owner_org_id, '.', 1),
                count(*) FILTER (WHERE t.status <> 7),
                count(*) FILTER (WHERE t.status = 5 AND NOT t.late),
                count(*) FILTER (WHERE t.status = 5 AND t.late),
                count(*) FILTER (WHERE t.status = 6),
                coalesce(sum(cardinality(t.targets)) FILTER (WHERE {settled}), 0),
                coalesce(sum(cardinality(t.targets) - cardinality(t.unreached))
                         FILTER (WHERE {settled}), 0),
                count(*) FILTER (WHERE t.late OR t.status = 6)
                + count(*) FILTER (WHERE cardinality(t.unreached) > 0),
                false, max(t.regulation_id)
            FROM tasks t JOIN ({units}) u USING (owner_org_id)
            GROUP BY 1, 2, 3""", owners, kinds)
        timings["counters_s"] = time.perf_counter() - started
        await conn.execute("ANALYZE")
        timings["lost_items"] = await conn.fetchval("SELECT count(*) FROM lost_items")
        timings["counter_rows"] = await conn.fetchval("SELECT count(*) FROM score_counters")
    finally:
        await conn.close()
    return timings


def scorecard_requests(calls: int) -> list[api.GetScorecardRequest]:
    agencies, provinces = subjects()
    periods = ([f"{YEAR}-{m:02d}" for m in range(1, 13)] * 5
               + [f"{YEAR}-Q{q}" for q in range(1, 5)] * 5 + [str(YEAR)] * 6)
    chooser = random.Random(42)
    requests = []
    for _ in range(calls):
        kind = chooser.choice((api.SCORECARD_KIND_AGENCY, api.SCORECARD_KIND_PROVINCE))
        subject = chooser.choice(agencies[:-2] if kind == api.SCORECARD_KIND_AGENCY
                                 else provinces[:-3])  # those in force
        requests.append(api.GetScorecardRequest(kind=kind, subject_id=subject,
                                                period=chooser.choice(periods)))
    return requests


def grpc_latencies(target: str, calls: int) -> dict[str, dict]:
    results = {}
    with grpc.insecure_channel(target) as channel:
        stub = api_grpc.EvaluationServiceStub(channel)
        timings = []
        for request in scorecard_requests(calls):
            started = time.perf_counter()
            card = stub.GetScorecard(request, timeout=30).scorecard
            timings.append(1000 * (time.perf_counter() - started))
            assert card.kpis, "a scorecard without KPIs"
        results["get_scorecard_ms"] = percentiles(timings)
        timings = []
        for i in range(calls // 2):
            request = api.ListRankingsRequest(
                kind=(api.SCORECARD_KIND_AGENCY, api.SCORECARD_KIND_PROVINCE)[i % 2],
                period=(f"{YEAR}-{1 + i % 12:02d}", f"{YEAR}-Q{1 + i % 4}", str(YEAR))[i % 3])
            started = time.perf_counter()
            ranked = stub.ListRankings(request, timeout=30).scorecards
            timings.append(1000 * (time.perf_counter() - started))
            assert ranked, "an empty ranking"
        results["list_rankings_ms"] = percentiles(timings)
    return results


async def asyncpg_latencies(database_url: str, calls: int) -> dict[str, dict]:
    """The service's scorecard SQL issued directly: counters of a period, then the largest
    lost items of one subject."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "evaluation"})
    try:
        timings = []
        for request in scorecard_requests(calls):
            months = _months(request.period)
            started = time.perf_counter()
            await conn.fetch(COUNTERS_SQL, request.kind, months)
            await conn.fetch(LOST_ITEMS_SQL, request.kind, [request.subject_id], months,
                             list(COMPONENT_NAMES), 50)
            timings.append(1000 * (time.perf_counter() - started))
        naive = []
        for month in range(1, 4):
            started = time.perf_counter()
            await conn.fetch(
                "SELECT split_part(owner_org_id, '.', 1), count(*) FILTER (WHERE status <> 7),"
                " count(*) FILTER (WHERE status = 5 AND NOT late),"
                " count(*) FILTER (WHERE status = 6) FROM tasks"
                " WHERE due_at >= $1 AND due_at < $2 GROUP BY 1",
                datetime(YEAR, month, 1, tzinfo=VIETNAM),
                datetime(YEAR, month + 1, 1, tzinfo=VIETNAM))
            naive.append(1000 * (time.perf_counter() - started))
        return {"scorecard_sql_ms": percentiles(timings), "naive_month_scan_ms": percentiles(naive)}
    finally:
        await conn.close()


def _months(period: str) -> list[date]:
    if "-Q" in period:
        quarter = int(period[-1])
        return [date(YEAR, 3 * quarter - 2 + i, 1) for i in range(3)]
    if "-" in period:
        return [date(YEAR, int(period[5:]), 1)]
    return [date(YEAR, m, 1) for m in range(1, 13)]


def run(reports: int, task_count: int, calls: int, kafka_python_sample: int) -> dict:
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-eval-")))
        bootstrap, database_url = stack.enter_context(broker_and_database(workdir))
        env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DATABASE_URL": database_url,
               "EVALUATION_DASHBOARD_PORT": str(free_port()), "LOG_LEVEL": "WARNING"}

        print("starting the service idle …", flush=True)
        service = start_service("services.evaluation", workdir, env)
        idle_rss = idle_rss_mb(service.process.pid)
        service.terminate()

        print(f"producing {reports:,} delivery reports …", flush=True)
        records = delivery_records(50_000)
        produce_rate = asyncio.run(produce(bootstrap, records, reports))
        print(f"measuring baselines: kafka-python on {kafka_python_sample:,}, aiokafka on all …",
              flush=True)
        kafka_python_rate = kafka_python_consume_rate(bootstrap, TOPIC, kafka_python_sample)
        aiokafka_rate = asyncio.run(aiokafka_consume_rate(bootstrap, TOPIC, reports))

        print("aggregating …", flush=True)
        service = start_service("services.evaluation", workdir, env)
        stack.callback(service.terminate)
        aggregated_rate, delivery_rss = asyncio.run(
            aggregation_rate(database_url, reports, service.process.pid))

        print(f"loading {task_count:,} tasks …", flush=True)
        load = asyncio.run(load_tasks(database_url, task_count))
        print(f"timing {calls} scorecards and {calls // 2} rankings …", flush=True)
        service_latency = grpc_latencies(service.grpc_target, calls)
        raw_latency = asyncio.run(asyncpg_latencies(database_url, calls))
        loaded_rss = max(delivery_rss, rss_mb(service.process.pid))

    scorecard, rankings = service_latency["get_scorecard_ms"], service_latency["list_rankings_ms"]
    raw = raw_latency["scorecard_sql_ms"]
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "memory_gb": round(psutil.virtual_memory().total / 2**30, 1)},
        "targets": TARGETS,
        "delivery_reports": {
            "reports": reports, "produced_per_s": round(produce_rate),
            "aggregated_per_s": round(aggregated_rate),
            "hours_for_100_million": round(1e8 / aggregated_rate / 3600, 2),
            "baseline_kafka_python_consume_per_s": round(kafka_python_rate),
            "ratio_to_kafka_python": round(aggregated_rate / kafka_python_rate, 2),
            "baseline_aiokafka_consume_per_s": round(aiokafka_rate),
            "ratio_to_aiokafka": round(aggregated_rate / aiokafka_rate, 2)},
        "scorecards": {
            "tasks": task_count, "load": {k: round(v, 1) for k, v in load.items()},
            "get_scorecard_ms": scorecard, "list_rankings_ms": rankings,
            "baseline_asyncpg_scorecard_sql_ms": raw,
            "ratio_get_scorecard_p95_to_asyncpg": round(scorecard["p95"] / raw["p95"], 2),
            "naive_month_scan_ms": raw_latency["naive_month_scan_ms"],
            "ratio_naive_scan_to_get_scorecard_p50": round(
                raw_latency["naive_month_scan_ms"]["p50"] / scorecard["p50"], 1)},
        "rss_mb": {"idle": round(idle_rss, 1), "loaded": round(loaded_rss, 1),
                   "ratio_loaded_to_idle": round(loaded_rss / idle_rss, 2)},
    }


def show(results: dict) -> None:
    d, s, m = results["delivery_reports"], results["scorecards"], results["rss_mb"]
    rows = [
        ("delivery reports aggregated", f"{d['aggregated_per_s']:,}/s",
         f"×{d['ratio_to_kafka_python']} raw kafka-python "
         f"({d['baseline_kafka_python_consume_per_s']:,}/s), ×{d['ratio_to_aiokafka']} raw "
         f"aiokafka ({d['baseline_aiokafka_consume_per_s']:,}/s)"),
        ("100 million reports", f"{d['hours_for_100_million']} h", "target ≥ 50,000/s ≈ 0.56 h"),
        (f"GetScorecard over {s['tasks']:,} tasks", f"p50 {s['get_scorecard_ms']['p50']:.1f} ms, "
         f"p95 {s['get_scorecard_ms']['p95']:.1f} ms",
         f"×{s['ratio_get_scorecard_p95_to_asyncpg']} raw asyncpg p95 "
         f"({s['baseline_asyncpg_scorecard_sql_ms']['p95']:.1f} ms); target p95 ≤ 200 ms"),
        ("ListRankings", f"p50 {s['list_rankings_ms']['p50']:.1f} ms, "
         f"p95 {s['list_rankings_ms']['p95']:.1f} ms", ""),
        ("naive GROUP BY over a month of tasks", f"p50 {s['naive_month_scan_ms']['p50']:.0f} ms",
         f"×{s['ratio_naive_scan_to_get_scorecard_p50']} a GetScorecard"),
        ("service memory", f"idle {m['idle']} MB, loaded {m['loaded']} MB",
         f"×{m['ratio_loaded_to_idle']}"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:<32} {note}")


def main(argv: list[str] | None = None, results_path: Path = RESULTS) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_evaluation",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=2_000_000)
    parser.add_argument("--tasks", type=int, default=10_000_000)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--kafka-python-sample", type=int, default=300_000)
    args = parser.parse_args(argv)
    run_timed(lambda: run(args.reports, args.tasks, args.calls, args.kafka_python_sample),
              show, results_path)


if __name__ == "__main__":
    main()
