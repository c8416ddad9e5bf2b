"""A short coverage-guided run of each atheris target (tests/fuzz/atheris_targets.py): the
envelope decoder from nothing, the comment checker from valid comments, which it mutates
towards new branches. A crash fails the test with the input libFuzzer saved."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from policy.consultation.v1 import consultation_service_pb2 as api
from tests.fuzz import seeds
from tests.fuzz.profiles import PROFILE, SCALE
from tests.support import PYTHONPATH, REPO

RUNS = 10_000 * SCALE
SEED = 1 if PROFILE == "ci" else 0  # 0: libFuzzer draws one


@pytest.mark.parametrize("target", ["envelope", "comment"])
def test_no_input_crashes_the_decoder(tmp_path, target):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    if target == "comment":  # mutated from a valid comment, inputs get past the first checks
        comment = seeds.requests()[api.SubmitCommentRequest].comment
        (corpus / "comment").write_bytes(comment.SerializeToString())
    done = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.atheris_targets", target, f"-atheris_runs={RUNS}",
         f"-seed={SEED}", f"-artifact_prefix={tmp_path}/", str(corpus)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": PYTHONPATH}, capture_output=True,
        text=True, timeout=600)
    crashes = [path.name for path in tmp_path.glob("crash-*")]
    assert done.returncode == 0 and not crashes, done.stderr[-3000:]
    assert f"Done {RUNS} in" in done.stderr, done.stderr[-500:]
