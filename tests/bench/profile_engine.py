"""The task engine in one process: `python -m tests.bench.profile_engine [--events N]
[--small-batches N] [--profile FILE] [--statements]` (PYTHONPATH=.:gen/python:libs).

Where bench_lifecycle measures the service end to end, this times its two halves here, against
a Kafka broker and a PostgreSQL server of its own: the engine's batch handler
(`TaskEngine.handle_batch`, 100 events a batch) over the lifecycle benchmark's events, then the
outbox relay publishing the TaskCreated rows they left. For each half it prints the wall time,
this process's CPU a task, and the CPU the broker's and PostgreSQL's processes spent meanwhile:
on a 2-core machine they share the cores with the engine. The README's per-task figures come
from here. Then, as the service works at a light load (200 events/s: a few events a batch),
batches of --small-batches events each followed by a relay pass, timed a batch: what a batch
costs beyond its tasks sets the latency there. With --profile, cProfile's statistics of the
three phases go to FILE (`python -m pstats FILE`). With --statements, PostgreSQL's CPU in that
last phase is shown by statement and stage (parsing, planning, executing), from the server's own
per-statement resource figures (`log_parser_stats`, `log_planner_stats`, `log_executor_stats`
in its log): pgserver ships no `pg_stat_statements`. Nothing is asserted."""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import functools
import gc
import re
import tempfile
import time
from pathlib import Path

import asyncpg
import psutil

from policykit import db
from policykit.envelope import from_record
from policykit.kafka_security import KafkaSecurity
from policykit.outbox import OutboxRelay, create_relay_producer
from policykit.reference import default as reference_data
from services.communication import playbook
from services.communication.__main__ import MIGRATIONS
from services.communication.handlers import CONSUMER, TaskEngine
from tests.bench.bench_lifecycle import Lifecycles
from tests.bench.measure import broker_and_database

BATCH = 100
LOGGED_AFTER = 10  # light batches on new connections before PostgreSQL's CPU is read


class ServerCpu:
    """CPU seconds used by the broker's and PostgreSQL's processes (the server's backends
    included) under `workdir`, as broker_and_database lays them out."""

    def __init__(self, workdir: Path):
        postmaster = int((workdir / "postgres" / "pgdata" / "postmaster.pid").read_text()
                         .splitlines()[0])
        self.postgres = psutil.Process(postmaster)
        self.kafka = next(p for p in psutil.process_iter(["cmdline"])
                          if str(workdir / "kafka") in " ".join(p.info["cmdline"] or ()))

    def read(self) -> dict[str, float]:
        def cpu(processes) -> float:
            total = 0.0
            for process in processes:
                try:
                    times = process.cpu_times()
                except psutil.Error:
                    continue  # a backend that ended meanwhile
                total += times.user + times.system
            return total
        return {"kafka": cpu([self.kafka]),
                "postgres": cpu([self.postgres, *self.postgres.children(recursive=True)])}


# The server logs each stage's resource figures as an entry of its own, then the statement;
# entries start with the time and the backend's pid (deploy.local.postgres_server's prefix).
_LOG_ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \S+ \[(\d+)\] ", re.M)
_STAGE = re.compile(r"LOG:  (PARSER|PARSE ANALYSIS|REWRITER|PLANNER|EXECUTOR) STATISTICS")
_USAGE = re.compile(r"([\d.]+) s user, ([\d.]+) s system")
_STATEMENT = re.compile(r"STATEMENT:  (.*)", re.S)
_STAGE_NAMES = {"PARSER": "parse", "PARSE ANALYSIS": "parse", "REWRITER": "parse",
                "PLANNER": "plan", "EXECUTOR": "execute"}
# Each statement's resource figures in the log, by stage, and the statement after each.
LOG_SETTINGS = {"log_parser_stats": "on", "log_planner_stats": "on", "log_executor_stats": "on",
                "log_min_error_statement": "log"}


def statement_cpu(log: str) -> dict[str, collections.Counter[str]]:
    """CPU seconds by statement (its first 90 characters, spaces collapsed) and stage, read from
    a server log written with LOG_SETTINGS; each backend's entries are followed on their own,
    since several backends' may interleave."""
    by_statement: dict[str, collections.Counter[str]] = {}
    stage: dict[str, str] = {}  # by backend: the stage whose figures come next
    seen: dict[str, collections.Counter[str]] = {}  # by backend: figures awaiting a statement
    starts = list(_LOG_ENTRY.finditer(log))
    for start, following in zip(starts, [*starts[1:], None]):
        backend = start.group(1)
        entry = log[start.end():following.start() if following else len(log)]
        if (named := _STAGE.search(entry)) is not None:
            stage[backend] = _STAGE_NAMES[named.group(1)]
        elif (usage := _USAGE.search(entry)) is not None and backend in stage:
            seen.setdefault(backend, collections.Counter())[stage.pop(backend)] += (
                float(usage.group(1)) + float(usage.group(2)))
        elif (statement := _STATEMENT.search(entry)) is not None and backend in seen:
            text = " ".join(statement.group(1).split())[:90]
            by_statement.setdefault(text, collections.Counter()).update(seen.pop(backend))
    return by_statement


def show_statement_cpu(by_statement: dict[str, collections.Counter[str]], batches: int) -> None:
    print("PostgreSQL's CPU by statement, µs a batch (parse / plan / execute):")
    for text, stages in sorted(by_statement.items(), key=lambda item: -item[1].total()):
        if stages.total() / batches < 0.5e-6:
            continue  # e.g. turning the figures off
        print(f"  {stages.total() / batches * 1e6:6.0f}  ({stages['parse'] / batches * 1e6:.0f}"
              f" / {stages['plan'] / batches * 1e6:.0f} / {stages['execute'] / batches * 1e6:.0f})"
              f"  {text}")


