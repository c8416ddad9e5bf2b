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


def test_small_run_reports_every_figure_against_a_baseline(tmp_path):
    output = tmp_path / "latest.json"
    run = subprocess.run([sys.executable, "-m", "tests.bench", "--scale", "small",
                          "--output", str(output)], cwd=REPO,
                         env={**os.environ, "PYTHONPATH": PYTHONPATH},
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
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
                     "lifecycle events applied, saturated", "comment intake, bulk, durable",
                     "comment intake, unary p99", "delivery reports aggregated"):
        assert expected in names, names
    assert any(name.startswith("GetScorecard p95") for name in names), names
    assert results["git"]["commit"] and results["load_average_after"]
