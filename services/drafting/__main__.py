"""Entry point: `python -m services.drafting`. Configuration: see policykit.config."""

from pathlib import Path

from policy.drafting.v1 import drafting_service_pb2_grpc
from policykit import faust_io, runtime

from services.drafting import access
from services.drafting.intake import create_intake
from services.drafting.servicer import DraftingServicer

MIGRATIONS = Path(__file__).with_name("migrations")


async def setup(ctx: runtime.ServiceContext) -> runtime.ServiceParts:
    servicer = DraftingServicer(ctx.pool)
    intake = create_intake(ctx.pool, ctx.settings.kafka_bootstrap_servers,
                           ctx.settings.kafka_security)
    return runtime.ServiceParts(
        registrations=[lambda server: drafting_service_pb2_grpc.add_DraftingServiceServicer_to_server(
            servicer, server)],
        service_names=[access.SERVICE],
        rules=access.RULES,
        background=[faust_io.run_app(intake, ctx.stop)])


if __name__ == "__main__":
    runtime.main("drafting", MIGRATIONS, setup)
