"""Entry point: `python -m services.drafting`. Configuration: see policykit.config."""

from pathlib import Path

from policy.drafting.v1 import drafting_service_pb2, drafting_service_pb2_grpc
from policykit import runtime

from services.drafting.servicer import DraftingServicer

MIGRATIONS = Path(__file__).with_name("migrations")


async def setup(ctx: runtime.ServiceContext) -> runtime.ServiceParts:
    servicer = DraftingServicer(ctx.pool)
    return runtime.ServiceParts(
        registrations=[lambda server: drafting_service_pb2_grpc.add_DraftingServiceServicer_to_server(
            servicer, server)],
        service_names=[drafting_service_pb2.DESCRIPTOR.services_by_name["DraftingService"].full_name])


if __name__ == "__main__":
    runtime.main("drafting", MIGRATIONS, setup)
