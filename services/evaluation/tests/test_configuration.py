"""A bad setting of the evaluation service stops it at start with exit code 2 and a message
naming the variable (and, for a bad population file, the line and field)."""

import os
import subprocess
import sys

import pytest

from tests.support import PYTHONPATH, REPO


@pytest.mark.parametrize("setting, message", [
    ({"SURGE_FACTOR": "beaucoup"}, "SURGE_FACTOR must be a number, got 'beaucoup'"),
    ({"SURGE_FACTOR": "2", "SURGE_RESET_FACTOR": "3"},
     "SURGE_RESET_FACTOR must be between 0.0 and 2.0, got 3.0"),
    ({"EVALUATION_DASHBOARD_PORT": "70000"},
     "EVALUATION_DASHBOARD_PORT must be between 0 and 65535, got 70000"),
    ({"POPULATION_CSV": "/nonexistent/population.csv"},
     "POPULATION_CSV: /nonexistent/population.csv is not a file"),
    ({"POPULATION_CSV": "{bad_csv}"}, "line 3, field 'population': '-5' is not a positive"),
])
def test_bad_settings_stop_the_service(platform_topics, database_url, tmp_path, setting,
                                       message):
    bad_csv = tmp_path / "population.csv"
    bad_csv.write_text("province_id,population,note\ncao-bang,573119,x\nlai-chau,-5,y\n",
                       "utf-8")
    env = {**os.environ, "PYTHONPATH": PYTHONPATH, "KAFKA_BOOTSTRAP_SERVERS": platform_topics,
           "DATABASE_URL": database_url, "AUTH_MODE": "none",
           **{k: v.format(bad_csv=bad_csv) for k, v in setting.items()}}
    done = subprocess.run([sys.executable, "-m", "services.evaluation"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "evaluation: configuration error:" in done.stderr
    assert message in done.stderr
