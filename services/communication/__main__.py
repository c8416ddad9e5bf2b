"""Entry point: `python -m services.communication`.

Besides the shared configuration (policykit.config): PLAYBOOK_PATH (default: the default
playbook) and OVERDUE_SWEEP_INTERVAL_S (default 60)."""

import asyncio
import sys
from pathlib import Path

import uvloop

from policy.communication.v1 import task_service_pb2_grpc
from policykit import runtime
from policykit.config import env_int, env_str
from policykit.faust_io import add_event_agent, create_app, run_app
from policykit.reference import default as reference_data
from policykit.topics import load as load_topics

from services.communication import overdue, playbook, storage
from services.communication import access
from services.communication.handlers import CONSUMER, TaskEngine
from services.communication.servicer import TaskServicer

MIGRATIONS = Path(__file__).with_name("migrations")


async def setup(ctx: runtime.ServiceContext) -> runtime.ServiceParts:
    reference = reference_data()
    rules = playbook.load(Path(env_str("PLAYBOOK_PATH", str(playbook.DEFAULT_PATH))), reference)
    sweep_interval = env_int("OVERDUE_SWEEP_INTERVAL_S", 60, minimum=1)
    topics = load_topics()
    engine = TaskEngine(ctx.pool, rules, reference)
    app = create_app(CONSUMER, ctx.settings.kafka_bootstrap_servers,
                     ctx.settings.kafka_security)
    add_event_agent(app, topics.consumes[CONSUMER], topics.dead_letter_topic(CONSUMER),
                    engine.handle, batch_handler=engine.handle_batch)
    servicer = TaskServicer(ctx.pool, storage.utc_now)
    return runtime.ServiceParts(
        registrations=[lambda server: task_service_pb2_grpc.add_TaskServiceServicer_to_server(
            servicer, server)],
        service_names=[access.SERVICE],
        rules=access.RULES,
        background=[run_app(app, ctx.stop),
                    overdue.run(ctx.pool, reference, ctx.stop, sweep_interval, storage.utc_now)])


if __name__ == "__main__":
    # libuv's loop: under a saturated load the default loop's socket transports (asyncpg's,
    # aiokafka's writes) were the largest single cost in the engine's profile.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    # Faust's consumer runs in a thread of its own: with the default 5 ms switch interval the
    # event loop, woken by a database answer, could wait that long for the interpreter lock.
    sys.setswitchinterval(0.0005)
    runtime.main(CONSUMER, MIGRATIONS, setup)
