"""Single-node Apache Kafka broker (KRaft, combined broker+controller) run from Maven Central jars.

Usage: python -m deploy.local.kafka_broker start|stop|status --data-dir D --port P --controller-port C
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Mapping

KAFKA_VERSION = "3.9.1"

_REPO = Path(__file__).resolve().parents[2]
_POM = _REPO / "deploy" / "kafka" / "pom.xml"
_LOG4J = _REPO / "deploy" / "kafka" / "log4j.properties"
_MARKER = ".complete"
# Same GC settings as Kafka's own launcher scripts (kafka-run-class.sh); and only the JVM's
# quick compiler (C1). A broker here lives for a test run, a demo or a benchmark, on the cores
# the services and PostgreSQL use: its optimising compiler (C2) took 0.2–0.9 of a core for the
# first 20–40 s of any new traffic, longer than most of those last. C1's code costs ~1.7× the
# CPU a small produce request that C2's does once compiled (0.15 against 0.09 ms in one
# measure, 0.6–0.75 against 0.36–0.43 ms in a later one: README, Performance). Long-lived
# brokers (k8s, Strimzi) keep the JVM's default.
_JVM_FLAGS = [
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
]


_handed_out: set[int] = set()
_handing_out = threading.Lock()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now and that this process has not
    returned before: the kernel may give the same free port to two calls in a row (a
    cluster's controller and one of its brokers were once given one port, and the broker
    could not start)."""
    with _handing_out:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port


