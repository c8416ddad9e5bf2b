"""The start-up and shutdown every service shares.

Configuration is validated first; then logs and metrics come up, SASL credentials are tried
with one login to a broker, and topics, migrations, the database pool, the Kafka producer and
the outbox relay follow; the service adds its gRPC servicers and background work, and the
gRPC server reports SERVING. SIGTERM or SIGINT drains in reverse:
NOT_SERVING, in-flight calls finish, background work stops, the outbox is flushed."""

from __future__ import annotations

import asyncio
import faulthandler
import functools
import gc
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable, Mapping

import asyncpg
import grpc
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError, SaslAuthenticationFailed
from kafka import KafkaProducer

from policykit import auth, db, jsonlog, metrics
from policykit.config import ConfigError, ServiceSettings
from policykit.grpc_server import GrpcServer
from policykit.kafka_io import create_producer
from policykit.kafka_security import KafkaSecurity
from policykit.outbox import OutboxRelay, create_relay_producer
from policykit.topics import ensure_topics

log = logging.getLogger(__name__)


@dataclass
class ServiceContext:
    """What a service's setup gets to build its servicers and workers with."""

    settings: ServiceSettings
    pool: asyncpg.Pool
    producer: KafkaProducer
    stop: asyncio.Event


@dataclass
class ServiceParts:
    """What a service adds to the shared runtime."""

    # Each adds a servicer to the server, e.g. `lambda s: add_XServicer_to_server(impl, s)`.
    registrations: list[Callable[[grpc.aio.Server], None]]
    # Full names of the gRPC services, for health and reflection.
    service_names: list[str]
    # Who may call each method (auth.rules_for): the service's access table.
    rules: Mapping[str, auth.Rule]
    # Long-running coroutines that return once ctx.stop is set.
    background: list[Awaitable[None]] = field(default_factory=list)


Setup = Callable[[ServiceContext], Awaitable[ServiceParts]]


async def serve(name: str, migrations: Path, setup: Setup,
                settings: ServiceSettings | None = None,
                auth_settings: auth.AuthSettings | None = None) -> None:
    """Runs the service until SIGTERM/SIGINT; raises if a background worker fails."""
    settings = settings or ServiceSettings.from_env(name)
    auth_settings = auth_settings or auth.AuthSettings.from_env()
    jsonlog.configure(name, settings.log_level)
    metrics_port = metrics.serve(settings.metrics_port)
    loop = asyncio.get_running_loop()
    await check_login(settings.kafka_bootstrap_servers, settings.kafka_security)
    await loop.run_in_executor(None, functools.partial(
        ensure_topics, settings.kafka_bootstrap_servers, security=settings.kafka_security))
    await db.migrate(settings.database_url, name, [migrations])
    pool = await db.create_pool(settings.database_url, name)
    producer = create_producer(settings.kafka_bootstrap_servers, settings.kafka_security,
                               client_id=name)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, log_waits)
    try:
        parts = await setup(ServiceContext(settings, pool, producer, stop))
        relay = OutboxRelay(pool, functools.partial(
            create_relay_producer, settings.kafka_bootstrap_servers, settings.kafka_security,
            client_id=f"{name}-outbox"), name,
            poll_interval_s=settings.outbox_poll_interval_ms / 1000)
        # The relay stops last, after in-flight calls have written their outbox rows.
        relay_stop = asyncio.Event()
        workers = [asyncio.ensure_future(w) for w in (relay.run(relay_stop),
                                                      watch_event_loop(stop), *parts.background)]
        server = GrpcServer(settings.grpc_port, parts.registrations, parts.service_names,
                            auth_settings=auth_settings, rules=parts.rules)
        grpc_port = await server.start()
        log.info("serving gRPC on %d, metrics on %d", grpc_port, metrics_port)
        stopped = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait([stopped, *workers], return_when=asyncio.FIRST_COMPLETED)
        failed = next((w for w in done if w is not stopped and w.exception()), None)
        log.info("shutting down")
        stop.set()
        await server.stop(settings.shutdown_grace_seconds)
        relay_stop.set()
        await asyncio.gather(*workers, return_exceptions=True)
        await relay.close()
        if failed is not None:
            raise RuntimeError("a background worker failed") from failed.exception()
    finally:
        await loop.run_in_executor(None, producer.close)
        await pool.close()
    log.info("stopped")


