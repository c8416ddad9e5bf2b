"""Consultation intake benchmark: `python -m tests.bench.bench_consultation_intake`
(PYTHONPATH=.:gen/python:libs).

Starts a Kafka broker and a PostgreSQL server of its own (free ports, a temporary directory)
and the consultation service as a subprocess, opens a consultation through policy.drafting.v1,
then measures:

- bulk intake: many concurrent SubmitComments streams carrying a fixed corpus of realistic
  comments (form-letter campaigns with variations, independent comments, contact details on
  half). A stream turned away with RESOURCE_EXHAUSTED waits the delay it was given and is sent
  again whole, with the same keys. The rate counts a comment only once it is durable: stored in
  PostgreSQL and published on policy.consultation.v1 (watched on the topic, whose events
  commit with their comments; the rows are counted once at the end);
- unary intake: SubmitComment under ghz (github.com/bojand/ghz, built from the Go module proxy
  into .cache/bin on first use) at a fixed concurrency: throughput and latency percentiles;
- both again against several replicas of the service (`--replicas`, default 2) sharing the
  database and the broker, as a deployment scales intake: bulk streams and ghz's connections
  are spread evenly over them (one process uses one core; the machine has two);
- the service's resident memory, idle and at its peak under load;
- in the same run, baselines on the same machine: asyncpg COPY of the same rows into a plain
  table (no index, no constraint), and kafka-python producing as many equally sized records
  with the same CloudEvents headers (plus aiokafka's batch API, which the service's relay
  uses). Each platform figure is printed with its ratio to its baseline.

Results go to stdout as a table and to tests/bench/results/consultation_intake.json. Nothing
here asserts a timing."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import grpc

from deploy.local.kafka_broker import free_port
from policy.common.v1 import common_pb2
from policy.consultation.v1 import consultation_service_pb2 as api
from policy.consultation.v1 import consultation_service_pb2_grpc as api_grpc
from policy.consultation.v1 import events_pb2 as events
from policy.drafting.v1 import events_pb2 as drafting
from policykit.envelope import new_event
from policykit.errors import retry_delay
from policykit.grpc_server import GrpcServer
from policykit.kafka_io import create_producer, publish
from policykit.reference import default as reference_data
from tests.bench import baselines
from tests.bench.baselines import (aiokafka_produce_rate, comment_rows, event_records,
                                   kafka_python_produce_rate)
from tests.bench.measure import Sampler, broker_and_database, watch_topic, write_results
from tests.support import REPO, idle_rss_mb, start_service, topic_size

RESULTS = Path(__file__).with_name("results") / "consultation_intake.json"
GHZ_VERSION = "v0.120.0"
TOPIC = "policy.consultation.v1"
METHOD = "/policy.consultation.v1.ConsultationService/SubmitComments"

# Form letters: a campaign sends one of them, often with a greeting or a word changed.
TEMPLATES = [
    "Tôi đề nghị giữ nguyên quy định tại Điều 12 về bồi thường khi Nhà nước thu hồi đất nông"
    " nghiệp, không giảm mức hỗ trợ cho hộ gia đình trực tiếp sản xuất nông nghiệp.",
    "Đề nghị Ban soạn thảo bổ sung quy định về tái định cư tại chỗ cho đồng bào dân tộc thiểu"
    " số ở vùng biên giới, bảo đảm nơi ở mới có điều kiện tốt hơn nơi ở cũ.",
    "Chúng tôi không đồng ý với việc tăng thời hạn giao đất lên bảy mươi năm vì sẽ làm tăng"
    " tích tụ đất đai và ảnh hưởng đến sinh kế của nông dân nghèo.",
    "Kiến nghị quy định rõ trách nhiệm công khai bảng giá đất hằng năm trên cổng thông tin"
    " điện tử của Ủy ban nhân dân cấp tỉnh để người dân dễ tra cứu.",
    "Đề nghị rút ngắn thời gian cấp giấy chứng nhận quyền sử dụng đất lần đầu xuống còn mười"
    " ngày làm việc và cho phép nộp hồ sơ trực tuyến.",
]
GREETINGS = ["Kính gửi Ban soạn thảo,", "Tôi là cử tri tại địa phương.", "Xin góp ý như sau:"]
SUBJECTS = ["quy định về giá đất", "thủ tục cấp giấy chứng nhận", "việc thu hồi đất",
            "chính sách hỗ trợ tái định cư", "quyền của người sử dụng đất", "đất trồng lúa",
            "đất rừng phòng hộ", "đấu giá quyền sử dụng đất", "đăng ký đất đai",
            "giải quyết tranh chấp đất đai", "đất ở tại nông thôn", "đất thương mại dịch vụ"]
ASKS = ["cần quy định cụ thể hơn", "nên bỏ vì chồng chéo với luật khác",
        "phải bảo đảm quyền lợi của người dân", "cần lấy thêm ý kiến chuyên gia",
        "nên giao cho cấp xã thực hiện", "phải công khai minh bạch", "cần có lộ trình phù hợp",
        "nên áp dụng thí điểm trước", "cần bổ sung chế tài xử phạt", "phải rút ngắn thời hạn"]
REASONS = ["vì thực tế ở địa phương còn nhiều vướng mắc", "để tránh tiêu cực và nhũng nhiễu",
           "vì người dân vùng sâu vùng xa khó tiếp cận", "do giá đất biến động mạnh",
           "để phù hợp với Hiến pháp", "vì nhiều hộ gia đình đã sử dụng đất ổn định lâu năm",
           "vì doanh nghiệp cần sự ổn định để đầu tư", "do quy hoạch thường xuyên thay đổi"]
NAMES = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Hoàng Cường", "Phạm Thu Dung", "Hoàng Minh Đức",
         "Vũ Thị Hà", "Đặng Quốc Huy", "Bùi Thanh Lan", "Đỗ Văn Long", "Ngô Thị Mai"]


def _comment_text(rng: random.Random) -> str:
    """A form letter (60%), sometimes varied, or an independent comment (40%)."""
    if rng.random() < 0.6:
        text = rng.choice(TEMPLATES)
        variation = rng.random()
        if variation < 0.3:
            text = f"{rng.choice(GREETINGS)} {text}"
        elif variation < 0.45:
            words = text.split()
            words[rng.randrange(len(words))] = rng.choice(["rất", "cần", "nên", "phải"])
            text = " ".join(words)
        return text
    sentences = [f"Về {rng.choice(SUBJECTS)} tại Điều {rng.randint(1, 260)}, tôi thấy"
                 f" {rng.choice(ASKS)} {rng.choice(REASONS)}." for _ in range(rng.randint(2, 4))]
    return " ".join(sentences)


def corpus(count: int, regulation_id: str, seed: int = 17) -> list[api.Comment]:
    rng = random.Random(seed)
    provinces = [p for p in ("01", "02", "04", "12", "22", "79", "92", "tp-ha-noi",
                             "tuyen-quang", "lai-chau", "quang-ninh", "tp-ho-chi-minh")]
    stakeholders = [common_pb2.STAKEHOLDER_TYPE_CITIZEN] * 8 + [
        common_pb2.STAKEHOLDER_TYPE_BUSINESS, common_pb2.STAKEHOLDER_TYPE_ORGANISATION,
        common_pb2.STAKEHOLDER_TYPE_EXPERT, common_pb2.STAKEHOLDER_TYPE_AGENCY]
    comments = []
    for number in range(count):
        comment = api.Comment(
            idempotency_key=f"bench-{seed}-{number}", regulation_id=regulation_id,
            stakeholder_type=rng.choice(stakeholders), province_code=rng.choice(provinces),
            text=_comment_text(rng),
            article_ref=rng.choice(["", f"Điều {rng.randint(1, 60)}",
                                    f"Khoản {rng.randint(1, 5)} Điều {rng.randint(1, 60)}"]))
        if rng.random() < 0.5:
            comment.contact.name = rng.choice(NAMES)
            comment.contact.email = f"nguoi{number}@example.vn"
            comment.contact.phone = f"09{rng.randint(10_000_000, 99_999_999)}"
        comments.append(comment)
    return comments


# ---- the platform ---------------------------------------------------------------------------

def open_consultation(bootstrap: str, target: str) -> str:
    regulation_id = f"bench-{uuid.uuid4().hex[:12]}"
    producer = create_producer(bootstrap, client_id="bench-drafting")
    for payload in (
            drafting.DraftRegistered(
                regulation_id=regulation_id, regulation_type=common_pb2.REGULATION_TYPE_LAW,
                title="Luật Đất đai (sửa đổi): lấy ý kiến Nhân dân", lead_agency_id="bnnmt",
                impact_level=common_pb2.IMPACT_LEVEL_HIGH, version=1),
            drafting.DraftSubmittedForConsultation(regulation_id=regulation_id, version=1)):
        publish(producer, "policy.drafting.v1", new_event(payload, "policy/drafting")).get(30)
    producer.close()
    with grpc.insecure_channel(target) as channel:
        stub = api_grpc.ConsultationServiceStub(channel)
        deadline = time.monotonic() + 60
        while True:
            try:
                stub.GetConsultation(api.GetConsultationRequest(regulation_id=regulation_id),
                                     timeout=5)
                return regulation_id
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def _retry_delay(error: grpc.aio.AioRpcError) -> float:
    return retry_delay(error) or 0.5


async def drive_bulk(targets: list[str], streams: list[list[bytes]]) -> dict:
    """Sends every stream concurrently, spread over the replicas `targets`; retries a stream
    turned away, as a portal would."""
    retries = 0
    accepted = 0

    async def send(channel: grpc.aio.Channel, messages: list[bytes]) -> None:
        nonlocal retries, accepted
        call = channel.stream_unary(METHOD, request_serializer=lambda raw: raw,
                                    response_deserializer=api.SubmitCommentsResponse.FromString)
        while True:
            try:
                response = await call(iter(messages), timeout=300)
                accepted += response.accepted
                return
            except grpc.aio.AioRpcError as error:
                if error.code() not in (grpc.StatusCode.RESOURCE_EXHAUSTED,
                                        grpc.StatusCode.UNAVAILABLE):
                    raise
                retries += 1
                await asyncio.sleep(_retry_delay(error))

    channels = [grpc.aio.insecure_channel(target) for _ in range(4) for target in targets]
    try:
        await asyncio.gather(*(send(channels[n % len(channels)], stream)
                               for n, stream in enumerate(streams)))
    finally:
        for channel in channels:
            await channel.close()
    return {"accepted": accepted, "stream_retries": retries}


def rows_in(database_url: str, table: str) -> int:
    """Counts the rows of one of the consultation service's tables."""
    async def count() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetchval(f"SELECT count(*) FROM consultation.{table}")
        finally:
            await conn.close()
    return asyncio.run(count())


