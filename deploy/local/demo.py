"""The platform's main job, end to end on the running platform (`make demo`): one regulation
through its whole lifecycle.

1. A drafting system registers a large-impact draft over gRPC (pre-2025 ministry and province
   ids); a subscriber reads DraftRegistered back from Kafka with its Vietnamese text intact.
2. The communication task engine turns it into the playbook's tasks.
3. The draft goes out for consultation: citizens, businesses and experts comment (a campaign of
   near-identical comments among them), the agency answers, the draft is adopted and the
   consultation closes with its public report.
4. The regulation is promulgated with an effective date seconds away; the durable timer fires
   and the regulation takes effect; a task is completed with evidence.
5. Its timeline (publication service) and the agencies' ranked scorecards (evaluation service)
   are printed.

Each step acts as the organisation that takes it in real life — the ministry's drafting
system, the Government's e-portal, the Official Gazette, the spokesperson, operators — with
its development token of deploy/local/dev-tokens.yaml (the services of `make up` run with
AUTH_MODE=tokens; docs/security.md)."""

from __future__ import annotations

import functools
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc
import yaml
from kafka import KafkaConsumer, TopicPartition

from deploy.local.supervisor import infrastructure_env, ports
from policy.common.v1 import common_pb2
from policy.communication.v1 import task_pb2
from policy.consultation.v1 import consultation_service_pb2 as consultation_api
from policy.consultation.v1 import consultation_service_pb2_grpc as consultation_grpc
from policy.consultation.v1 import events_pb2 as consultation_events
from policy.evaluation.v1 import evaluation_service_pb2 as evaluation_api
from policy.evaluation.v1 import evaluation_service_pb2_grpc as evaluation_grpc
from policy.publication.v1 import publication_service_pb2 as publication_api
from policy.publication.v1 import publication_service_pb2_grpc as publication_grpc
from policy.communication.v1 import task_service_pb2 as tasks_api
from policy.communication.v1 import task_service_pb2_grpc as tasks_grpc
from policy.drafting.v1 import drafting_service_pb2 as drafting_api
from policy.drafting.v1 import drafting_service_pb2_grpc as drafting_grpc
from policykit.envelope import Event, from_record
from policykit.reference import default as reference_data
from services.communication.organisations import display_name
from policy_sdk.channels import open_channel
from policyctl.settings import Settings
from policyctl.timeline import fetch_timeline
from services.publication.timeline import format_timeline

TOPIC = "policy.drafting.v1"
DEV_TOKENS = Path(__file__).with_name("dev-tokens.yaml")
# Who takes each step: the drafting ministry (successor of btnmt, the id the draft is
# registered under), the portal forwarding comments, the Official Gazette, the ministry's
# spokesperson, and operators for the overviews.
MINISTRY, PORTAL, GAZETTE, SPOKESPERSON, OPERATOR = (
    "bnnmt", "vpcp.portal", "vpcp", "bnnmt.spokesperson", "ops")


def table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    line = "  ".join("{:<%d}" % w for w in widths)
    return "\n".join([f"\n{title}", line.format(*header), line.format(*("─" * w for w in widths)),
                      *(line.format(*row) for row in rows)])


def service_target(name: str) -> str:
    """The local platform's address of the service, unless POLICYCTL_<NAME>_TARGET names
    another (as for policyctl; the tests run the demo against their own services)."""
    return Settings.from_environment({}, None, timeout=10).targets[name]


@functools.cache
def dev_tokens() -> dict[str, str]:
    return yaml.safe_load(DEV_TOKENS.read_text("utf-8"))


def channel(service: str, org: str) -> grpc.Channel:
    """A channel to the service on which every call is made as the organisation."""
    return open_channel(service_target(service), token=dev_tokens()[org])