async def log_statement_cpu(pool: asyncpg.Pool, on: bool) -> None:
    """Turns the server's per-statement resource figures on or off for the pool's user; the
    pool's connections are replaced so that the next ones start with it."""
    async with pool.acquire() as conn:
        user = await conn.fetchval("SELECT current_user")
        for setting, value in LOG_SETTINGS.items():
            await conn.execute(f'ALTER ROLE "{user}" SET {setting} = {value}' if on
                               else f'ALTER ROLE "{user}" RESET {setting}')
    await pool.expire_connections()


class Phase:
    """Wall time, this process's CPU and the servers' CPU of one half."""

    def __init__(self, servers: ServerCpu, profiler: cProfile.Profile | None):
        self.servers, self.profiler = servers, profiler

    def __enter__(self) -> "Phase":
        self._servers = self.servers.read()
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        if self.profiler:
            self.profiler.enable()
        return self

    def __exit__(self, *exc) -> None:
        if self.profiler:
            self.profiler.disable()
        self.wall_s = time.perf_counter() - self._wall
        self.cpu_s = time.process_time() - self._cpu
        after = self.servers.read()
        self.server_cpu_s = {name: after[name] - self._servers[name] for name in after}

    def show(self, name: str, count: int, unit: str) -> None:
        servers = ", ".join(f"{server} {seconds / count * 1e6:.0f} µs"
                            for server, seconds in self.server_cpu_s.items())
        units = unit + ("es" if unit.endswith("ch") else "s")
        print(f"{name}: {count:,} {units} in {self.wall_s:.2f} s ({count / self.wall_s:,.0f}/s);"
              f" this process {self.cpu_s / count * 1e6:.0f} µs of CPU a {unit};"
              f" meanwhile {servers} a {unit}")


async def profile(bootstrap: str, database_url: str, servers: ServerCpu, events: int,
                  small_batch: int, profiler: cProfile.Profile | None,
                  server_log: Path | None) -> None:
    """Times the three phases; with `server_log`, then PostgreSQL's CPU by statement over as
    many light batches again (logging each statement's figures slows the server: the phases
    timed before are not)."""
    await db.migrate(database_url, CONSUMER, [MIGRATIONS])
    pool = await db.create_pool(database_url, CONSUMER)
    reference = reference_data()
    engine = TaskEngine(pool, playbook.load(playbook.DEFAULT_PATH, reference), reference)
    lifecycles = Lifecycles()
    records, tasks = lifecycles.saturation(events)
    decoded = [from_record(key, value, headers) for _, key, value, headers in records]
    # Large-impact registrations, as the lifecycle benchmark offers at fixed loads.
    small = [[lifecycles.draft(large=True) for _ in range(small_batch)] for _ in range(200)]
    # The first few on the pool's new connections, which look up the statements' types.
    logged = [[lifecycles.draft(large=True) for _ in range(small_batch)]
              for _ in range(LOGGED_AFTER + len(small) if server_log else 0)]
    relay = OutboxRelay(pool, functools.partial(create_relay_producer, bootstrap,
                                                KafkaSecurity(), client_id="profile-engine"),
                        CONSUMER)
    # As policykit.runtime.main sets the collector for every service.
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    try:
        with Phase(servers, profiler) as handling:
            for start in range(0, len(decoded), BATCH):
                await engine.handle_batch(decoded[start:start + BATCH])
        with Phase(servers, profiler) as relaying:
            published = 0
            while sent := await relay.publish_batch():
                published += sent
        with Phase(servers, profiler) as light:
            for batch in small:
                await engine.handle_batch(batch)
                await relay.publish_batch()
        if server_log is not None:
            await log_statement_cpu(pool, on=True)
            for number, batch in enumerate(logged):
                if number == LOGGED_AFTER:
                    logged_from = server_log.stat().st_size
                await engine.handle_batch(batch)
                await relay.publish_batch()
            await log_statement_cpu(pool, on=False)
            with server_log.open("rb") as log:
                log.seek(logged_from)
                by_statement = statement_cpu(log.read().decode("utf-8", "replace"))
    finally:
        await relay.close()
        await pool.close()
    print(f"{len(decoded):,} lifecycle events, {tasks:,} tasks planned")
    handling.show("batch handler", tasks, "task")
    relaying.show("outbox relay", published, "record")
    light.show(f"{small_batch} registrations a batch, then a relay pass", len(small), "batch")
    if server_log is not None:
        show_statement_cpu(by_statement, len(logged) - LOGGED_AFTER)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.profile_engine",
                                     description=__doc__.split("\n\n")[1])
    parser.add_argument("--events", type=int, default=6_000, help="lifecycle events (default "
                        "6,000: 3,000 regulations, ~42,000 tasks)")
    parser.add_argument("--small-batches", type=int, default=5, metavar="N",
                        help="events a batch in the light-load phase (default 5)")
    parser.add_argument("--profile", type=Path, help="write cProfile statistics here")
    parser.add_argument("--statements", action="store_true",
                        help="then PostgreSQL's CPU by statement over as many light batches")
    args = parser.parse_args(argv)
    profiler = cProfile.Profile() if args.profile else None
    with tempfile.TemporaryDirectory(prefix="profile-engine-") as folder:
        workdir = Path(folder)
        # The server's log, as broker_and_database lays out its PostgresServer.
        server_log = workdir / "postgres" / "postgres.log" if args.statements else None
        with broker_and_database(workdir) as (bootstrap, database_url):
            asyncio.run(profile(bootstrap, database_url, ServerCpu(workdir), args.events,
                                args.small_batches, profiler, server_log))
    if profiler:
        profiler.dump_stats(args.profile)
        print(f"profile written to {args.profile}")


if __name__ == "__main__":
    main()
