"""Entry point: `python -m services.evaluation`.

Besides the shared configuration (policykit.config), services/evaluation/settings.py reads
EVALUATION_DASHBOARD_PORT, POPULATION_CSV, COMMENTS_PER_100K_TARGET,
SCORECARD_PUBLISH_INTERVAL_S, DELIVERY_BATCH_MAX_RECORDS and SURGE_*."""

from pathlib import Path

from policy.evaluation.v1 import evaluation_service_pb2_grpc
from policykit import runtime
from policykit.faust_io import add_event_agent, create_app, run_app
from policykit.reference import default as reference_data
from policykit.topics import load as load_topics

from services.evaluation import population, publisher
from services.evaluation import access
from services.evaluation.dashboard.app import Dashboard
from services.evaluation.delivery import TOPIC as DELIVERY_TOPIC
from services.evaluation.delivery import DeliveryAggregator
from services.evaluation.handlers import CONSUMER, Evaluation
from services.evaluation.kpis import RegulationKpis
from services.evaluation.scorecards import Scorecards
from services.evaluation.scoring import ScoreRule
from services.evaluation.servicer import EvaluationServicer
from services.evaluation.settings import EvaluationSettings
from services.evaluation.units import Units

MIGRATIONS = Path(__file__).with_name("migrations")


async def setup(ctx: runtime.ServiceContext) -> runtime.ServiceParts:
    settings = EvaluationSettings.from_env()
    reference = reference_data()
    units = Units(reference)
    people = population.load(settings.population_csv, reference)
    topics = load_topics()
    dead_letters = topics.dead_letter_topic(CONSUMER)

    evaluation = Evaluation(ctx.pool, units, settings.surge)
    app = create_app(CONSUMER, ctx.settings.kafka_bootstrap_servers,
                     ctx.settings.kafka_security)
    add_event_agent(app, [t for t in topics.consumes[CONSUMER] if t != DELIVERY_TOPIC],
                    dead_letters, evaluation.handle)
    aggregator = DeliveryAggregator(ctx.pool, ctx.settings.kafka_bootstrap_servers, units,
                                    dead_letters, ctx.producer, ctx.settings.kafka_security,
                                    max_records=settings.delivery_batch_max_records)
    scorecards = Scorecards(ctx.pool, units, ScoreRule(settings.comments_per_100k_target), people)
    regulation_kpis = RegulationKpis(ctx.pool, units, people)
    servicer = EvaluationServicer(scorecards, regulation_kpis, units)
    dashboard = Dashboard(ctx.pool, scorecards, regulation_kpis, units)
    return runtime.ServiceParts(
        registrations=[lambda server: evaluation_service_pb2_grpc
                       .add_EvaluationServiceServicer_to_server(servicer, server)],
        service_names=[access.SERVICE],
        rules=access.RULES,
        background=[run_app(app, ctx.stop), aggregator.run(ctx.stop),
                    publisher.run(ctx.pool, scorecards, ctx.stop,
                                  settings.scorecard_publish_interval_s),
                    dashboard.run(settings.dashboard_port, ctx.stop)])


if __name__ == "__main__":
    runtime.main(CONSUMER, MIGRATIONS, setup)