def subscribe(bootstrap: str) -> KafkaConsumer:
    """Opens a consumer at the current end of the drafting topic."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(TOPIC, n) for n in consumer.partitions_for_topic(TOPIC)]
    consumer.assign(partitions)
    consumer.seek_to_end()
    for partition in partitions:
        consumer.position(partition)
    return consumer


def register_draft() -> drafting_api.Draft:
    now = datetime.now(timezone.utc)
    request = drafting_api.RegisterDraftRequest(
        idempotency_key=f"demo-{uuid.uuid4()}",
        regulation_type=common_pb2.REGULATION_TYPE_LAW,
        title="Luật Đất đai (sửa đổi): lấy ý kiến Nhân dân",
        summary="Sửa đổi quy định về bồi thường, hỗ trợ, tái định cư khi Nhà nước thu hồi đất.",
        # Registered under the pre-2025 ministry and province codes: the platform maps them.
        lead_agency_id="btnmt", impact_level=common_pb2.IMPACT_LEVEL_HIGH,
        affected_groups=["nong-dan", "doanh-nghiep"],
        affected_province_codes=["02", "04", "22", "01"])
    request.planned_consultation_start.FromDatetime(now + timedelta(days=21))
    request.planned_adoption.FromDatetime(now + timedelta(days=120))
    with channel("drafting", MINISTRY) as drafting:
        return drafting_grpc.DraftingServiceStub(drafting).RegisterDraft(request, timeout=10).draft


def await_event(consumer: KafkaConsumer, regulation_id: str, deadline: float) -> Event:
    while time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                if record.key == regulation_id.encode():
                    return from_record(record.key, record.value, record.headers)
    raise TimeoutError(f"DraftRegistered for {regulation_id} did not arrive on {TOPIC}")


def await_tasks(regulation_id: str, deadline: float) -> list[task_pb2.Task]:
    """Lists the regulation's tasks once the engine has stopped adding to them."""
    with channel("communication", OPERATOR) as communication:
        stub = tasks_grpc.TaskServiceStub(communication)
        seen: list[task_pb2.Task] = []
        while time.monotonic() < deadline:
            found = list(stub.ListTasks(tasks_api.ListTasksRequest(
                regulation_id=regulation_id, page=common_pb2.PageRequest(page_size=500)),
                timeout=10).tasks)
            if found and len(found) == len(seen):
                return found
            seen = found
            time.sleep(1)
    raise TimeoutError(f"no tasks appeared for {regulation_id}")


