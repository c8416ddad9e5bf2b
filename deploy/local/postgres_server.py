"""Local PostgreSQL controller built on the binaries shipped by the ``pgserver`` wheel.

The server listens on 127.0.0.1:<port>, keeps its cluster in ``<data_dir>/pgdata`` and is
started and stopped through ``pg_ctl``, so start and stop can run in different processes.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import pwd
import shlex
import stat
import subprocess
import sys
import warnings
from pathlib import Path

with warnings.catch_warnings():
    # Importing pgserver resolves a platformdirs runtime dir, which warns when XDG_RUNTIME_DIR is unset.
    warnings.simplefilter("ignore")
    from pgserver import utils as pg_utils
    from pgserver._commands import POSTGRES_BIN_PATH

SUPERUSER = "postgres"
# postgres refuses to run as root; this is the same system account pgserver itself uses.
SERVICE_USER = "pgserver"
# C.UTF-8 gives Unicode-aware ctype; plain C (still UTF8-encoded) is the fallback on libcs without it.
LOCALES = ("C.UTF-8", "C")
# sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107
LOG_TAIL_LINES = 40

SETTINGS = """
# Added by deploy.local.postgres_server: dev/test server on a small (2-core) machine.
max_connections = 200
shared_buffers = 128MB
work_mem = 4MB
maintenance_work_mem = 64MB
effective_cache_size = 1GB
max_worker_processes = 4
max_parallel_workers = 2
max_parallel_workers_per_gather = 1
max_wal_size = 1GB
log_line_prefix = '%m [%p] %q%u@%d '
"""


class PostgresServerError(RuntimeError):
    """Raised when a PostgreSQL command fails; the message carries its output and the log tail."""


class PostgresServer:
    """Controls one PostgreSQL cluster stored under ``data_dir`` and served on 127.0.0.1:``port``."""

    def __init__(self, data_dir: Path, port: int, database: str = "regplatform") -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.port = port
        self.database = database
        self.pgdata = self.data_dir / "pgdata"
        self.log_file = self.data_dir / "postgres.log"

    @property
    def url(self) -> str:
        """Returns the connection URL of ``database``."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{self.database}"

    @property
    def socket_dir(self) -> Path:
        """Returns data_dir, or a short per-data-dir folder under /tmp when the socket path would be too long."""
        if len(os.fsencode(self.data_dir / f".s.PGSQL.{self.port}")) <= MAX_SOCKET_PATH:
            return self.data_dir
        digest = hashlib.sha256(os.fsencode(self.data_dir)).hexdigest()[:12]
        return Path("/tmp") / f"pg-{digest}"

    def is_running(self) -> bool:
        """Returns whether postmaster.pid names a live postgres process."""
        pid = self._pid_file_field(0)
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip() if pid else ""
        except OSError:
            return False
        # After a reboot or container restart a stale pid file can name an unrelated process.
        return comm == "postgres"

    def start(self, timeout: float = 60) -> None:
        """Initialises the cluster on first use, starts the server and creates ``database``.

        Does nothing when a server is already running for this data dir.
        """
        if self.is_running():
            running_port = self._pid_file_field(3)
            if running_port != str(self.port):
                raise PostgresServerError(f"{self.pgdata} is already served on port {running_port}, not {self.port}")
            return
        self._prepare_dirs()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(timeout)
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port}"
            f" -c unix_socket_directories={shlex.quote(str(self.socket_dir))}"
        )
        self._run(
            "pg_ctl",
            "start",
            "-D",
            str(self.pgdata),
            "-w",
            "-t",
            str(math.ceil(timeout)),
            "-l",
            str(self.log_file),
            "-o",
            options,
            timeout=timeout + 10,
        )
        self._ensure_database(timeout)

    def stop(self, timeout: float = 60) -> None:
        """Stops the server with a fast shutdown and waits for it to exit; does nothing when it is not running."""
        if not self.is_running():
            return
        # A parent's mode may have changed since start (pytest resets its temp root's, for one).
        self._prepare_dirs()
        try:
            self._run(
                "pg_ctl",
                "stop",
                "-D",
                str(self.pgdata),
                "-m",
                "fast",
                "-w",
                "-t",
                str(math.ceil(timeout)),
                timeout=timeout + 10,
            )
        except PostgresServerError:
            # Another process may have stopped it between the check and pg_ctl.
            if self.is_running():
                raise

    def _pid_file_field(self, index: int) -> str | None:
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return None
        return lines[index].strip() if len(lines) > index else None

    def _prepare_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        if os.geteuid() != 0:
            return
        entry = pg_utils.ensure_user_exists(SERVICE_USER)
        # The service user must traverse every parent and read/execute the shipped installation.
        pg_utils.ensure_prefix_permissions(self.data_dir)
        pg_utils.ensure_prefix_permissions(POSTGRES_BIN_PATH)
        read = stat.S_IRGRP | stat.S_IROTH
        pg_utils.ensure_folder_permissions(POSTGRES_BIN_PATH.parent, read)
        pg_utils.ensure_folder_permissions(POSTGRES_BIN_PATH, read | stat.S_IXGRP | stat.S_IXOTH)
        for path in {self.data_dir, self.socket_dir}:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _initdb(self, timeout: float) -> None:
        for locale in LOCALES:
            try:
                self._run(
                    "initdb",
                    "-D",
                    str(self.pgdata),
                    "-U",
                    SUPERUSER,
                    "--auth-local=trust",
                    "--auth-host=trust",
                    "--encoding=UTF8",
                    f"--locale={locale}",
                    timeout=timeout,
                )
                break
            except PostgresServerError as exc:
                # initdb validates the locale before creating anything, so retrying is safe.
                if "invalid locale" not in str(exc) or locale == LOCALES[-1]:
                    raise
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(SETTINGS)

    def _ensure_database(self, timeout: float) -> None:
        sql = (
            "SELECT format('CREATE DATABASE %I', :'db')"
            " WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\\gexec\n"
        )
        self._run(
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            f"db={self.database}",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-d",
            "postgres",
            input=sql,
            timeout=timeout,
        )

    def _run(self, binary: str, *args: str, timeout: float, input: str | None = None) -> None:
        """Runs a shipped binary, as the service user when root, raising with its output and the log tail."""
        as_user = {}
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SERVICE_USER)
            as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        # Caller PG* variables (PGOPTIONS, PGDATABASE, ...) would silently alter these commands.
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        command = [str(POSTGRES_BIN_PATH / binary), *args]
        try:
            result = subprocess.run(
                command,
                input=input,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=self.data_dir,
                env=env,
                **as_user,
            )
        except subprocess.TimeoutExpired:
            raise PostgresServerError(f"{binary} timed out after {timeout:.0f}s{self._log_tail()}") from None
        if result.returncode != 0:
            raise PostgresServerError(
                f"{binary} {' '.join(args)} exited with {result.returncode}:\n"
                f"{result.stdout}{result.stderr}{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        except OSError:
            return ""
        return f"\n--- tail of {self.log_file} ---\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Runs the ``start|stop|status`` command line and returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m deploy.local.postgres_server", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("start", "stop", "status"))
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", default="regplatform")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args(argv)

    server = PostgresServer(args.data_dir, args.port, args.database)
    try:
        if args.command == "start":
            server.start(args.timeout)
            print(server.url)
        elif args.command == "stop":
            server.stop(args.timeout)
        else:
            running = server.is_running()
            print(f"running {server.url}" if running else "stopped")
            # 3 mirrors pg_ctl status / LSB "not running".
            return 0 if running else 3
    except PostgresServerError as exc:
        print(f"postgres_server {args.command} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
