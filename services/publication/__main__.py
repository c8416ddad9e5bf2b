"""Entry point: `python -m services.publication`.

Besides the shared configuration (policykit.config): EFFECTIVE_DATE_RULES,
EFFECTIVE_REMINDER_BEFORE, POST_IMPLEMENTATION_REVIEW_AFTER, TIMER_POLL_INTERVAL_MS and
OPEN_DATA_INTERVAL_MS (see settings.py)."""

from pathlib import Path

from policy.publication.v1 import publication_service_pb2_grpc
from policykit import runtime
from policykit.faust_io import add_event_agent, create_app, run_app
from policykit.topics import load as load_topics

from services.publication import open_data, timers
from services.publication import access
from services.publication.handlers import CONSUMER, TimelineConsumer
from services.publication.servicer import PublicationServicer
from services.publication.settings import PublicationSettings
from services.publication.storage import utc_now

MIGRATIONS = Path(__file__).with_name("migrations")


async def setup(ctx: runtime.ServiceContext) -> runtime.ServiceParts:
    settings = PublicationSettings.from_env()
    topics = load_topics()
    app = create_app(CONSUMER, ctx.settings.kafka_bootstrap_servers,
                     ctx.settings.kafka_security)
    add_event_agent(app, topics.consumes[CONSUMER], topics.dead_letter_topic(CONSUMER),
                    TimelineConsumer(ctx.pool).handle)
    servicer = PublicationServicer(ctx.pool, settings, utc_now)
    return runtime.ServiceParts(
        registrations=[lambda server: publication_service_pb2_grpc.
                       add_PublicationServiceServicer_to_server(servicer, server)],
        service_names=[access.SERVICE],
        rules=access.RULES,
        background=[run_app(app, ctx.stop),
                    timers.run(ctx.pool, ctx.stop, settings.timer_poll_interval_s, utc_now),
                    open_data.run(ctx.pool, ctx.stop, settings.open_data_interval_s)])


if __name__ == "__main__":
    runtime.main(CONSUMER, MIGRATIONS, setup)
