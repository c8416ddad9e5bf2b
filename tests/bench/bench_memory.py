"""Memory benchmark: `python -m tests.bench.bench_memory` (PYTHONPATH=.:gen/python:libs).

Runs the five services together against one broker and one PostgreSQL server (a database of
its own) and measures each one's resident memory:

- idle: started, settled, nothing to do;
- under load, its peak while the platform does a modest amount of the work typical for it:
  drafts registered, sent to consultation and adopted over gRPC (drafting; their events feed
  communication's task engine, consultation's windows and publication's timelines), bulk
  comments on an open consultation (consultation), promulgations of the adopted drafts
  (publication) and a wave of delivery reports (evaluation);
- in the same run, the floor: a bare Python process that imports the libraries the services
  are built on and does nothing. Each figure is printed with its ratio to the floor; the target
  is every service under 200 MB at idle.

Started alone it brings its own broker and server and writes tests/bench/results/memory.json;
`python -m tests.bench` calls `run` with the harness's. Nothing here asserts a timing."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

import grpc

from policy.drafting.v1 import drafting_service_pb2 as drafting_api
from policy.drafting.v1 import drafting_service_pb2_grpc as drafting_grpc
from policy.publication.v1 import publication_service_pb2 as publication_api
from policy.publication.v1 import publication_service_pb2_grpc as publication_grpc
from tests.bench.bench_consultation_intake import (_stream_messages, corpus, drive_bulk,
                                                   open_consultation, wait_durable)
from tests.bench.bench_evaluation import aggregation_rate, delivery_records, produce
from tests.bench.measure import Sampler, broker_and_database, write_results
from tests.fuzz import seeds
from tests.support import (PLATFORM_SERVICES, idle_rss_mb, own_database,
                           running_platform, topic_size)

RESULTS = Path(__file__).with_name("results") / "memory.json"
TARGET_IDLE_MB = 200
# What every service imports before any code of its own runs.
FLOOR_IMPORTS = "grpc, asyncpg, faust, kafka, aiokafka, google.protobuf, prometheus_client, yaml"
IN_FLIGHT = 16


def floor_rss_mb() -> float:
    """Resident memory of a bare Python process holding the services' libraries."""
    process = subprocess.Popen([sys.executable, "-c",
                                f"import {FLOOR_IMPORTS}, signal; signal.pause()"])
    try:
        return idle_rss_mb(process.pid)
    finally:
        process.kill()
        process.wait()


def _call_all(method, requests: list) -> list:
    """Calls `method` with every request, IN_FLIGHT at a time; returns the responses."""
    responses = []
    for first in range(0, len(requests), IN_FLIGHT):
        futures = [method.future(r, timeout=30) for r in requests[first:first + IN_FLIGHT]]
        responses += [future.result() for future in futures]
    return responses


def draft_lifecycles(target: str, drafts: int) -> list[str]:
    """Registers drafts, sends them to consultation and adopts them; returns their ids."""
    register = seeds.requests()[drafting_api.RegisterDraftRequest]
    with grpc.insecure_channel(target) as channel:
        stub = drafting_grpc.DraftingServiceStub(channel)
        requests = []
        for _ in range(drafts):
            request = drafting_api.RegisterDraftRequest()
            request.CopyFrom(register)
            request.idempotency_key = str(uuid.uuid4())
            requests.append(request)
        ids = [r.draft.regulation_id for r in _call_all(stub.RegisterDraft, requests)]
        _call_all(stub.SubmitForConsultation, [drafting_api.SubmitForConsultationRequest(
            idempotency_key=str(uuid.uuid4()), regulation_id=i) for i in ids])
        _call_all(stub.AdoptDraft, [drafting_api.AdoptDraftRequest(
            idempotency_key=str(uuid.uuid4()), regulation_id=i) for i in ids])
    return ids