def wait_durable(database_url: str, bootstrap: str, rows: int, records: int,
                 timeout: float = 300) -> float:
    """Waits until `records` events are on the topic, then checks that `rows` comments are
    stored; returns when the events were seen (time.perf_counter). A CommentReceived is
    published only once the transaction storing its comment committed."""
    _, seen = watch_topic(bootstrap, TOPIC, records, timeout=timeout)
    stored = rows_in(database_url, "comments")
    if stored < rows:
        raise RuntimeError(f"{records} events published but only {stored} of {rows} comments "
                           "stored")
    return seen


def ghz_binary() -> Path:
    """Builds ghz from the Go module proxy into .cache/bin once."""
    binary = REPO / ".cache" / "bin" / "ghz"
    if not binary.exists():
        print(f"building ghz {GHZ_VERSION} from the Go module proxy …", flush=True)
        subprocess.run(["go", "install", f"github.com/bojand/ghz/cmd/ghz@{GHZ_VERSION}"],
                       check=True, env={**os.environ, "GOBIN": str(binary.parent)})
    return binary


def drive_unary(targets: list[str], regulation_id: str, requests: int, concurrency: int,
                workdir: Path) -> dict:
    """Runs ghz against each replica at once, each with its share of the requests, the
    concurrency and four connections; the latencies are those of every request."""
    data = workdir / "unary.json"
    data.write_text(json.dumps({"comment": {
        "idempotency_key": "unary-{{.RequestNumber}}-{{newUUID}}",
        "regulation_id": regulation_id, "stakeholder_type": "STAKEHOLDER_TYPE_CITIZEN",
        "province_code": "tp-ha-noi", "article_ref": "Điều 5",
        "text": "Ý kiến {{.RequestNumber}}: đề nghị làm rõ khái niệm {{randomString 12}} tại"
                " Điều 5 và công khai bảng giá đất hằng năm."}}, ensure_ascii=False))
    runs = [subprocess.Popen(
        [str(ghz_binary()), "--insecure", "--proto",
         str(REPO / "protos/policy/consultation/v1/consultation_service.proto"),
         "--import-paths", str(REPO / "protos"),
         "--call", "policy.consultation.v1.ConsultationService.SubmitComment",
         "-D", str(data), "-n", str(requests // len(targets)),
         "-c", str(concurrency // len(targets)), "--connections", "4", "-O", "json", target],
        stdout=subprocess.PIPE, text=True) for target in targets]
    reports = [json.loads(run.communicate()[0]) for run in runs]
    if any(run.returncode for run in runs):
        raise RuntimeError(f"ghz failed: {[run.returncode for run in runs]}")
    latencies = sorted(d["latency"] / 1e6 for r in reports for d in r["details"])
    statuses: dict[str, int] = {}
    for report in reports:
        for status, count in report["statusCodeDistribution"].items():
            statuses[status] = statuses.get(status, 0) + count
    return {"requests": len(latencies), "per_second": sum(r["rps"] for r in reports),
            "p50_ms": latencies[len(latencies) // 2],
            "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
            "average_ms": statistics.mean(latencies), "status_codes": statuses}


class _EmptyIntake(api_grpc.ConsultationServiceServicer):
    async def SubmitComment(self, request, context):
        return api.SubmitCommentResponse(comment_id="0")


def grpc_ceiling(requests: int, concurrency: int, workdir: Path) -> dict:
    """Unary calls per second of a SubmitComment that does nothing, behind the same
    policykit gRPC server (interceptor, metrics): what Python gRPC allows on this machine."""
    port, started, stop = free_port(), threading.Event(), threading.Event()

    async def serve() -> None:
        server = GrpcServer(port, [lambda s: api_grpc.add_ConsultationServiceServicer_to_server(
            _EmptyIntake(), s)], ["policy.consultation.v1.ConsultationService"])
        await server.start()
        started.set()
        while not stop.is_set():
            await asyncio.sleep(0.1)
        await server.stop(1)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    started.wait(30)
    try:
        return drive_unary([f"127.0.0.1:{port}"], "ceiling", requests, concurrency, workdir)
    finally:
        stop.set()
        thread.join(30)


def _stream_messages(comments: list[api.Comment], streams: int, per_message: int
                     ) -> list[list[bytes]]:
    per_stream = -(-len(comments) // streams)
    return [[api.SubmitCommentsRequest(comments=part[start:start + per_message])
             .SerializeToString() for start in range(0, len(part), per_message)]
            for part in (comments[first:first + per_stream]
                         for first in range(0, len(comments), per_stream))]


def measure_bulk(services: list, database_url: str, bootstrap: str, bulk_comments: list,
                 args: argparse.Namespace) -> dict:
    """Opens a consultation and sends it the corpus in concurrent streams spread over the
    replicas; returns the rates at which comments were acknowledged and became durable."""
    regulation_id = open_consultation(bootstrap, services[0].grpc_target)
    for comment in bulk_comments:
        comment.regulation_id = regulation_id
    streams = _stream_messages(bulk_comments, args.streams, args.per_message)
    rows_before, topic_before = rows_in(database_url, "comments"), topic_size(bootstrap, TOPIC)
    print(f"bulk: {len(bulk_comments):,} comments in {len(streams)} concurrent streams over "
          f"{len(services)} replica(s) …", flush=True)
    with Sampler(services[0].process.pid) as memory:
        started = time.perf_counter()
        driven = asyncio.run(drive_bulk([s.grpc_target for s in services], streams))
        acknowledged = time.perf_counter()
        durable = wait_durable(database_url, bootstrap, rows_before + len(bulk_comments),
                               topic_before + len(bulk_comments))
    grouping_started = time.perf_counter()
    while rows_in(database_url, "pending_texts"):
        time.sleep(0.2)
    grouped = time.perf_counter()
    return {
        "regulation_id": regulation_id, "replicas": len(services),
        "comments": len(bulk_comments), "streams": len(streams),
        "comments_per_message": args.per_message, **driven,
        "acknowledged_per_second": len(bulk_comments) / (acknowledged - started),
        "durable_per_second": len(bulk_comments) / (durable - started),
        "grouping_caught_up_after_s": grouped - grouping_started + durable - started,
        "peak_rss_mb": memory.peak_mb,
    }


def measure_unary(services: list, database_url: str, bootstrap: str, regulation_id: str,
                  args: argparse.Namespace, workdir: Path) -> dict:
    print(f"unary: {args.unary:,} requests at concurrency {args.concurrency} (ghz) over "
          f"{len(services)} replica(s) …", flush=True)
    rows_before, topic_before = rows_in(database_url, "comments"), topic_size(bootstrap, TOPIC)
    with Sampler(services[0].process.pid) as memory:
        unary = drive_unary([s.grpc_target for s in services], regulation_id, args.unary,
                            args.concurrency, workdir)
        stored = unary["status_codes"].get("OK", 0)
        wait_durable(database_url, bootstrap, rows_before + stored, topic_before + stored)
    return {**unary, "replicas": len(services), "peak_rss_mb": memory.peak_mb}


def main(argv: list[str] | None = None, results_path: Path = RESULTS) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_consultation_intake",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--comments", type=int, default=200_000, help="bulk corpus size")
    parser.add_argument("--streams", type=int, default=40, help="concurrent bulk streams")
    parser.add_argument("--per-message", type=int, default=500, help="comments a message")
    parser.add_argument("--unary", type=int, default=20_000, help="unary requests")
    parser.add_argument("--concurrency", type=int, default=64, help="unary concurrency")
    parser.add_argument("--replicas", type=int, default=2,
                        help="replicas of the service measured after one alone")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="bench-consultation-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        bootstrap, database_url = stack.enter_context(broker_and_database(workdir))
        reference_data()

        print(f"building a corpus of {args.comments:,} comments …", flush=True)
        comments = corpus(args.comments, "placeholder")
        payload_size = statistics.mean(len(events.CommentReceived(
            regulation_id="bench-0123456789ab", consultation_id=str(uuid.uuid4()),
            comment_id=str(uuid.uuid4()), commenter_pseudonym="0" * 32 if c.contact.email else "",
            stakeholder_type=c.stakeholder_type, province_code=c.province_code,
            article_ref=c.article_ref).SerializeToString()) + 12 for c in comments[:1000])

        print("baselines …", flush=True)
        copy_rate = asyncio.run(baselines.copy_rate(database_url, comment_rows(comments)))
        baseline_records = event_records(30_000, int(payload_size))
        kafka_python_rate = kafka_python_produce_rate(bootstrap, baseline_records)
        aiokafka_rate = asyncio.run(aiokafka_produce_rate(bootstrap, baseline_records))
        ceiling = grpc_ceiling(args.unary, args.concurrency, workdir)

        def start_replica(number: int):
            logs = workdir / f"replica-{number}"
            logs.mkdir()
            service = start_service("services.consultation", logs, {
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DATABASE_URL": database_url,
                "CONSULTATION_PSEUDONYM_KEY": "bench-" + "k" * 40, "LOG_LEVEL": "WARNING",
                "OUTBOX_POLL_INTERVAL_MS": "50",
                # The ceiling of the service, not the allowance of one source, is measured.
                "CONSULTATION_SOURCE_RATE": "0"})
            stack.callback(service.terminate)
            return service

        # The other replicas start only after one was measured alone: running, they would take
        # turns at its relay and grouping.
        services = [start_replica(0)]
        idle_mb = idle_rss_mb(services[0].process.pid)
        bulk = measure_bulk(services, database_url, bootstrap, comments, args)
        unary = measure_unary(services, database_url, bootstrap, bulk["regulation_id"], args,
                              workdir)
        replicated = {}
        if args.replicas > 1:
            services += [start_replica(number) for number in range(1, args.replicas)]
            # A corpus alike but with keys of its own: the same keys would be resubmissions.
            again = corpus(args.comments, "placeholder", seed=18)
            replicated["bulk"] = measure_bulk(services, database_url, bootstrap, again, args)
            replicated["unary"] = measure_unary(services, database_url, bootstrap,
                                                replicated["bulk"]["regulation_id"], args,
                                                workdir)
        exit_codes = [service.terminate() for service in services]
        exit_code = next((code for code in exit_codes if code), 0)  # the first not clean

    results = {
        "run_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "baseline": {"asyncpg_copy_rows_per_second": copy_rate,
                     "kafka_python_records_per_second": kafka_python_rate,
                     "aiokafka_batch_records_per_second": aiokafka_rate,
                     "grpc_empty_unary_per_second": ceiling["per_second"],
                     "grpc_empty_unary_p99_ms": ceiling["p99_ms"],
                     "record_value_bytes": int(payload_size)},
        "bulk": bulk, "unary": unary, "replicated": replicated,
        "memory": {"idle_rss_mb": idle_mb, "peak_rss_mb": max(bulk["peak_rss_mb"],
                                                              unary["peak_rss_mb"])},
        "service_exit_code": exit_code,
    }
    _print(results)
    write_results(results, results_path)


def _replicated_rows(results: dict) -> list[tuple[str, str, str]]:
    replicated = results["replicated"]
    if not replicated:
        return []
    bulk, unary = replicated["bulk"], replicated["unary"]
    replicas = bulk["replicas"]
    copy_rate = results["baseline"]["asyncpg_copy_rows_per_second"]
    return [
        (f"bulk, durable, {replicas} replicas", f"{bulk['durable_per_second']:,.0f} comments/s",
         ""),
        ("  ÷ asyncpg COPY into a plain table", "",
         f"{bulk['durable_per_second'] / copy_rate:.2f}"),
        ("  ÷ one replica", "",
         f"{bulk['durable_per_second'] / results['bulk']['durable_per_second']:.2f}"),
        (f"unary SubmitComment, {replicas} replicas", f"{unary['per_second']:,.0f} requests/s",
         ""),
        ("  ÷ one replica", "", f"{unary['per_second'] / results['unary']['per_second']:.2f}"),
        (f"unary latency p50 / p99, {replicas} replicas",
         f"{unary['p50_ms']:.1f} / {unary['p99_ms']:.1f} ms", ""),
        (f"unary status codes, {replicas} replicas", json.dumps(unary["status_codes"]), ""),
    ]


def _print(results: dict) -> None:
    base, bulk, unary = results["baseline"], results["bulk"], results["unary"]
    durable, unary_rate = bulk["durable_per_second"], unary["per_second"]
    copy_rate = base["asyncpg_copy_rows_per_second"]
    kafka_python = base["kafka_python_records_per_second"]
    aiokafka = base["aiokafka_batch_records_per_second"]
    empty = base["grpc_empty_unary_per_second"]
    memory, machine = results["memory"], results["machine"]
    rows = [
        ("bulk, durable in PostgreSQL and on Kafka", f"{durable:,.0f} comments/s", ""),
        ("  ÷ asyncpg COPY into a plain table", f"{copy_rate:,.0f} rows/s",
         f"{durable / copy_rate:.2f}"),
        ("  ÷ kafka-python produce", f"{kafka_python:,.0f} records/s",
         f"{durable / kafka_python:.2f}"),
        ("  ÷ aiokafka batch produce", f"{aiokafka:,.0f} records/s",
         f"{durable / aiokafka:.2f}"),
        ("bulk, acknowledged to the client",
         f"{bulk['acknowledged_per_second']:,.0f} comments/s", ""),
        ("bulk streams retried (RESOURCE_EXHAUSTED)", f"{bulk['stream_retries']}", ""),
        ("campaign grouping caught up after", f"{bulk['grouping_caught_up_after_s']:.1f} s", ""),
        ("unary SubmitComment (ghz)", f"{unary_rate:,.0f} requests/s", ""),
        ("  ÷ kafka-python produce", "", f"{unary_rate / kafka_python:.2f}"),
        ("  ÷ empty handler, same gRPC server", f"{empty:,.0f} requests/s",
         f"{unary_rate / empty:.2f}"),
        ("unary latency p50 / p99", f"{unary['p50_ms']:.1f} / {unary['p99_ms']:.1f} ms", ""),
        ("  empty handler p99", f"{base['grpc_empty_unary_p99_ms']:.1f} ms", ""),
        ("unary status codes", json.dumps(unary["status_codes"]), ""),
        *_replicated_rows(results),
        ("service RSS idle / peak",
         f"{memory['idle_rss_mb']:.0f} / {memory['peak_rss_mb']:.0f} MiB", ""),
        ("load average before / after", f"{machine['load_average_before'][0]:.1f} / "
                                        f"{machine['load_average_after'][0]:.1f}", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'consultation intake':<{width}}  {'measured':>24}  ratio")
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:>24}  {ratio}")


if __name__ == "__main__":
    main()
