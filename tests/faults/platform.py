"""The five services as processes a fault test kills and restarts. A restarted service keeps
its gRPC port, as a Kubernetes Service keeps its address, so that clients find it again."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2

from tests.support import (PLATFORM_SERVICES, RunningService, eventually, health_status,
                           platform_env, start_service)

# A service restarting on a loaded machine waits for its topics, migrations and consumer group.
START_TIMEOUT_S = 180


class Platform:
    """Runs the five services (a context manager) and counts the kills and restarts."""

    def __init__(self, bootstrap: str, database_url: str, log_dir: Path):
        self.env = platform_env(bootstrap, database_url)
        self.log_dir = log_dir
        self.services: dict[str, RunningService] = {}
        self.starts: Counter = Counter()
        self.kills = 0
        self.restarts = 0

    def __enter__(self) -> Platform:
        try:
            for name in PLATFORM_SERVICES:
                self._start(name)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def targets(self) -> dict[str, str]:
        return {name: service.grpc_target for name, service in self.services.items()}

    def _start(self, name: str, grpc_port: int | None = None) -> None:
        # Each start logs into a folder of its own: a restart must not overwrite the log of
        # the process it replaces.
        log_dir = self.log_dir / f"{name}-{self.starts[name]}"
        log_dir.mkdir(parents=True)
        self.starts[name] += 1
        self.services[name] = start_service(f"services.{name}", log_dir, self.env,
                                            timeout=START_TIMEOUT_S, grpc_port=grpc_port)

    def kill_and_restart(self, name: str) -> None:
        """SIGKILLs the service — no shutdown, no drain — and starts it again on its port."""
        service = self.services[name]
        service.process.send_signal(signal.SIGKILL)
        service.process.wait()
        self.kills += 1
        self._start(name, grpc_port=int(service.grpc_target.rpartition(":")[2]))
        self.restarts += 1

    def exited(self) -> dict[str, int]:
        """The services whose process has ended, with their exit codes."""
        return {name: service.process.returncode for name, service in self.services.items()
                if service.process.poll() is not None}

    def await_serving(self, timeout: float = START_TIMEOUT_S) -> None:
        """Waits until every service's health check says SERVING again."""
        def serving(service: RunningService) -> bool:
            try:
                return health_status(service.grpc_target) == health_pb2.HealthCheckResponse.SERVING
            except grpc.RpcError:
                return False

        eventually(lambda: all(serving(s) for s in self.services.values()), timeout=timeout,
                   interval=0.5, what="every service SERVING")

    def stop(self) -> dict[str, int]:
        """Stops the services with SIGTERM, drafting last, and SIGKILLs one still running a
        minute later; returns their exit codes (-9 for one killed)."""
        codes = {}
        for name in reversed(list(self.services)):
            service = self.services[name]
            try:
                codes[name] = service.terminate(timeout=60)
            except subprocess.TimeoutExpired:
                service.process.kill()
                codes[name] = service.process.wait()
        return codes
