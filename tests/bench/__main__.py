"""The benchmark harness `make bench` runs: `python -m tests.bench [--scale small|full]
[--only NAME ...] [--output FILE]` (PYTHONPATH=.:gen/python:libs:clients).

It starts one Kafka broker and one PostgreSQL server, measures the baselines once against them
(tests/bench/baselines.py: Kafka's own ProducerPerformance and ConsumerPerformance, kafka-python
and aiokafka, asyncpg executemany and COPY, an empty gRPC call, a loopback round trip on one
core and on two), then runs each platform benchmark and prints one table: every platform figure
beside the baseline it rests on and their ratio, so that the noise of a shared machine mostly
cancels.

The memory benchmark runs against the harness's broker and server. The lifecycle, consultation
intake and evaluation benchmarks start a broker and a server of their own (their services'
consumer state must not meet anything else's), so they also measure baselines of their own:
the table shows each figure against the harness's baseline and against the bench's own.

`--scale full` (the default) takes the issue's sizes, 10 million tasks for the scorecards
among them, in about twenty minutes on two cores, and writes tests/bench/results/latest.json
(every figure, and each benchmark's own results) and memory.json; `--scale small` takes a few
minutes and writes .cache/bench/small/latest.json. The benchmarks' own files (what `python -m
tests.bench.bench_<name>` writes to tests/bench/results) go to .cache/bench/<scale>/.
Nothing here asserts a timing."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import psutil

from deploy.local.kafka_broker import KAFKA_VERSION
from tests.bench import baselines, bench_memory
from tests.bench.bench_evaluation import delivery_records
from tests.bench.measure import broker_and_database, write_results
from tests.support import REPO

RESULTS_DIR = Path(__file__).with_name("results")
BENCHES = ("memory", "lifecycle", "consultation_intake", "evaluation")
SCALES = {
    "small": {
        "baselines": {"tool_records": 50_000, "client_records": 5_000, "rows": 2_000,
                      "grpc_calls": 300, "round_trips": 2_000},
        "memory": {"drafts": 5, "comments": 500, "reports": 20_000},
        "lifecycle": ["--events", "600", "--loads", "50", "--seconds", "3",
                      "--baseline-rows", "500"],
        "consultation_intake": ["--comments", "1000", "--streams", "4", "--per-message", "100",
                                "--unary", "300", "--concurrency", "8"],
        # Fewer reports would be aggregated between two of the bench's counts.
        "evaluation": ["--reports", "100000", "--tasks", "20000", "--calls", "20",
                       "--kafka-python-sample", "20000"],
    },
    "full": {
        "baselines": {"tool_records": 1_000_000, "client_records": 100_000, "rows": 200_000,
                      "grpc_calls": 20_000, "round_trips": 20_000},
        "memory": {"drafts": 300, "comments": 50_000, "reports": 500_000},
        # The benchmarks' own defaults are the issue's sizes.
        "lifecycle": [], "consultation_intake": [], "evaluation": [],
    },
}


def record_bytes() -> int:
    """The value size of a delivery report, the most numerous record on the platform: the
    size every Kafka baseline uses."""
    values = [len(value) for _, value, _ in delivery_records(1_000)]
    return round(sum(values) / len(values))


def run_main(name: str, argv: list[str], scratch: Path) -> dict:
    """Runs a benchmark's own main() with `argv`, its file written to `scratch`; returns it."""
    module = importlib.import_module(f"tests.bench.bench_{name}")
    results = scratch / module.RESULTS.name
    module.main(argv, results)
    return json.loads(results.read_text())


def figure(name: str, value: float, unit: str, baseline: str, baseline_value: float,
           note: str = "") -> dict:
    return {"figure": name, "value": value, "unit": unit, "baseline": baseline,
            "baseline_value": baseline_value, "ratio": value / baseline_value, "note": note}


def baseline_figures(b: dict) -> list[dict]:
    producer, consumer = "Kafka ProducerPerformance", "Kafka ConsumerPerformance"
    return [
        figure("kafka-python produce", b["kafka_python_produce_per_s"], "records/s", producer,
               b["kafka_tools_produce_per_s"]),
        figure("aiokafka batch produce", b["aiokafka_produce_per_s"], "records/s", producer,
               b["kafka_tools_produce_per_s"]),
        figure("kafka-python consume", b["kafka_python_consume_per_s"], "records/s", consumer,
               b["kafka_tools_consume_per_s"]),
        figure("aiokafka consume", b["aiokafka_consume_per_s"], "records/s", consumer,
               b["kafka_tools_consume_per_s"]),
        figure("asyncpg executemany", b["asyncpg_insert_rows_per_s"], "rows/s", "asyncpg COPY",
               b["asyncpg_copy_rows_per_s"]),
        figure("loopback round trip", b["loopback_round_trip_us"], "µs",
               "the same on one core", b["loopback_round_trip_one_core_us"]),
    ] + ([figure("loopback round trip, two cores", b["loopback_round_trip_two_cores_us"], "µs",
                 "the same on one core", b["loopback_round_trip_one_core_us"])]
         if "loopback_round_trip_two_cores_us" in b else [])