def promulgate(target: str, regulation_ids: list[str], timeout: float = 120) -> None:
    """Records a promulgation of each regulation, again for those publication has not yet
    seen registered or adopted (their events still on the way)."""
    seed = seeds.requests()[publication_api.RecordPromulgationRequest]
    year = datetime.now(timezone.utc).year
    pending = dict(enumerate(regulation_ids, start=1))
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub = publication_grpc.PublicationServiceStub(channel)
        while pending:
            for number, regulation_id in list(pending.items()):
                request = publication_api.RecordPromulgationRequest()
                request.CopyFrom(seed)
                request.idempotency_key = f"bench-memory-{regulation_id}"
                request.regulation_id = regulation_id
                request.document_number = f"{number}/{year}/QH15"
                try:
                    stub.RecordPromulgation(request, timeout=30)
                    del pending[number]
                except grpc.RpcError as error:
                    if (error.code() not in (grpc.StatusCode.NOT_FOUND,
                                             grpc.StatusCode.FAILED_PRECONDITION)
                            or time.monotonic() > deadline):
                        raise
            time.sleep(0.2)


def comment_wave(bootstrap: str, database_url: str, target: str, comments: int) -> None:
    """Bulk comments on a consultation of its own, until stored and published."""
    regulation_id = open_consultation(bootstrap, target)
    published_before = topic_size(bootstrap, "policy.consultation.v1")
    streams = _stream_messages(corpus(comments, regulation_id), 4, 100)
    asyncio.run(drive_bulk([target], streams))
    wait_durable(database_url, bootstrap, comments, published_before + comments)


def run(bootstrap: str, database_url: str, workdir: Path, drafts: int, comments: int,
        reports: int) -> dict:
    """Idle and under-load resident memory of each service, and the floor, in MB."""
    floor = floor_rss_mb()
    with own_database(database_url, "bench_memory") as database, running_platform(
            bootstrap, database, workdir, {"LOG_LEVEL": "WARNING",
                                           # The service's ceiling, not one source's allowance.
                                           "CONSULTATION_SOURCE_RATE": "0"}) as services:
        print("memory: services idle …", flush=True)
        idle = {name: idle_rss_mb(services[name].process.pid) for name in PLATFORM_SERVICES}
        with ExitStack() as samplers:
            peaks = {name: samplers.enter_context(Sampler(services[name].process.pid))
                     for name in PLATFORM_SERVICES}
            print(f"memory: {drafts} drafts through drafting, then promulgated …", flush=True)
            adopted = draft_lifecycles(services["drafting"].grpc_target, drafts)
            promulgate(services["publication"].grpc_target, adopted)
            print(f"memory: {comments:,} comments …", flush=True)
            comment_wave(bootstrap, database, services["consultation"].grpc_target, comments)
            print(f"memory: {reports:,} delivery reports …", flush=True)
            asyncio.run(produce(bootstrap, delivery_records(min(reports, 50_000)), reports))
            asyncio.run(aggregation_rate(database, reports, services["evaluation"].process.pid))
    return {"floor_mb": floor, "floor_imports": FLOOR_IMPORTS, "target_idle_mb": TARGET_IDLE_MB,
            "load": {"drafts": drafts, "comments": comments, "delivery_reports": reports},
            "services": {name: {"idle_mb": idle[name], "peak_mb": peaks[name].peak_mb}
                         for name in PLATFORM_SERVICES}}


def show(results: dict) -> None:
    floor = results["floor_mb"]
    print(f"\n{'service':<14} {'idle MB':>8} {'peak MB':>8} {'idle/floor':>10} "
          f"{'peak/floor':>10}  idle < {results['target_idle_mb']} MB")
    for name, figures in results["services"].items():
        idle, peak = figures["idle_mb"], figures["peak_mb"]
        print(f"{name:<14} {idle:>8.0f} {peak:>8.0f} {idle / floor:>10.2f} {peak / floor:>10.2f}"
              f"  {'yes' if idle < results['target_idle_mb'] else 'NO'}")
    print(f"{'floor':<14} {floor:>8.0f}   (python -c 'import {results['floor_imports']}')")


def main(argv: list[str] | None = None, results_path: Path = RESULTS) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_memory",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--drafts", type=int, default=300)
    parser.add_argument("--comments", type=int, default=50_000)
    parser.add_argument("--reports", type=int, default=500_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp, broker_and_database(
            Path(tmp)) as (bootstrap, database_url):
        results = run(bootstrap, database_url, Path(tmp), args.drafts, args.comments,
                      args.reports)
    show(results)
    write_results(results, results_path)


if __name__ == "__main__":
    main()
