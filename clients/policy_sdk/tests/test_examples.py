"""The examples run against the test's drafting service and broker and exit 0."""

import os
import subprocess
import sys
from pathlib import Path

from tests.support import PYTHONPATH, REPO

EXAMPLES = Path(__file__).parents[1] / "examples"


def run(script: str, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLES / script), *options], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": PYTHONPATH, "PYTHONIOENCODING": "utf-8"},
                          capture_output=True, encoding="utf-8", timeout=120)


def test_register_and_submit_over_grpc(drafting):
    done = run("register_and_submit.py", "--target", drafting.grpc_target)
    assert done.returncode == 0, done.stderr
    assert "Nghị định về quản lý đất đai" in done.stdout
    assert "DRAFT_STATE_IN_CONSULTATION" in done.stdout


def test_emit_lifecycle_to_kafka(drafting, platform_topics):
    done = run("emit_lifecycle.py", "--bootstrap-servers", platform_topics)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("accepted  ") == 4
    assert " on policy.drafting.v1: Nghị định về quản lý đất đai (as sent)" in done.stdout
