"""policyctl against the five real services (started once for this package, on the session's
Kafka broker and PostgreSQL server), invoked in-process with click's test runner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from policyctl.cli import cli
from tests.support import running_platform


@pytest.fixture(scope="package")
def platform(platform_topics, database_url, tmp_path_factory):
    with running_platform(platform_topics, database_url,
                          tmp_path_factory.mktemp("platform")) as services:
        yield services


class Policyctl:
    """Runs `policyctl …` pointed at the test platform; checks the exit code unless
    `expect` is None."""

    def __init__(self, targets: dict[str, str], bootstrap_servers: str):
        self.options = [*(f"--target={name}={target}" for name, target in targets.items()),
                        f"--bootstrap-servers={bootstrap_servers}"]

    def __call__(self, *args: str, expect: int | None = 0, input: str | None = None) -> Result:
        result = CliRunner().invoke(cli, [*self.options, *args], input=input)
        assert expect is None or result.exit_code == expect, (
            f"policyctl {' '.join(args)} exited {result.exit_code}, expected {expect}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}\n{result.exception!r}")
        return result

    def json(self, *args: str, expect: int = 0):
        return json.loads(self("--json", *args, expect=expect).stdout)


@pytest.fixture(scope="package")
def policyctl(platform, platform_topics) -> Policyctl:
    return Policyctl({name: s.grpc_target for name, s in platform.items()}, platform_topics)
