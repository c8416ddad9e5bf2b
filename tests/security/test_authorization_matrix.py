"""Every RPC of the five services × every kind of caller, with the services authenticating
bearer tokens (AUTH_MODE=tokens): no token or an unknown one is UNAUTHENTICATED; a caller
whose roles the method does not admit, or whose organisation does not own the draft, task,
consultation or regulation, is PERMISSION_DENIED; the others get through — to an answer or a
domain error (a draft already adopted, a task already completed), never to a refusal on who
they are. The expected matrix is written out here (docs/security.md has it too), not derived
from the services' tables, and must name exactly the methods of the generated descriptors:
a new RPC without a row fails this test."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from policy.common.v1 import common_pb2
from policy.communication.v1 import task_pb2
from policy.communication.v1 import task_service_pb2 as tasks_api
from policy.communication.v1 import task_service_pb2_grpc as tasks_grpc
from policy.consultation.v1 import consultation_service_pb2 as consultation_api
from policy.consultation.v1 import consultation_service_pb2_grpc as consultation_grpc
from policy.consultation.v1 import events_pb2 as consultation_events
from policy.drafting.v1 import drafting_service_pb2 as drafting_api
from policy.drafting.v1 import drafting_service_pb2_grpc as drafting_grpc
from policy.evaluation.v1 import evaluation_service_pb2 as evaluation_api
from policy.evaluation.v1 import evaluation_service_pb2_grpc as evaluation_grpc
from policy.publication.v1 import publication_service_pb2 as publication_api
from policy.publication.v1 import publication_service_pb2_grpc as publication_grpc
from services.consultation.tests.helpers import comment
from services.drafting.tests.helpers import key, register_request
from services.publication.tests.helpers import promulgation_request
from tests.security.tokens import CALLERS, bearer, write_tokens_file
from tests.support import eventually, running_platform

EVERYONE = frozenset(CALLERS)
# Who gets through, per method; every other caller with a token is PERMISSION_DENIED.
EXPECTED = {
    "policy.drafting.v1.DraftingService": {
        "RegisterDraft": {"agency"},
        "ReviseDraft": {"agency"},
        "RecordImpactAssessment": {"agency"},
        "SubmitForConsultation": {"agency"},
        "AdoptDraft": {"agency"},
        "WithdrawDraft": {"agency"},
        "GetDraft": EVERYONE,
        "ListDrafts": EVERYONE,
    },
    "policy.communication.v1.TaskService": {
        "ListTasks": {"owner", "operator"},  # asking for the owner's tasks
        "GetTask": {"owner", "commissioner", "operator"},
        "AcceptTask": {"owner"},
        "ReportProgress": {"owner"},
        "CompleteTask": {"owner"},
        "CancelTask": {"commissioner"},
    },
    "policy.consultation.v1.ConsultationService": {
        "GetConsultation": EVERYONE,
        "ExtendConsultation": {"agency"},
        "SubmitComment": {"portal"},
        "SubmitComments": {"portal"},
        "AnswerComments": {"agency"},
        "ListComments": {"agency"},
        "ListCampaigns": {"agency"},
        "GetConsultationReport": EVERYONE,
    },
    "policy.publication.v1.PublicationService": {
        "RecordPromulgation": {"gazette", "agency"},
        "AmendRegulation": {"gazette", "agency"},  # the amending regulation's lead agency
        "RepealRegulation": {"gazette", "agency"},
        "IssueSpokespersonRelease": {"spokesperson"},
        "GetTimeline": EVERYONE,
    },
    "policy.evaluation.v1.EvaluationService": {
        "GetScorecard": EVERYONE,
        "ListRankings": EVERYONE,
        "GetRegulationKpis": EVERYONE,
    },
}
SERVICE_OF = {"policy.drafting.v1.DraftingService": "drafting",
              "policy.communication.v1.TaskService": "communication",
              "policy.consultation.v1.ConsultationService": "consultation",
              "policy.publication.v1.PublicationService": "publication",
              "policy.evaluation.v1.EvaluationService": "evaluation"}
STUBS = {"drafting": drafting_grpc.DraftingServiceStub,
         "communication": tasks_grpc.TaskServiceStub,
         "consultation": consultation_grpc.ConsultationServiceStub,
         "publication": publication_grpc.PublicationServiceStub,
         "evaluation": evaluation_grpc.EvaluationServiceStub}
DENIALS = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
# What a request that got through may still end in: its answer or a domain error.
PASSED = (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
          grpc.StatusCode.FAILED_PRECONDITION)


class World:
    """What the requests act on: a draft of the agency (lead btnmt) in consultation, with a
    comment and a press-commission task of vtv, known to the publication service; and another
    draft of the agency for the drafting calls to move through its states."""

    def __init__(self, channels: dict[str, grpc.Channel]):
        self.channels = channels
        agency = self.stub("drafting")
        self.regulation = agency.RegisterDraft(register_request(lead_agency_id="btnmt"),
                                               metadata=bearer("agency"), timeout=10).draft
        self.regulation_id = self.regulation.regulation_id
        agency.SubmitForConsultation(drafting_api.SubmitForConsultationRequest(
            idempotency_key=key(), regulation_id=self.regulation_id),
            metadata=bearer("agency"), timeout=10)
        self.draft_id = agency.RegisterDraft(register_request(
            lead_agency_id="btnmt", impact_level=common_pb2.IMPACT_LEVEL_LOW),
            metadata=bearer("agency"), timeout=10).draft.regulation_id
        self.comment_id = eventually(self._comment, what="the consultation to open")
        self.task_id = eventually(self._press_task, what="vtv's press-commission task")
        eventually(self._in_publication, what="the regulation in the publication service")

    def stub(self, service: str):
        return STUBS[service](self.channels[service])

    def _answer(self, service: str, caller: str, method: str, request,
                not_yet: tuple[grpc.StatusCode, ...] = (grpc.StatusCode.NOT_FOUND,)):
        """The reply, or None while the service answers a code saying it has not caught up."""
        try:
            return getattr(self.stub(service), method)(request, metadata=bearer(caller),
                                                       timeout=10)
        except grpc.RpcError as error:
            if error.code() not in not_yet:
                raise
            return None

    def _comment(self) -> str | None:
        # Until the consultation service has read the submission, the draft it knows is not
        # open for consultation yet.
        reply = self._answer("consultation", "portal", "SubmitComment",
                             consultation_api.SubmitCommentRequest(
                                 comment=comment(self.regulation_id)),
                             not_yet=(grpc.StatusCode.NOT_FOUND,
                                      grpc.StatusCode.FAILED_PRECONDITION))
        return reply and reply.comment_id

    def _press_task(self) -> str | None:
        reply = self._answer("communication", "operator", "ListTasks",
                             tasks_api.ListTasksRequest(owner_org_id="vtv",
                                                        regulation_id=self.regulation_id))
        return reply and next((t.task_id for t in reply.tasks), None)

    def _in_publication(self):
        return self._answer("publication", "operator", "GetTimeline",
                            publication_api.GetTimelineRequest(regulation_id=self.regulation_id))

    def requests(self) -> dict[str, Callable[[], object]]:
        """A fresh request per method (new idempotency keys), valid where a caller of the
        right role but the wrong organisation must meet the ownership check."""
        r, d, task = self.regulation_id, self.draft_id, self.task_id
        period = datetime.now(timezone.utc).strftime("%Y-%m")
        closes_at = datetime.now(timezone.utc) + timedelta(days=90)
        extend = consultation_api.ExtendConsultationRequest(
            idempotency_key=key(), regulation_id=r, reason="Thêm thời gian cho vùng biên giới")
        extend.closes_at.FromDatetime(closes_at)
        return {
            "RegisterDraft": register_request(lead_agency_id="btnmt"),
            "ReviseDraft": drafting_api.ReviseDraftRequest(
                idempotency_key=key(), regulation_id=d, change_summary="Bổ sung Điều 5"),
            "RecordImpactAssessment": drafting_api.RecordImpactAssessmentRequest(
                idempotency_key=key(), regulation_id=d, impact_level=common_pb2.IMPACT_LEVEL_HIGH,
                assessment_summary="Ảnh hưởng lớn đến nông dân vùng biên giới"),
            "SubmitForConsultation": drafting_api.SubmitForConsultationRequest(
                idempotency_key=key(), regulation_id=d),
            "AdoptDraft": drafting_api.AdoptDraftRequest(idempotency_key=key(), regulation_id=d),
            "WithdrawDraft": drafting_api.WithdrawDraftRequest(
                idempotency_key=key(), regulation_id=d, reason="Gộp vào dự thảo khác"),
            "GetDraft": drafting_api.GetDraftRequest(regulation_id=d),
            "ListDrafts": drafting_api.ListDraftsRequest(),
            "ListTasks": tasks_api.ListTasksRequest(owner_org_id="vtv", regulation_id=r),
            "GetTask": tasks_api.GetTaskRequest(task_id=task),
            "AcceptTask": tasks_api.AcceptTaskRequest(
                idempotency_key=key(), task_id=task, accepted_by="Ban Thời sự"),
            "ReportProgress": tasks_api.ReportProgressRequest(
                idempotency_key=key(), task_id=task, percent_done=50, note="Đã quay phóng sự"),
            "CompleteTask": tasks_api.CompleteTaskRequest(
                idempotency_key=key(), task_id=task, evidence=task_pb2.Evidence(
                    url="https://vtv.vn/phong-su-luat-dat-dai", reach_count=120000)),
            "CancelTask": tasks_api.CancelTaskRequest(
                idempotency_key=key(), task_id=task, reason="Kế hoạch truyền thông thay đổi"),
            "GetConsultation": consultation_api.GetConsultationRequest(regulation_id=r),
            "ExtendConsultation": extend,
            "SubmitComment": consultation_api.SubmitCommentRequest(comment=comment(r)),
            "SubmitComments": iter([consultation_api.SubmitCommentsRequest(
                comments=[comment(r)])]),
            "AnswerComments": consultation_api.AnswerCommentsRequest(
                idempotency_key=key(), regulation_id=r, comment_ids=[self.comment_id],
                outcome=consultation_events.ANSWER_OUTCOME_ACCEPTED,
                explanation="Tiếp thu: bổ sung vào Điều 5."),
            "ListComments": consultation_api.ListCommentsRequest(regulation_id=r),
            "ListCampaigns": consultation_api.ListCampaignsRequest(regulation_id=r),
            "GetConsultationReport": consultation_api.GetConsultationReportRequest(
                regulation_id=r),
            "RecordPromulgation": promulgation_request(r),
            "AmendRegulation": publication_api.AmendRegulationRequest(
                idempotency_key=key(), regulation_id=d, amended_by_regulation_id=r,
                amended_articles=["Điều 5"]),
            "RepealRegulation": publication_api.RepealRegulationRequest(
                idempotency_key=key(), regulation_id=d, repealed_by_regulation_id=r),
            "IssueSpokespersonRelease": publication_api.IssueSpokespersonReleaseRequest(
                idempotency_key=key(), regulation_id=r, headline="Thông cáo báo chí",
                body="Bộ Nông nghiệp và Môi trường thông tin về dự thảo."),
            "GetTimeline": publication_api.GetTimelineRequest(regulation_id=r),
            "GetScorecard": evaluation_api.GetScorecardRequest(
                kind=evaluation_api.SCORECARD_KIND_AGENCY, subject_id="bnnmt", period=period),
            "ListRankings": evaluation_api.ListRankingsRequest(
                kind=evaluation_api.SCORECARD_KIND_AGENCY, period=period),
            "GetRegulationKpis": evaluation_api.GetRegulationKpisRequest(regulation_id=r),
        }


@pytest.fixture(scope="module")
def platform(platform_topics, database_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("security")
    tokens_file = write_tokens_file(folder / "tokens.yaml")
    with running_platform(platform_topics, database_url, folder, extra_env={
            "AUTH_MODE": "tokens", "AUTH_TOKENS_FILE": str(tokens_file)}) as services:
        channels = {name: grpc.insecure_channel(s.grpc_target) for name, s in services.items()}
        try:
            yield channels
        finally:
            for channel in channels.values():
                channel.close()


@pytest.fixture(scope="module")
def world(platform) -> World:
    return World(platform)


def descriptor_methods() -> set[tuple[str, str]]:
    return {(service, method.name) for service in SERVICE_OF
            for method in descriptor_pool.Default().FindServiceByName(service).methods}


def test_the_matrix_names_every_method_of_every_service():
    assert {(s, m) for s, methods in EXPECTED.items() for m in methods} == descriptor_methods()


def status_of(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
        return grpc.StatusCode.OK
    except grpc.RpcError as error:
        return error.code()


# In the order of the table: a task is accepted, worked on and completed before it is
# cancelled, so that each allowed caller's call succeeds rather than meets a final state.
@pytest.mark.parametrize("service, method", [(service, method) for service, methods
                                             in EXPECTED.items() for method in methods])
def test_who_may_call(platform, world, service, method):
    stub = world.stub(SERVICE_OF[service])
    allowed = EXPECTED[service][method]
    wrong = []
    for caller, metadata in [("no token", None),
                             ("unknown token", [("authorization", "Bearer not-a-token")]),
                             *((caller, bearer(caller)) for caller in CALLERS)]:
        request = world.requests()[method]
        code = status_of(lambda: getattr(stub, method)(request, metadata=metadata, timeout=10))
        if caller not in CALLERS:
            expected_ok = code == grpc.StatusCode.UNAUTHENTICATED
        elif caller in allowed:
            expected_ok = code in PASSED
        else:
            expected_ok = code == grpc.StatusCode.PERMISSION_DENIED
        if not expected_ok:
            wrong.append(f"{caller}: {code.name}")
    assert not wrong, f"{service}/{method}, allowed {sorted(allowed)}: " + "; ".join(wrong)


def test_health_and_reflection_need_no_credentials(platform):
    for channel in platform.values():
        assert health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5).status == \
            health_pb2.HealthCheckResponse.SERVING
        [reply] = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
        assert reply.list_services_response.service


def test_an_organisation_lists_its_own_tasks_by_default(platform, world):
    stub = tasks_grpc.TaskServiceStub(platform["communication"])
    mine = stub.ListTasks(tasks_api.ListTasksRequest(regulation_id=world.regulation_id),
                          metadata=bearer("other-owner"), timeout=10).tasks
    assert mine and {t.owner_org_id for t in mine} == {"baochinhphu"}
