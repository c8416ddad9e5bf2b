"""The local process supervisor behind `make up`, `make down` and `make status`.

It runs Kafka, PostgreSQL and every service as background processes on the ports of
deploy/local/ports.env, keeping data, logs and pid files under `.data/` so that `down` and a
later `up` lose nothing. KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL, when set, name external
servers to use instead of starting local ones."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.local.kafka_broker import KafkaBroker, ensure_jars
from deploy.local.postgres_server import PostgresServer

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / ".data"
PORTS_FILE = Path(__file__).with_name("ports.env")
SETTINGS_FILE = Path(__file__).with_name("platform.env")


@dataclass(frozen=True)
class Service:
    name: str
    module: str


# Started in this order, stopped in reverse.
SERVICES = [Service("drafting", "services.drafting"),
            Service("communication", "services.communication"),
            Service("consultation", "services.consultation"),
            Service("publication", "services.publication"),
            Service("evaluation", "services.evaluation")]


def read_env_file(path: Path) -> dict[str, str]:
    """Reads KEY=VALUE lines; # starts a comment."""
    found = {}
    for line in path.read_text("utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, value = line.split("=", 1)
            found[key.strip()] = value.strip()
    return found


def ports() -> dict[str, int]:
    return {key: int(value) for key, value in read_env_file(PORTS_FILE).items()}


def _kafka(p: dict[str, int]) -> KafkaBroker:
    return KafkaBroker(DATA / "kafka", p["KAFKA_PORT"], p["KAFKA_CONTROLLER_PORT"],
                       ensure_jars(REPO / ".cache"))


def _postgres(p: dict[str, int]) -> PostgresServer:
    return PostgresServer(DATA / "postgres", p["POSTGRES_PORT"])


def _pid_file(service: Service) -> Path:
    return DATA / "run" / f"{service.name}.pid"


def _service_pid(service: Service) -> int | None:
    try:
        pid = int(_pid_file(service).read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return pid if service.module.encode() in cmdline else None


def grpc_target(service: Service, p: dict[str, int]) -> str:
    return f"127.0.0.1:{p[f'{service.name.upper()}_GRPC_PORT']}"


def _serving(target: str) -> bool:
    try:
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                              timeout=1)
        return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


def infrastructure_env(p: dict[str, int]) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        or f"127.0.0.1:{p['KAFKA_PORT']}",
        "DATABASE_URL": os.environ.get("DATABASE_URL") or _postgres(p).url,
    }


def up(timeout: float = 120) -> None:
    p = ports()
    for folder in ("run", "logs"):
        (DATA / folder).mkdir(parents=True, exist_ok=True)
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        print("kafka       starting…", flush=True)
        _kafka(p).start()
    if not os.environ.get("DATABASE_URL"):
        print("postgresql  starting…", flush=True)
        _postgres(p).start()
    env = {**{key: str(port) for key, port in p.items()}, **read_env_file(SETTINGS_FILE),
           **os.environ, **infrastructure_env(p),
           "PYTHONPATH": os.pathsep.join(str(REPO / d) for d in (".", "gen/python", "libs"))}
    for service in SERVICES:
        if _service_pid(service) is None:
            print(f"{service.name:<11} starting…", flush=True)
            log = (DATA / "logs" / f"{service.name}.log").open("ab")
            process = subprocess.Popen(
                [sys.executable, "-m", service.module], cwd=REPO, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                env={**env, "GRPC_PORT": str(p[f"{service.name.upper()}_GRPC_PORT"]),
                     "METRICS_PORT": str(p[f"{service.name.upper()}_METRICS_PORT"])})
            _pid_file(service).write_text(f"{process.pid}\n")
        deadline = time.monotonic() + timeout
        while not _serving(grpc_target(service, p)):
            if _service_pid(service) is None or time.monotonic() > deadline:
                raise SystemExit(f"{service.name} did not become SERVING; see "
                                 f"{DATA / 'logs' / f'{service.name}.log'}")
            time.sleep(0.2)
    status()


def down(timeout: float = 30) -> None:
    p = ports()
    for service in reversed(SERVICES):
        pid = _service_pid(service)
        if pid is not None:
            print(f"{service.name:<11} stopping…", flush=True)
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _service_pid(service) is not None and time.monotonic() < deadline:
                time.sleep(0.1)
            if _service_pid(service) is not None:
                os.kill(pid, signal.SIGKILL)
        _pid_file(service).unlink(missing_ok=True)
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        print("kafka       stopping…", flush=True)
        _kafka(p).stop()
    if not os.environ.get("DATABASE_URL"):
        print("postgresql  stopping…", flush=True)
        _postgres(p).stop()


def status() -> None:
    p = ports()
    env = infrastructure_env(p)
    kafka_local = not os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    postgres_local = not os.environ.get("DATABASE_URL")
    rows = [
        ("kafka", ("running" if _kafka(p).is_running() else "stopped") if kafka_local
         else "external", env["KAFKA_BOOTSTRAP_SERVERS"]),
        ("postgresql", ("running" if _postgres(p).is_running() else "stopped") if postgres_local
         else "external", env["DATABASE_URL"]),
    ]
    for service in SERVICES:
        target = grpc_target(service, p)
        state = "SERVING" if _serving(target) else (
            "starting" if _service_pid(service) else "stopped")
        rows.append((service.name, state,
                     f"grpc {target}, metrics :{p[f'{service.name.upper()}_METRICS_PORT']}"))
    for name, state, where in rows:
        print(f"{name:<11} {state:<9} {where}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.supervisor",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    {"up": up, "down": down, "status": status}[args.command]()


if __name__ == "__main__":
    main()
