"""Interleaved A/B of two revisions with one benchmark: `python -m tests.bench.ab BASE
CANDIDATE [--bench lifecycle] [--pairs 6] [-- the benchmark's own options]` (`make ab`).

On this shared 2-core machine one run each way decides nothing: the same commit's lifecycle p99
at 200 events/s has ranged 137–323 ms in one morning. So the two revisions run in pairs, their
order alternating (A B, B A, A B …) so that a drift of the machine over the session falls on
both; each figure is kept for every run and shown, after every pair, as the median of each
side, the median of the pairs' ratios (candidate / base), and as how many pairs the candidate
won, with the exact two-sided sign test's p-value for that count (tossing a coin for each of 6
pairs splits them 5–1 or more unevenly 22 % of the time: p = 0.22).

Each revision is checked out into a git worktree of its own (`.venv` and `.cache` shared with
this checkout, its protobuf code generated from its own protos), and the benchmark runs there
through its `main(argv, results_path)`, which every revision since the harness has. To test
changes not committed yet, give `$(git stash create)` as the candidate. Everything is kept in
.cache/bench/ab/<time>/: each run's results and output, and summary.json, rewritten after each
pair. Nothing here asserts a timing."""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from tests.bench.measure import write_results
from tests.support import REPO, pythonpath

OUTPUT_ROOT = REPO / ".cache" / "bench" / "ab"
# Runs a benchmark's main() with its results written where the A/B reads them.
RUN_BENCH = ("import sys; from pathlib import Path; from importlib import import_module; "
             "import_module('tests.bench.bench_' + sys.argv[1]).main(sys.argv[3:], Path(sys.argv[2]))")


@dataclass(frozen=True)
class Figure:
    """A figure read from a benchmark's results, and which way is better."""
    name: str
    value: float
    higher_is_better: bool


def _rate(name: str, value: float) -> Figure:
    return Figure(name, value, True)


def _time(name: str, value: float) -> Figure:
    return Figure(name, value, False)


def lifecycle_figures(results: dict) -> Iterator[Figure]:
    saturated = results["saturated"]
    yield _rate("saturated events/s", saturated["events_per_s"])
    yield _rate("saturated tasks / row INSERT (own server)",
                saturated["ratio_tasks_to_row_insert"])
    for rate, load in results["latency"].items():
        service = load["service"]
        yield _time(f"p50 at {rate}/s (ms)", service["p50_ms"])
        yield _time(f"p99 at {rate}/s (ms)", service["p99_ms"])
        for stage, split in service.get("split_ms", {}).items():
            yield _time(f"p99 at {rate}/s, {stage} (ms)", split["p99_ms"])
    replicated = results.get("replicated")
    if replicated:
        replicas = replicated["replicas"]
        yield _rate(f"saturated events/s, {replicas} replicas",
                    replicated["saturated"]["events_per_s"])
        for rate, load in replicated["latency"].items():
            yield _time(f"p99 at {rate}/s, {replicas} replicas (ms)", load["service"]["p99_ms"])


def consultation_intake_figures(results: dict) -> Iterator[Figure]:
    baseline = results["baseline"]
    sides = [("", results["bulk"], results["unary"])]
    if results.get("replicated"):
        replicated = results["replicated"]
        sides.append((f", {replicated['bulk']['replicas']} replicas", replicated["bulk"],
                      replicated["unary"]))
    for replicas, bulk, unary in sides:
        yield _rate(f"bulk durable comments/s{replicas}", bulk["durable_per_second"])
        yield _rate(f"bulk durable / COPY (own server){replicas}",
                    bulk["durable_per_second"] / baseline["asyncpg_copy_rows_per_second"])
        yield _rate(f"unary calls/s{replicas}", unary["per_second"])
        yield _rate(f"unary / empty handler{replicas}",
                    unary["per_second"] / baseline["grpc_empty_unary_per_second"])
        yield _time(f"unary p99 (ms){replicas}", unary["p99_ms"])


def evaluation_figures(results: dict) -> Iterator[Figure]:
    reports, scorecards = results["delivery_reports"], results["scorecards"]
    yield _rate("delivery reports aggregated/s", reports["aggregated_per_s"])
    yield _rate("delivery reports / aiokafka consume", reports["ratio_to_aiokafka"])
    yield _time("GetScorecard p95 (ms)", scorecards["get_scorecard_ms"]["p95"])


FIGURES: dict[str, Callable[[dict], Iterator[Figure]]] = {
    "lifecycle": lifecycle_figures,
    "consultation_intake": consultation_intake_figures,
    "evaluation": evaluation_figures,
}


def order_of_runs(pairs: int) -> list[tuple[int, str]]:
    """(pair, side) in the order they run: A B, then B A, and so on."""
    return [(pair, side) for pair in range(1, pairs + 1)
            for side in (("A", "B") if pair % 2 else ("B", "A"))]


