"""Entry point: `python -m services.consultation`. Configuration: policykit.config and
services/consultation/config.py."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

from policy.consultation.v1 import consultation_service_pb2_grpc
from policykit import runtime
from policykit.faust_io import add_event_agent, create_app, run_app
from policykit.reference import default as reference_data
from policykit.topics import load as load_topics

from services.consultation import access, closing, grouping
from services.consultation.config import ConsultationSettings
from services.consultation.drafts import CONSUMER, DraftEvents
from services.consultation.intake import Intake
from services.consultation.outbox import EventRelay
from services.consultation.rate_limits import SourceRateLimits
from services.consultation.servicer import ConsultationServicer
from services.consultation.validation import CommentChecker
from services.consultation.web import ReportServer

MIGRATIONS = Path(__file__).with_name("migrations")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


async def _serve_reports(server: ReportServer, stop: asyncio.Event) -> None:
    await stop.wait()
    await server.stop()


async def _relay_then_stop_intake(relay: EventRelay, intake: Intake, stop: asyncio.Event,
                                  busy, grace_s: float) -> None:
    """Runs the relay; after a stop it drains what the last calls stored, then the
    writers stop."""
    await relay.run(stop, busy, grace_s)
    await intake.stop()


async def setup(ctx: runtime.ServiceContext) -> runtime.ServiceParts:
    settings = ConsultationSettings.from_env()
    reference = reference_data()
    topics = load_topics()
    relay = EventRelay(ctx.pool, ctx.settings.kafka_bootstrap_servers, schema=CONSUMER,
                       security=ctx.settings.kafka_security,
                       poll_interval_s=ctx.settings.outbox_poll_interval_ms / 1000)
    reports = ReportServer(ctx.pool)
    port = await reports.start(settings.report_port)
    base_url = settings.report_base_url or f"http://localhost:{port}"

    def report_url(regulation_id: str) -> str:
        return f"{base_url}/reports/{regulation_id}"

    intake = Intake(ctx.pool, utc_now, settings.max_in_flight, on_stored=relay.wake)
    intake.start()
    servicer = ConsultationServicer(ctx.pool, intake, CommentChecker(settings.pseudonym_key,
                                                                     reference),
                                    reference, utc_now, report_url, relay.wake,
                                    SourceRateLimits(settings.source_rate, settings.source_burst))
    publisher = closing.Publisher(ctx.pool, reference, report_url)
    app = create_app(CONSUMER, ctx.settings.kafka_bootstrap_servers,
                     ctx.settings.kafka_security)
    add_event_agent(app, topics.consumes[CONSUMER], topics.dead_letter_topic(CONSUMER),
                    DraftEvents(ctx.pool, settings).handle)

    def busy() -> bool:
        return bool(servicer.writing_calls or intake.in_flight)

    return runtime.ServiceParts(
        registrations=[lambda server: consultation_service_pb2_grpc
                       .add_ConsultationServiceServicer_to_server(servicer, server)],
        service_names=[access.SERVICE],
        rules=access.RULES,
        background=[
            run_app(app, ctx.stop),
            _relay_then_stop_intake(relay, intake, ctx.stop, busy,
                                    ctx.settings.shutdown_grace_seconds + 5),
            grouping.run(ctx.pool, ctx.stop, settings.sweep_interval_s),
            closing.run(ctx.pool, publisher, ctx.stop, settings.sweep_interval_s, utc_now,
                        relay.wake),
            _serve_reports(reports, ctx.stop),
        ])


if __name__ == "__main__":
    runtime.main(CONSUMER, MIGRATIONS, setup)