def _mvn_command(out_dir: Path) -> list[str]:
    return [
        "mvn",
        "-B",
        "-q",
        "-f",
        str(_POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={out_dir}",
        "-DincludeScope=runtime",
    ]


def ensure_jars(cache_dir: Path) -> Path:
    """Return ``cache_dir/kafka-<version>/libs``, fetching the jars with Maven if not complete yet."""
    # Absolute: Maven resolves a relative outputDirectory against the pom's folder.
    root = Path(cache_dir).resolve() / f"kafka-{KAFKA_VERSION}"
    libs = root / "libs"
    # The marker holds the pom's hash, so editing the pom refreshes the jars.
    stamp = hashlib.sha256(_POM.read_bytes()).hexdigest()
    marker = libs / _MARKER
    if marker.is_file() and marker.read_text().strip() == stamp:
        return libs
    if shutil.which("mvn") is None:
        raise RuntimeError(f"mvn not found on PATH; needed to run: {' '.join(_mvn_command(libs))}")
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="libs.tmp-", dir=root))
    cmd = _mvn_command(tmp)
    try:
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"command failed ({res.returncode}): {' '.join(cmd)}\n{res.stdout[-4000:]}")
        if not (tmp / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
            raise RuntimeError(f"command left no kafka_2.13 jar in {tmp}: {' '.join(cmd)}")
        (tmp / _MARKER).write_text(stamp + "\n")
        if libs.exists():
            shutil.rmtree(libs)
        try:
            os.rename(tmp, libs)
        except OSError:
            # Another process finished first; its copy is as good as ours.
            if not (marker.is_file() and marker.read_text().strip() == stamp):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return libs


def _api_versions_ok(host: str, port: int, timeout: float = 2.0) -> bool:
    """True if a Kafka ApiVersions v0 request to host:port gets an error-free answer."""
    client_id = b"kafka_broker.py"
    header = struct.pack(">hhih", 18, 0, 4242, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(struct.pack(">i", len(header)) + header)
            size = struct.unpack(">i", _recv_exact(s, 4))[0]
            correlation_id, error_code = struct.unpack(">ih", _recv_exact(s, min(size, 6)))
    except (OSError, struct.error):
        return False
    return correlation_id == 4242 and error_code == 0


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed")
        buf += chunk
    return buf


def _new_cluster_id() -> str:
    """Kafka Uuid string (url-safe base64 of 16 bytes); a leading '-' would look like a CLI flag."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _heap_mb(heap: str) -> int:
    """Size in MiB of a JVM size string such as "512m" or "1g"."""
    units = {"k": 1 / 1024, "m": 1, "g": 1024}
    h = heap.strip().lower()
    return int(float(h[:-1]) * units[h[-1]]) if h[-1] in units else int(h) // (1024 * 1024)


class KafkaBroker:
    """A local KRaft broker whose config, data, log and pid file live in ``data_dir``."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        controller_port: int,
        jars_dir: Path,
        heap: str = "512m",
        sasl_port: int | None = None,
        scram_users: Mapping[str, str] | None = None,
    ):
        """With ``sasl_port``, the broker also has a SASL_PLAINTEXT listener there that
        authenticates ``scram_users`` (name -> password, SCRAM-SHA-512, created when the storage
        is formatted, i.e. at the first start) and authorizes them by ACLs only, as a Strimzi
        listener with `simple` authorization does; the PLAINTEXT listener's ANONYMOUS principal
        stays a super user, so that listener is unchanged and can create the ACLs."""
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.controller_port = controller_port
        self.jars_dir = Path(jars_dir).resolve()
        self.heap = heap
        self.sasl_port = sasl_port
        self.scram_users = dict(scram_users or {})
        self._proc: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def _pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def _config(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def _log(self) -> Path:
        return self.data_dir / "broker.log"

    def _java(self, main_class: str, *args: str, heap: str) -> list[str]:
        # A small initial heap keeps RSS modest on a shared machine; the heap grows up to -Xmx.
        return [
            "java",
            f"-Xms{min(256, _heap_mb(heap))}m",
            f"-Xmx{heap}",
            *_JVM_FLAGS,
            f"-Dlog4j.configuration=file:{_LOG4J}",
            "-cp",
            str(self.jars_dir / "*"),
            main_class,
            *args,
        ]

    def _pid(self) -> int | None:
        """Pid from the pid file if that process is alive and is this data dir's broker."""
        try:
            pid = int(self._pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if self._proc is not None and self._proc.pid == pid:
            return pid if self._proc.poll() is None else None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        proc = Path(f"/proc/{pid}")
        if proc.is_dir():  # Linux: skip zombies and pids reused by other programs.
            try:
                if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                    return None
                if str(self._config).encode() not in (proc / "cmdline").read_bytes():
                    return None
            except OSError:
                return None
        return pid

    def is_running(self) -> bool:
        return self._pid() is not None

    def _write_config(self) -> None:
        props = {
            "node.id": "1",
            "process.roles": "broker,controller",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "log.dirs": str(self.data_dir / "logs"),
            "num.partitions": "3",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            # Fewer threads than the defaults (3 network, 8 io): a 2-core machine gains nothing from more.
            "num.network.threads": "2",
            "num.io.threads": "4",
        }
        if self.sasl_port is not None:
            props.update(self._sasl_props())
        self._config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    def _sasl_props(self) -> dict[str, str]:
        plain = f"PLAINTEXT://127.0.0.1:{self.port}"
        sasl = f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}"
        return {
            "listeners": f"{plain},{sasl},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"{plain},{sasl}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            # The controller and inter-broker listeners are PLAINTEXT too, hence ANONYMOUS.
            "super.users": "User:ANONYMOUS",
        }

    def _format_storage(self) -> None:
        """Format log.dirs once; the cluster id is kept in data_dir so restarts reuse the data."""
        if (self.data_dir / "logs" / "meta.properties").is_file():
            return
        id_file = self.data_dir / "cluster.id"
        if not id_file.is_file():
            id_file.write_text(_new_cluster_id() + "\n")
        scram = []
        for name, password in self.scram_users.items():
            # The tool splits the brackets at commas and strips one pair of quotes per value.
            if any(c in name + password for c in ',"'):
                raise ValueError(f"SCRAM user {name!r}: names and passwords cannot contain , or \"")
            scram += ["--add-scram", f'SCRAM-SHA-512=[name="{name}",password="{password}"]']
        cmd = self._java(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            id_file.read_text().strip(),
            "-c",
            str(self._config),
            *scram,
            heap="256m",
        )
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"storage format failed ({res.returncode}): {' '.join(cmd)}\n{res.stdout[-4000:]}")

    def _startup_report(self, offset: int) -> str:
        """ERROR lines (the cause) and the last lines (the outcome) that this start wrote to broker.log."""
        try:
            with open(self._log, "rb") as f:
                f.seek(offset)
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            return "(no broker.log)"
        # An ERROR line plus the next one, which is usually the exception message.
        errors = [x for i, ln in enumerate(lines) if "] ERROR " in ln or "] FATAL " in ln for x in lines[i : i + 2]]
        return "\n".join([*errors[:12], "...", *lines[-20:]])

    def start(self, timeout: float = 120) -> None:
        """Start the broker (no-op if already running) and wait until it answers Kafka requests."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_offset = self._log.stat().st_size if self._log.exists() else 0
        if self._pid() is None:
            self._write_config()
            self._format_storage()
            with open(self._log, "ab") as log:
                self._proc = subprocess.Popen(
                    self._java("kafka.Kafka", str(self._config), heap=self.heap),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.data_dir,
                    start_new_session=True,  # survives the caller's Ctrl-C / exit
                )
            self._pid_file.write_text(f"{self._proc.pid}\n")
        deadline = time.monotonic() + timeout
        while not _api_versions_ok("127.0.0.1", self.port):
            if self._pid() is None:
                self._pid_file.unlink(missing_ok=True)
                report = self._startup_report(log_offset)
                raise RuntimeError(f"Kafka broker exited during startup; from {self._log}:\n{report}")
            if time.monotonic() > deadline:
                self.stop()
                report = self._startup_report(log_offset)
                raise RuntimeError(f"Kafka broker not ready after {timeout}s; from {self._log}:\n{report}")
            time.sleep(0.2)

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM the broker (clean shutdown), SIGKILL after ``timeout`` seconds; remove the pid file."""
        pid = self._pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):  # it may exit on its own meanwhile
                os.kill(pid, signal.SIGTERM)
                if not self._wait_exit(timeout):
                    os.kill(pid, signal.SIGKILL)
                    self._wait_exit(10)
        self._pid_file.unlink(missing_ok=True)
        self._proc = None

    def _wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._pid() is not None:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m deploy.local.kafka_broker", description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["start", "stop", "status"])
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--controller-port", type=int, required=True)
    p.add_argument("--cache-dir", type=Path, default=_REPO / ".cache")
    p.add_argument("--heap", default="512m")
    p.add_argument("--timeout", type=float, default=120)
    a = p.parse_args(argv)
    # stop/status need no jars, so they must not trigger a Maven download.
    jars = ensure_jars(a.cache_dir) if a.command == "start" else a.cache_dir / f"kafka-{KAFKA_VERSION}" / "libs"
    broker = KafkaBroker(a.data_dir, a.port, a.controller_port, jars, heap=a.heap)
    if a.command == "start":
        broker.start(timeout=a.timeout)
        print(f"kafka {KAFKA_VERSION} running at {broker.bootstrap_servers} (pid {broker._pid()})")
    elif a.command == "stop":
        broker.stop(timeout=a.timeout)
        print("kafka stopped")
    else:
        running = broker.is_running()
        print(f"kafka {'running at ' + broker.bootstrap_servers if running else 'stopped'}")
        return 0 if running else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