def sign_test_p(wins: int, losses: int) -> float:
    """The exact two-sided sign test: how likely a count this uneven, or more, is when each
    pair is a coin toss (ties left out)."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def summarise(runs: list[dict]) -> list[dict]:
    """Per figure: each side's values in pair order, their medians, the median of the pairs'
    candidate / base ratios, and the pairs the candidate won (better by its direction),
    lost and tied, with the sign test's p-value. Only complete pairs count."""
    by_pair: dict[int, dict[str, dict[str, dict]]] = {}
    for run in runs:
        by_pair.setdefault(run["pair"], {})[run["side"]] = run["figures"]
    complete = [sides for _, sides in sorted(by_pair.items()) if set(sides) == {"A", "B"}]
    if not complete:
        return []
    names = [name for name in complete[0]["A"] if all(
        name in sides["A"] and name in sides["B"] for sides in complete)]
    summary = []
    for name in names:
        a = [sides["A"][name]["value"] for sides in complete]
        b = [sides["B"][name]["value"] for sides in complete]
        higher = complete[0]["A"][name]["higher_is_better"]
        wins = sum((y > x) if higher else (y < x) for x, y in zip(a, b))
        ties = sum(x == y for x, y in zip(a, b))
        ratios = [y / x for x, y in zip(a, b) if x]
        summary.append({
            "figure": name, "higher_is_better": higher, "base": a, "candidate": b,
            "median_base": statistics.median(a), "median_candidate": statistics.median(b),
            "median_ratio": statistics.median(ratios) if ratios else None,
            "candidate_won": wins, "candidate_lost": len(a) - wins - ties, "tied": ties,
            "sign_test_p": sign_test_p(wins, len(a) - wins - ties),
        })
    return summary


def show(summary: list[dict], revisions: dict[str, str]) -> None:
    pairs = len(summary[0]["base"]) if summary else 0
    print(f"\nA = {revisions['A']}, B = {revisions['B']}: {pairs} pairs, B won / lost / tied "
          "by the figure's better direction; p = exact two-sided sign test")
    rows = [("figure", "median A", "median B", "B / A", "B won", "p")]
    for figure in summary:
        ratio = figure["median_ratio"]
        rows.append((figure["figure"], f"{figure['median_base']:,.4g}",
                     f"{figure['median_candidate']:,.4g}",
                     "" if ratio is None else f"{ratio:.3f}",
                     f"{figure['candidate_won']}/{figure['candidate_lost']}/{figure['tied']}",
                     f"{figure['sign_test_p']:.2f}"))
    widths = [max(len(row[n]) for row in rows) for n in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) if n == 0 else cell.rjust(width)
                        for n, (cell, width) in enumerate(zip(row, widths))))


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def commit_of(revision: str) -> str:
    try:
        return git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    except subprocess.CalledProcessError:
        raise SystemExit(f"not a commit in {REPO}: {revision!r}") from None


def check_out(commit: str, directory: Path) -> None:
    """A worktree of `commit` in `directory`, sharing this checkout's virtualenv and caches
    (the Kafka jars, ghz), with the protobuf code of its own protos."""
    git("worktree", "add", "--detach", str(directory), commit)
    for shared in (".venv", ".cache"):
        (directory / shared).symlink_to(REPO / shared)
    # -o: the shared virtualenv counts as installed, whatever the checkout's file times say.
    subprocess.run(["make", "-s", "-C", str(directory), "-o", ".venv/.installed", "protos"],
                   check=True)


def run_once(bench: str, directory: Path, argv: list[str], results: Path, log: Path) -> dict:
    """Runs the benchmark in the worktree; returns its results."""
    env = {**os.environ, "PYTHONPATH": pythonpath(directory)}
    with log.open("w") as out:
        run = subprocess.run([sys.executable, "-c", RUN_BENCH, bench, str(results), *argv],
                             cwd=directory, env=env, stdout=out, stderr=subprocess.STDOUT)
    if run.returncode != 0:
        raise SystemExit(f"the {bench} benchmark failed in {directory} (exit {run.returncode});"
                         f" its output: {log}")
    return json.loads(results.read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.ab",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="revision A (any git commit-ish)")
    parser.add_argument("candidate", help="revision B")
    parser.add_argument("--bench", choices=sorted(FIGURES), default="lifecycle")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--pause", type=float, default=5,
                        help="seconds between runs, for the last one's processes to go")
    parser.add_argument("--output", type=Path, help="directory (default .cache/bench/ab/<time>)")
    parser.epilog = "After `--`: the benchmark's own options, the same for both revisions."
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    args, bench_argv = parser.parse_args(argv[:split]), argv[split + 1:]
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    commits = {"A": commit_of(args.base), "B": commit_of(args.candidate)}
    revisions = {side: f"{name} ({commits[side][:10]})"
                 for side, name in (("A", args.base), ("B", args.candidate))}
    output = args.output or OUTPUT_ROOT / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    output.mkdir(parents=True, exist_ok=True)
    checkouts = Path(tempfile.mkdtemp(prefix="ab-"))
    directories = {commit: checkouts / commit[:12] for commit in set(commits.values())}
    runs: list[dict] = []
    try:
        for commit, directory in directories.items():
            check_out(commit, directory)
        for pair, side in order_of_runs(args.pairs):
            if runs:
                time.sleep(args.pause)
            name = f"pair{pair}-{side}"
            load_before = os.getloadavg()[0]
            results = run_once(args.bench, directories[commits[side]], bench_argv,
                               output / f"{name}.json", output / f"{name}.log")
            figures = {f.name: {"value": f.value, "higher_is_better": f.higher_is_better}
                       for f in FIGURES[args.bench](results)}
            runs.append({"pair": pair, "side": side, "commit": commits[side],
                         "load_average_before": load_before, "figures": figures})
            print(f"pair {pair}/{args.pairs}, {side}: " + ", ".join(
                f"{n} {f['value']:,.4g}" for n, f in list(figures.items())[:4]), flush=True)
            summary = summarise(runs)
            write_results({"bench": args.bench, "bench_argv": bench_argv,
                           "revisions": revisions, "runs": runs, "summary": summary},
                          output / "summary.json")
            if sum(run["pair"] == pair for run in runs) == 2:
                show(summary, revisions)  # every figure so far: a clear early lead shows
    finally:
        for directory in directories.values():
            if directory.exists():
                git("worktree", "remove", "--force", str(directory))
        shutil.rmtree(checkouts, ignore_errors=True)


if __name__ == "__main__":
    main()
