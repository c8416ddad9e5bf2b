"""The installed `policyctl` command (make cli) and its defaults."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from deploy.local.supervisor import ports
from policyctl.settings import DEFAULT_TARGETS


def test_the_default_targets_are_the_local_platforms_ports():
    local = ports()
    assert DEFAULT_TARGETS == {service: f"127.0.0.1:{local[f'{service.upper()}_GRPC_PORT']}"
                               for service in DEFAULT_TARGETS}


def test_the_installed_command_talks_to_the_platform(platform, platform_topics):
    installed = shutil.which("policyctl", path=str(Path(sys.executable).parent))
    assert installed, "policyctl is not installed next to this Python: run `make cli`"
    # The environment variables are the other way to point it at a platform.
    env = {**os.environ, **{f"POLICYCTL_{name.upper()}_TARGET": service.grpc_target
                            for name, service in platform.items()},
           "KAFKA_BOOTSTRAP_SERVERS": platform_topics, "POLICYCTL_ORG": "vtv"}
    listed = subprocess.run([installed, "--json", "tasks", "list"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert all(task["owner_org_id"] == "vtv" for task in json.loads(listed.stdout))

    missing = subprocess.run([installed, "drafts", "show", "khong-co"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 4 and "NOT_FOUND" in missing.stderr
