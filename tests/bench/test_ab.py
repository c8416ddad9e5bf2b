"""The A/B tool's bookkeeping (pure logic): the order of its runs, the sign test, and the
summary of complete pairs. Its run against real revisions is in test_bench_smoke."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.ab import FIGURES, order_of_runs, sign_test_p, summarise

RESULTS = Path(__file__).with_name("results")


def test_the_sides_alternate_which_runs_first():
    assert order_of_runs(3) == [(1, "A"), (1, "B"), (2, "B"), (2, "A"), (3, "A"), (3, "B")]


@pytest.mark.parametrize(("wins", "losses", "p"), [
    (6, 0, 2 / 64), (0, 6, 2 / 64), (5, 1, 14 / 64), (3, 3, 1.0), (4, 3, 1.0), (0, 0, 1.0),
    (7, 0, 2 / 128),
])
def test_the_sign_test_is_exact_and_two_sided(wins, losses, p):
    assert sign_test_p(wins, losses) == pytest.approx(p)


def run(pair: int, side: str, rate: float, p99: float) -> dict:
    return {"pair": pair, "side": side, "figures": {
        "events/s": {"value": rate, "higher_is_better": True},
        "p99 (ms)": {"value": p99, "higher_is_better": False}}}


def test_a_figure_is_won_by_its_better_direction_over_complete_pairs_only():
    runs = [run(1, "A", 800, 200), run(1, "B", 900, 150),
            run(2, "B", 700, 250), run(2, "A", 700, 180),
            run(3, "A", 1000, 100), run(3, "B", 1100, 90),
            run(4, "A", 1, 1)]  # pair 4 unfinished: left out
    rate, p99 = summarise(runs)

    assert rate["figure"] == "events/s" and rate["higher_is_better"]
    assert rate["base"] == [800, 700, 1000] and rate["candidate"] == [900, 700, 1100]
    assert (rate["candidate_won"], rate["candidate_lost"], rate["tied"]) == (2, 0, 1)
    assert rate["median_base"] == 800 and rate["median_candidate"] == 900
    assert rate["median_ratio"] == pytest.approx(1.1)
    assert rate["sign_test_p"] == pytest.approx(0.5)

    assert (p99["candidate_won"], p99["candidate_lost"], p99["tied"]) == (2, 1, 0)
    assert p99["median_ratio"] == pytest.approx(0.9)


def test_only_figures_both_sides_report_are_compared():
    older = run(1, "A", 800, 200)
    newer = run(1, "B", 900, 150)
    newer["figures"]["made_to_published p99 (ms)"] = {"value": 40, "higher_is_better": False}
    assert [f["figure"] for f in summarise([older, newer])] == ["events/s", "p99 (ms)"]
    assert summarise([older]) == []


@pytest.mark.parametrize("bench", sorted(FIGURES))
def test_each_benchmark_s_committed_results_give_its_figures(bench):
    results = json.loads((RESULTS / f"{bench}.json").read_text())
    figures = list(FIGURES[bench](results))

    assert len(figures) >= 3
    assert len({figure.name for figure in figures}) == len(figures)
    assert all(figure.value > 0 for figure in figures), figures