def until(check, what: str, timeout: float = 90, interval: float = 0.5):
    """Returns check()'s first truthy value; gRPC errors while a service catches up count as
    not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except grpc.RpcError as error:
            if error.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                raise
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")


COMMENTS = [
    (common_pb2.STAKEHOLDER_TYPE_CITIZEN, "02", "Điều 12",
     "Đề nghị quy định rõ thời hạn chi trả tiền bồi thường, không quá 30 ngày kể từ ngày thu hồi đất."),
    (common_pb2.STAKEHOLDER_TYPE_BUSINESS, "tp-ha-noi", "Điều 45",
     "Doanh nghiệp cần được biết trước bảng giá đất ít nhất sáu tháng để lập kế hoạch đầu tư."),
    (common_pb2.STAKEHOLDER_TYPE_EXPERT, "22", "Điều 45",
     "Nên công bố phương pháp định giá đất cụ thể và cho phép phản biện độc lập."),
    (common_pb2.STAKEHOLDER_TYPE_ORGANISATION, "04", "",
     "Hội Nông dân tỉnh đề nghị tổ chức đối thoại trực tiếp tại các xã vùng biên giới."),
]
CAMPAIGN = ("Tôi đề nghị giữ nguyên mức hỗ trợ tái định cư như quy định hiện hành, "
            "không giảm quyền lợi của người dân bị thu hồi đất")


def consult(regulation_id: str) -> None:
    """Submits the draft for consultation, sends comments and answers them, adopts the draft."""
    with channel("drafting", MINISTRY) as drafting_channel, \
            channel("consultation", PORTAL) as portal_channel, \
            channel("consultation", MINISTRY) as ministry_channel:
        drafting = drafting_grpc.DraftingServiceStub(drafting_channel)
        drafting.SubmitForConsultation(drafting_api.SubmitForConsultationRequest(
            idempotency_key=f"demo-submit-{regulation_id}", regulation_id=regulation_id),
            timeout=10)
        # The portal forwards the comments; the ministry reads and answers them.
        portal = consultation_grpc.ConsultationServiceStub(portal_channel)
        ministry = consultation_grpc.ConsultationServiceStub(ministry_channel)
        opened = until(lambda: portal.GetConsultation(consultation_api.GetConsultationRequest(
            regulation_id=regulation_id), timeout=10).consultation, "the consultation to open")
        first_ids = []
        for n, (stakeholder, province, article, text) in enumerate(COMMENTS):
            reply = portal.SubmitComment(consultation_api.SubmitCommentRequest(
                comment=consultation_api.Comment(
                    idempotency_key=f"demo-{regulation_id}-{n}", regulation_id=regulation_id,
                    stakeholder_type=stakeholder, province_code=province, text=text,
                    article_ref=article,
                    contact=consultation_api.ContactDetails(email=f"nguoi-dan-{n}@example.vn"))),
                timeout=10)
            first_ids.append(reply.comment_id)
        # A portal forwards a batch: a campaign of near-identical comments.
        batch = consultation_api.SubmitCommentsRequest(comments=[
            consultation_api.Comment(
                idempotency_key=f"demo-{regulation_id}-campaign-{n}",
                regulation_id=regulation_id,
                stakeholder_type=common_pb2.STAKEHOLDER_TYPE_CITIZEN,
                province_code=["02", "04", "22"][n % 3], article_ref="Điều 45",
                text=CAMPAIGN + ("." if n % 2 else "!"))
            for n in range(40)])
        bulk = portal.SubmitComments(iter([batch]), timeout=30)
        campaigns = until(lambda: ministry.ListCampaigns(consultation_api.ListCampaignsRequest(
            regulation_id=regulation_id), timeout=10).campaigns, "the campaign to be grouped")
        ministry.AnswerComments(consultation_api.AnswerCommentsRequest(
            idempotency_key=f"demo-answer-{regulation_id}-1", regulation_id=regulation_id,
            comment_ids=[first_ids[0]], outcome=consultation_events.ANSWER_OUTCOME_ACCEPTED,
            explanation="Tiếp thu: bổ sung thời hạn chi trả 30 ngày vào khoản 3 Điều 12."),
            timeout=10)
        ministry.AnswerComments(consultation_api.AnswerCommentsRequest(
            idempotency_key=f"demo-answer-{regulation_id}-2", regulation_id=regulation_id,
            campaign_id=campaigns[0].campaign_id,
            outcome=consultation_events.ANSWER_OUTCOME_PARTLY_ACCEPTED,
            explanation="Tiếp thu một phần: giữ mức hỗ trợ tối thiểu, bổ sung hỗ trợ đào tạo nghề."),
            timeout=10)
        drafting.AdoptDraft(drafting_api.AdoptDraftRequest(
            idempotency_key=f"demo-adopt-{regulation_id}", regulation_id=regulation_id),
            timeout=10)
        report = until(lambda: portal.GetConsultationReport(
            consultation_api.GetConsultationReportRequest(regulation_id=regulation_id),
            timeout=10), "the consultation report")
    summary = report.summary
    print(table("4. Public consultation (consultation service)", ("", ""), [
        ("window", f"{opened.opens_at.ToDatetime():%Y-%m-%d %H:%M} → closed on adoption"),
        ("comments", f"{summary.total_comments} ({len(COMMENTS)} one by one, "
                     f"{bulk.accepted} forwarded in one batch)"),
        ("campaigns", f"{len(campaigns)}: {campaigns[0].comments} near-identical comments, "
                      "counted as one opinion"),
        *((f"article {c.key or '(whole draft)'}",
           f"{c.comments} comments, {c.independent_opinions} independent opinions")
          for c in summary.by_article),
        ("report", report.report_url or "GetConsultationReport"),
    ]))


def publish(regulation_id: str) -> None:
    """Promulgates the adopted regulation with an effective date seconds away, waits for it
    to take effect and completes its spokesperson task with evidence."""
    now = datetime.now(timezone.utc)
    with channel("publication", GAZETTE) as gazette:
        stub = publication_grpc.PublicationServiceStub(gazette)
        until(lambda: stub.GetTimeline(publication_api.GetTimelineRequest(
            regulation_id=regulation_id), timeout=10).regulation.status
            == publication_api.REGULATION_STATUS_ADOPTED, "the adoption to reach publication")
        request = publication_api.RecordPromulgationRequest(
            idempotency_key=f"demo-promulgate-{regulation_id}", regulation_id=regulation_id,
            # Unique across reruns on the same .data/; the year is the signing year in Vietnam.
            document_number=f"{int(time.time()) % 10000}/{(now + timedelta(hours=7)).year}/QH15",
            signer="Chủ tịch Quốc hội", gazette_number=f"CB-{int(time.time()) % 100000}",
            effective_date_override_reason="Minh hoạ: có hiệu lực sau 5 giây")
        request.signed_at.FromDatetime(now - timedelta(minutes=1))
        request.gazette_published_at.FromDatetime(now)
        request.effective_at.FromDatetime(now + timedelta(seconds=5))
        stub.RecordPromulgation(request, timeout=10)
        until(lambda: stub.GetTimeline(publication_api.GetTimelineRequest(
            regulation_id=regulation_id), timeout=10).regulation.status
            == publication_api.REGULATION_STATUS_EFFECTIVE, "the regulation to take effect")
    # The spokesperson finds the release task among its own and completes it.
    with channel("communication", SPOKESPERSON) as spokesperson:
        tasks = tasks_grpc.TaskServiceStub(spokesperson)
        release = until(lambda: next((t for t in tasks.ListTasks(tasks_api.ListTasksRequest(
            regulation_id=regulation_id, page=common_pb2.PageRequest(page_size=500)),
            timeout=10).tasks if t.kind == "spokesperson-release"), None),
            "the spokesperson task")
        tasks.CompleteTask(tasks_api.CompleteTaskRequest(
            idempotency_key=f"demo-complete-{release.task_id}", task_id=release.task_id,
            evidence=task_pb2.Evidence(url="https://baochinhphu.vn/thong-cao-luat-dat-dai",
                                       reach_count=1_250_000)), timeout=10)


def show_timeline(regulation_id: str) -> None:
    with channel("publication", OPERATOR) as publication:
        stub = publication_grpc.PublicationServiceStub(publication)
        until(lambda: any(t.task.kind == "spokesperson-release"
                          and t.task.status == task_pb2.TASK_STATUS_COMPLETED
                          for t in fetch_timeline(stub, regulation_id).tasks),
              "the completed task in the timeline")
        print("\n6. The regulation's timeline (publication service)")
        print(format_timeline(fetch_timeline(stub, regulation_id)))


def show_scorecards() -> None:
    period = datetime.now(timezone.utc).astimezone().strftime("%Y-%m")
    with channel("evaluation", OPERATOR) as evaluation:
        stub = evaluation_grpc.EvaluationServiceStub(evaluation)
        rankings = until(lambda: stub.ListRankings(evaluation_api.ListRankingsRequest(
            kind=evaluation_api.SCORECARD_KIND_AGENCY, period=period), timeout=10).scorecards,
            "the agencies' scorecards")
    print(table(f"7. Agencies ranked for {period} (evaluation service)",
                ("rank", "score", "agency", "points lost"), [
                    (str(card.rank), f"{card.score:.1f}", card.subject_name,
                     str(card.lost_points_total)) for card in rankings]))
    print(f"\nDashboard: http://127.0.0.1:{ports()['EVALUATION_DASHBOARD_PORT']}/")


def main() -> int:
    bootstrap = infrastructure_env(ports())["KAFKA_BOOTSTRAP_SERVERS"]
    consumer = subscribe(bootstrap)
    started = time.monotonic()
    draft = register_draft()
    print(table("1. A drafting system registers a draft (gRPC DraftingService.RegisterDraft)",
                ("field", "value"), [
                    ("regulation_id", draft.regulation_id), ("title", draft.title),
                    ("lead agency", draft.lead_agency_id),
                    ("impact", common_pb2.ImpactLevel.Name(draft.impact_level)),
                    ("provinces", ", ".join(draft.affected_province_codes)),
                    ("state", drafting_api.DraftState.Name(draft.state))]))

    deadline = started + 60
    event = await_event(consumer, draft.regulation_id, deadline)
    consumer.close()
    intact = event.payload.title.encode("utf-8") == draft.title.encode("utf-8")
    print(table(f"2. The event on Kafka topic {TOPIC} (CloudEvents binary mode)",
                ("attribute", "value"), [
                    ("ce_type", event.type), ("ce_id", event.id), ("ce_source", event.source),
                    ("ce_subject = key", event.subject),
                    ("payload.title", event.payload.title),
                    ("title byte for byte", "identical" if intact else "CHANGED"),
                    ("arrived after", f"{(time.monotonic() - started) * 1000:.0f} ms")]))

    tasks = await_tasks(draft.regulation_id, deadline)
    reference = reference_data()
    today = datetime.now(timezone.utc).date()
    print(table(f"3. The communication tasks the playbook created ({len(tasks)})",
                ("due", "priority", "channel", "owner", "regions", "kind"), [
                    (t.due_at.ToDatetime().strftime("%Y-%m-%d %H:%M"),
                     task_pb2.TaskPriority.Name(t.priority).removeprefix("TASK_PRIORITY_"),
                     common_pb2.Channel.Name(t.channel).removeprefix("CHANNEL_"),
                     display_name(t.owner_org_id, reference, today),
                     ", ".join(t.region_ids), t.kind)
                    for t in tasks]))
    print("The ministry was registered by its pre-2025 id (btnmt) and the provinces by their"
          "\n2008 codes; tasks went to the successor ministry and the 2025 provinces.")

    consult(draft.regulation_id)
    publish(draft.regulation_id)
    print("\n5. Promulgated; the durable timer fired and the regulation is in effect.")
    show_timeline(draft.regulation_id)
    show_scorecards()
    return 0 if intact and tasks else 1


if __name__ == "__main__":
    sys.exit(main())