async def watch_event_loop(stop: asyncio.Event, interval_s: float = 0.1) -> None:
    """Observes, until `stop` is set, how late the event loop wakes a sleep that is due
    (metrics.EVENT_LOOP_LAG): the time it spent on other work meanwhile."""
    while not stop.is_set():
        due = time.monotonic() + interval_s
        await asyncio.sleep(interval_s)
        metrics.EVENT_LOOP_LAG.observe(max(0.0, time.monotonic() - due))


def log_waits() -> None:
    """Logs where each task of the event loop and each thread waits (on SIGUSR1: `kill -USR1`),
    for a service that stopped making progress without logging why."""
    for task in asyncio.all_tasks():
        log.warning("task %s waits in %s", task.get_name(),
                    " > ".join(_where(frame) for frame in _awaited_frames(task.get_coro())))
    for thread_id, frame in sys._current_frames().items():
        stack = []
        while frame is not None:
            stack.append(_where(frame))
            frame = frame.f_back
        log.warning("thread %d is in %s", thread_id, " < ".join(stack))


def _awaited_frames(coro) -> list:
    """The frames of a coroutine and of what it awaits, down to the awaited future."""
    frames = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames


def _where(frame) -> str:
    """The function, its module and line: "publish_batch (policykit.outbox:212)"."""
    module = frame.f_globals.get("__name__") or Path(frame.f_code.co_filename).name
    return f"{frame.f_code.co_name} ({module}:{frame.f_lineno})"


async def check_login(bootstrap_servers: str, security: KafkaSecurity) -> None:
    """Raises ConfigError when a broker refuses the SASL credentials. The clients retry a
    refused login like an unreachable broker, until their bootstrap timeout, and kafka-python
    mostly sees no more than the broker closing the socket; aiokafka's connection, asked once
    here, reports the broker's answer. A broker it cannot reach, or an address without a port,
    is left to the clients."""
    if security.sasl_mechanism is None:
        return
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            conn = await create_conn(host, int(port), client_id="policykit-login",
                                     request_timeout_ms=10_000, **security.client_settings())
        except SaslAuthenticationFailed as error:
            raise ConfigError(f"KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD: Kafka at {server} "
                              f"refused {security.username} ({security.sasl_mechanism}): "
                              f"{error}") from None
        except (OSError, ValueError, asyncio.TimeoutError, KafkaError):
            continue
        conn.close()
        return


def main(name: str, migrations: Path, setup: Setup) -> None:
    """Console entry point: exits 2 with the reason on bad configuration (an environment
    variable, a configuration file a service's setup loads, or Kafka credentials the broker
    refuses), 0 after a graceful stop."""
    # A crash in a C extension (a segmentation fault while the Faust consumer's thread
    # stopped, once in `make test`) would otherwise end the process with no word of where:
    # this writes every thread's Python traceback to stderr, the service's log, first.
    faulthandler.enable()
    # Handling an event or a comment makes many short-lived objects: with the default
    # thresholds the cyclic collector took a tenth of the task engine's CPU under load (2.2 s
    # of 19.6 s; 0.5 s after) and 3.1 s of the consultation service's bulk intake (0.7 s
    # after, 8.4k -> 10.1k comments/s); its full passes walked every imported module's
    # objects, which freeze() sets aside for good.
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    try:
        asyncio.run(serve(name, migrations, setup, ServiceSettings.from_env(name),
                          auth.AuthSettings.from_env()))
    except ConfigError as error:
        print(f"{name}: configuration error: {error}", file=sys.stderr)
        sys.exit(2)
