"""The benchmark harness at its smallest scale, against a real broker and PostgreSQL server of
its own: every benchmark runs and the JSON carries every figure with a positive value and a
positive ratio to its baseline. No timing is asserted: the machine is shared."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.bench.__main__ import BENCHES
from tests.support import PLATFORM_SERVICES, PYTHONPATH, REPO


def run_module(module: str, *args: str, timeout: float) -> str:
    """Runs `python -m module args` from the repository; returns its output, which it must
    end without error."""
    run = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO,
                         env={**os.environ, "PYTHONPATH": PYTHONPATH},
                         capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return run.stdout


def test_small_run_reports_every_figure_against_a_baseline(tmp_path):
    output = tmp_path / "latest.json"
    run_module("tests.bench", "--scale", "small", "--output", str(output), timeout=900)
    results = json.loads(output.read_text())

    assert results["errors"] == {}
    assert set(results["benches"]) == set(BENCHES)
    assert all(value > 0 for value in results["baselines"].values()), results["baselines"]
    for figure in results["figures"]:
        assert figure["value"] > 0 and figure["baseline_value"] > 0, figure
        assert figure["ratio"] > 0, figure
    names = {figure["figure"] for figure in results["figures"]}
    for service in PLATFORM_SERVICES:
        assert {f"{service} RSS idle", f"{service} RSS peak under load"} <= names
    for expected in ("kafka-python produce", "aiokafka consume", "asyncpg executemany",
                     "loopback round trip",
                     "lifecycle events applied, saturated",
                     "lifecycle events applied, saturated, 2 replicas",
                     "lifecycle latency p99 at 50 events/s, 2 replicas",
                     "comment intake, bulk, durable",
                     "comment intake, unary p99", "comment intake, bulk, durable, 2 replicas",
                     "comment intake, unary p99, 2 replicas", "delivery reports aggregated"):
        assert expected in names, names
    assert any(name.startswith("GetScorecard p95") for name in names), names
    for load in results["benches"]["lifecycle"]["latency"].values():
        assert load["service"]["p50_ms_by_window"], load  # the latency over the load's course
        assert load["service"]["event_loop_lag"]["samples"] > 0, load  # scraped from /metrics
    assert results["git"]["commit"] and results["load_average_after"]


def test_the_engine_profile_runs_and_writes_its_statistics(tmp_path):
    statistics = tmp_path / "engine.prof"
    output = run_module("tests.bench.profile_engine", "--events", "200", "--profile",
                        str(statistics), "--statements", timeout=600)
    assert "batch handler: " in output and "outbox relay: " in output, output
    assert "5 registrations a batch, then a relay pass: 200 batches" in output, output
    assert "this process" in output and "meanwhile kafka" in output, output
    assert "PostgreSQL's CPU by statement" in output and "INSERT INTO inbox" in output, output
    assert statistics.stat().st_size > 0


def test_an_a_b_of_a_revision_with_itself_runs_both_sides_in_worktrees_and_removes_them(
        tmp_path):
    worktrees_before = subprocess.run(["git", "-C", str(REPO), "worktree", "list"],
                                      capture_output=True, text=True, check=True).stdout
    output = run_module("tests.bench.ab", "HEAD", "HEAD", "--pairs", "1", "--pause", "0",
                        "--output", str(tmp_path), "--", "--events", "300", "--loads", "50",
                        "--seconds", "2", "--baseline-rows", "300", "--replicas", "1",
                        timeout=600)
    summary = json.loads((tmp_path / "summary.json").read_text())

    assert [(run["pair"], run["side"]) for run in summary["runs"]] == [(1, "A"), (1, "B")]
    assert summary["bench_argv"][:2] == ["--events", "300"]
    figures = {figure["figure"]: figure for figure in summary["summary"]}
    assert {"saturated events/s", "p99 at 50/s (ms)"} <= set(figures), figures
    assert all(figure["median_base"] > 0 for figure in figures.values()), figures
    assert "B won" in output and (tmp_path / "pair1-B.log").stat().st_size > 0
    assert subprocess.run(["git", "-C", str(REPO), "worktree", "list"], capture_output=True,
                          text=True, check=True).stdout == worktrees_before