def memory_figures(m: dict, b: dict) -> list[dict]:
    floor, target = m["floor_mb"], m["target_idle_mb"]
    rows = []
    for name, service in m["services"].items():
        rows += [figure(f"{name} RSS idle", service["idle_mb"], "MB", "bare Python floor", floor,
                        f"< {target} MB" if service["idle_mb"] < target else f"OVER {target} MB"),
                 figure(f"{name} RSS peak under load", service["peak_mb"], "MB",
                        "bare Python floor", floor)]
    return rows


def lifecycle_figures(life: dict, b: dict) -> list[dict]:
    s = life["saturated"]
    rows = [
        figure("lifecycle events applied, saturated", s["events_per_s"], "events/s",
               "aiokafka consume", b["aiokafka_consume_per_s"]),
        figure("lifecycle events applied, saturated", s["events_per_s"], "events/s",
               "aiokafka consume (own broker)", s["baseline_aiokafka_consume_per_s"]),
        figure("lifecycle tasks stored and emitted", s["tasks_per_s"], "tasks/s",
               "asyncpg executemany", b["asyncpg_insert_rows_per_s"]),
        figure("lifecycle tasks stored and emitted", s["tasks_per_s"], "tasks/s",
               "asyncpg row INSERT (own server)", s["baseline_asyncpg_row_insert_per_s"]),
    ]
    for rate, latency in life["latency"].items():
        service, raw = latency["service"], latency["baseline_raw_kafka"]
        rows.append(figure(f"lifecycle latency p99 at {rate} events/s", service["p99_ms"], "ms",
                           "raw Kafka p99, same load (own broker)", raw["p99_ms"]))
    return rows + replicated_lifecycle_figures(life, b)


def replicated_lifecycle_figures(life: dict, b: dict) -> list[dict]:
    """The same lifecycle against several replicas of the task engine, against the consuming
    baseline and against one replica measured in the same run."""
    replicated = life.get("replicated")
    if not replicated:
        return []
    s, replicas = replicated["saturated"], f"{replicated['replicas']} replicas"
    rows = [
        figure(f"lifecycle events applied, saturated, {replicas}", s["events_per_s"],
               "events/s", "aiokafka consume", b["aiokafka_consume_per_s"]),
        figure(f"lifecycle events applied, saturated, {replicas}", s["events_per_s"],
               "events/s", "one replica (own run)", life["saturated"]["events_per_s"]),
    ]
    for rate, latency in replicated["latency"].items():
        raw = life["latency"][rate]["baseline_raw_kafka"]
        rows.append(figure(f"lifecycle latency p99 at {rate} events/s, {replicas}",
                           latency["service"]["p99_ms"], "ms",
                           "raw Kafka p99, same load (own broker)", raw["p99_ms"]))
    return rows


def consultation_intake_figures(c: dict, b: dict) -> list[dict]:
    bulk, unary, own = c["bulk"]["durable_per_second"], c["unary"], c["baseline"]
    return [
        figure("comment intake, bulk, durable", bulk, "comments/s", "asyncpg COPY",
               b["asyncpg_copy_rows_per_s"]),
        figure("comment intake, bulk, durable", bulk, "comments/s", "aiokafka batch produce",
               b["aiokafka_produce_per_s"]),
        figure("comment intake, bulk, durable", bulk, "comments/s",
               "asyncpg COPY (own server)", own["asyncpg_copy_rows_per_second"]),
        figure("comment intake, unary", unary["per_second"], "requests/s",
               "empty gRPC unary", b["grpc_empty_unary_per_s"]),
        figure("comment intake, unary", unary["per_second"], "requests/s",
               "empty gRPC unary (own run)", own["grpc_empty_unary_per_second"]),
        figure("comment intake, unary p99", unary["p99_ms"], "ms", "empty gRPC unary p99",
               b["grpc_empty_unary_p99_ms"]),
        *replicated_intake_figures(c, b),
    ]


def replicated_intake_figures(c: dict, b: dict) -> list[dict]:
    """The same intake against several replicas of the service, against COPY and against one
    replica measured in the same run."""
    if not c.get("replicated"):
        return []
    bulk, unary = c["replicated"]["bulk"], c["replicated"]["unary"]
    replicas = f"{bulk['replicas']} replicas"
    return [
        figure(f"comment intake, bulk, durable, {replicas}", bulk["durable_per_second"],
               "comments/s", "asyncpg COPY", b["asyncpg_copy_rows_per_s"]),
        figure(f"comment intake, bulk, durable, {replicas}", bulk["durable_per_second"],
               "comments/s", "one replica (own run)", c["bulk"]["durable_per_second"]),
        figure(f"comment intake, unary, {replicas}", unary["per_second"], "requests/s",
               "empty gRPC unary", b["grpc_empty_unary_per_s"]),
        figure(f"comment intake, unary, {replicas}", unary["per_second"], "requests/s",
               "one replica (own run)", c["unary"]["per_second"]),
        figure(f"comment intake, unary p99, {replicas}", unary["p99_ms"], "ms",
               "empty gRPC unary p99", b["grpc_empty_unary_p99_ms"]),
    ]


def evaluation_figures(e: dict, b: dict) -> list[dict]:
    d, s = e["delivery_reports"], e["scorecards"]
    return [
        figure("delivery reports aggregated", d["aggregated_per_s"], "reports/s",
               "aiokafka consume", b["aiokafka_consume_per_s"]),
        figure("delivery reports aggregated", d["aggregated_per_s"], "reports/s",
               "aiokafka consume (own broker)", d["baseline_aiokafka_consume_per_s"]),
        figure(f"GetScorecard p95 over {s['tasks']:,} tasks", s["get_scorecard_ms"]["p95"], "ms",
               "the same SQL over asyncpg, p95 (own server)",
               s["baseline_asyncpg_scorecard_sql_ms"]["p95"]),
    ]


FIGURES = {"memory": memory_figures, "lifecycle": lifecycle_figures,
           "consultation_intake": consultation_intake_figures, "evaluation": evaluation_figures}


def git_commit() -> dict:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True,
                              text=True).stdout.strip()
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def machine() -> dict:
    return {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "kafka": KAFKA_VERSION}


def show(results: dict) -> None:
    base = results["baselines"]
    print("\nbaselines (the harness's broker and server)")
    for name, value in base.items():
        print(f"  {name:<32} {value:>14,.1f}")
    rows = [(f["figure"], f"{f['value']:,.1f} {f['unit']}", f["baseline"],
             f"{f['baseline_value']:,.1f}", f"{f['ratio']:.3f}", f["note"])
            for f in results["figures"]]
    header = ("figure", "value", "baseline", "baseline value", "ratio", "")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) if i in (0, 2, 5) else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
    for name, error in results["errors"].items():
        print(f"{name}: FAILED: {error}")
    print(f"\nload average before / after: {results['load_average_before'][0]:.1f} / "
          f"{results['load_average_after'][0]:.1f}; {results['wall_clock_s']} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--only", action="append", choices=BENCHES,
                        help="run only this benchmark (repeatable); the baselines always run")
    parser.add_argument("--output", type=Path, help="the JSON file (default: latest.json in "
                        "tests/bench/results for full, in .cache/bench/small for small)")
    args = parser.parse_args(argv)
    sizes = SCALES[args.scale]
    # The committed results are the full run's; the benchmarks' own files are by-products.
    scratch = REPO / ".cache" / "bench" / args.scale
    scratch.mkdir(parents=True, exist_ok=True)
    results_dir = RESULTS_DIR if args.scale == "full" else scratch
    output = args.output or results_dir / "latest.json"
    started_at, started = datetime.now(timezone.utc), time.monotonic()
    load_before = os.getloadavg()
    benches, figures, errors = {}, [], {}

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, broker_and_database(
            Path(tmp)) as (bootstrap, database_url):
        measured = baselines.measure(bootstrap, database_url, Path(tmp), record_bytes(),
                                     **sizes["baselines"])
        figures += baseline_figures(measured)
        for name in args.only or BENCHES:
            print(f"\n== {name} ==", flush=True)
            try:
                if name == "memory":
                    benches[name] = bench_memory.run(bootstrap, database_url, Path(tmp),
                                                     **sizes[name])
                    bench_memory.show(benches[name])
                    write_results(benches[name], results_dir / bench_memory.RESULTS.name)
                else:
                    benches[name] = run_main(name, sizes[name], scratch)
                figures += FIGURES[name](benches[name], measured)
            except Exception as error:  # the other benchmarks still run; the exit code says it
                traceback.print_exc()
                errors[name] = f"{type(error).__name__}: {error}"

    results = {
        "scale": args.scale, "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_clock_s": round(time.monotonic() - started), "git": git_commit(),
        "machine": machine(), "load_average_before": load_before,
        "load_average_after": os.getloadavg(), "baselines": measured, "figures": figures,
        "errors": errors, "benches": benches,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", "utf-8")
    show(results)
    print(f"written to {output}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
