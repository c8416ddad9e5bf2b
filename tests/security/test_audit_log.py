"""The audit log end to end, with the services authenticating bearer tokens: who changed
what, from which request — a draft registered and revised by its agency over gRPC, the
communication tasks its event created, a task accepted and completed by its press agency —
and no personal data among the rows, comments with contact details included."""

from __future__ import annotations

import asyncio
import json
import uuid

import grpc
import pytest

from policy.communication.v1 import task_pb2
from policy.communication.v1 import task_service_pb2 as tasks_api
from policy.communication.v1 import task_service_pb2_grpc as tasks_grpc
from policy.consultation.v1 import consultation_service_pb2 as consultation_api
from policy.consultation.v1 import consultation_service_pb2_grpc as consultation_grpc
from policy.drafting.v1 import drafting_service_pb2 as drafting_api
from policy.drafting.v1 import drafting_service_pb2_grpc as drafting_grpc
from policykit import audit
from policykit.grpc_server import REQUEST_ID
from services.consultation.tests.helpers import comment
from services.drafting.tests.helpers import key, register_request
from tests.security.tokens import bearer, start_with_tokens
from tests.support import eventually

DRAFTING = "/policy.drafting.v1.DraftingService/"
TASKS = "/policy.communication.v1.TaskService/"
CONTACT = dict(name="Phùng Thị Riêng Tư", email="rieng.tu.4417@example.vn", phone="0987 654 417",
               organisation="Hợp tác xã Bí Mật")
TEXT = "Gọi tôi theo số 0987654417, bảo mật giúp tôi ý kiến về Điều 9."


@pytest.fixture(scope="module")
def channels(platform_topics, database_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("audit-log")
    started = start_with_tokens(("drafting", "communication", "consultation"), folder,
                                platform_topics, database_url)
    channels = {name: grpc.insecure_channel(s.grpc_target) for name, s in started.items()}
    yield channels
    for channel in channels.values():
        channel.close()
    for service in started.values():
        service.terminate()


def audit_rows(database_url: str, service: str, regulation_id: str) -> list[dict]:
    return asyncio.run(audit.read(database_url, schema=service, subject=regulation_id))


def as_agency(request_id: str) -> list[tuple[str, str]]:
    return [*bearer("agency"), (REQUEST_ID, request_id)]


@pytest.fixture(scope="module")
def draft(channels) -> dict:
    """A large-impact draft of bnnmt (lead btnmt, its pre-merger id) registered, revised and
    put out for consultation, each call with a request id of the client's."""
    agency = drafting_grpc.DraftingServiceStub(channels["drafting"])
    request_ids = {method: f"{method}-{uuid.uuid4()}"
                   for method in ("RegisterDraft", "ReviseDraft", "SubmitForConsultation")}
    registration = register_request(lead_agency_id="btnmt")
    reply, call = agency.RegisterDraft.with_call(
        registration, metadata=as_agency(request_ids["RegisterDraft"]), timeout=10)
    regulation_id = reply.draft.regulation_id
    revision = drafting_api.ReviseDraftRequest(idempotency_key=key(), regulation_id=regulation_id,
                                               change_summary="Bổ sung Điều 5")
    agency.ReviseDraft(revision, metadata=as_agency(request_ids["ReviseDraft"]), timeout=10)
    agency.SubmitForConsultation(drafting_api.SubmitForConsultationRequest(
        idempotency_key=key(), regulation_id=regulation_id),
        metadata=as_agency(request_ids["SubmitForConsultation"]), timeout=10)
    return {"regulation_id": regulation_id, "request_ids": request_ids,
            "keys": {"RegisterDraft": registration.idempotency_key,
                     "ReviseDraft": revision.idempotency_key},
            "returned_request_id": dict(call.trailing_metadata())[REQUEST_ID]}


def test_the_agency_and_its_requests_are_recorded_for_its_draft(draft, database_url):
    assert draft["returned_request_id"] == draft["request_ids"]["RegisterDraft"]
    rows = audit_rows(database_url, "drafting", draft["regulation_id"])
    assert [row["action"].rpartition(".")[2] for row in rows] == [
        "DraftRegistered", "DraftRevised", "DraftSubmittedForConsultation"]
    for row, method in zip(rows, ("RegisterDraft", "ReviseDraft", "SubmitForConsultation")):
        assert (row["actor"], row["actor_roles"], row["authenticated_by"], row["via"]) == (
            "bnnmt", ["drafting-agency"], "token", "grpc")
        assert (row["request"], row["request_id"]) == (
            DRAFTING + method, draft["request_ids"][method])
        assert len(row["event_ids"]) == 1
    assert [row["idempotency_key"] for row in rows[:2]] == [
        draft["keys"]["RegisterDraft"], draft["keys"]["ReviseDraft"]]


def test_tasks_created_from_an_event_name_the_event(draft, database_url):
    [registered] = audit_rows(database_url, "drafting", draft["regulation_id"])[0]["event_ids"]
    registered = str(registered)
    created = eventually(lambda: [
        row for row in audit_rows(database_url, "communication", draft["regulation_id"])
        if row["action"].endswith("TaskCreated") and row["request_id"] == registered],
        what="tasks created from DraftRegistered")
    for row in created:
        assert (row["actor"], row["actor_roles"], row["authenticated_by"], row["via"],
                row["request"]) == ("service:communication", [], None, "event",
                                    "policy.drafting.v1.DraftRegistered")
        assert row["detail"]["task_id"] and row["detail"]["trigger_event_id"] == registered


def test_a_press_agency_accepting_and_completing_its_task_is_recorded(draft, channels,
                                                                      database_url):
    tasks = tasks_grpc.TaskServiceStub(channels["communication"])
    task_id = eventually(lambda: next((task.task_id for task in tasks.ListTasks(
        tasks_api.ListTasksRequest(owner_org_id="vtv", regulation_id=draft["regulation_id"]),
        metadata=bearer("owner"), timeout=10).tasks), None), what="vtv's press task")
    tasks.AcceptTask(tasks_api.AcceptTaskRequest(
        idempotency_key=key(), task_id=task_id, accepted_by="Ban Thời sự"),
        metadata=[*bearer("owner"), (REQUEST_ID, "vtv-accept-1")], timeout=10)
    tasks.CompleteTask(tasks_api.CompleteTaskRequest(
        idempotency_key=key(), task_id=task_id, evidence=task_pb2.Evidence(
            url="https://vtv.vn/phong-su-luat-dat-dai", reach_count=120000)),
        metadata=bearer("owner"), timeout=10)

    rows = [row for row in audit_rows(database_url, "communication", draft["regulation_id"])
            if row["via"] == "grpc" and (row["detail"] or {}).get("task_id") == task_id]
    assert [(row["action"].rpartition(".")[2], row["actor"], row["actor_roles"],
             row["request"]) for row in rows] == [
        ("TaskAccepted", "vtv", ["communication"], TASKS + "AcceptTask"),
        ("TaskCompleted", "vtv", ["communication"], TASKS + "CompleteTask")]
    assert rows[0]["request_id"] == "vtv-accept-1"
    assert len(rows[1]["request_id"]) == 32  # none sent: the server made one


def test_no_personal_data_is_recorded(draft, channels, database_url):
    portal = consultation_grpc.ConsultationServiceStub(channels["consultation"])
    contact = consultation_api.ContactDetails(**CONTACT)

    def submitted():
        try:
            return portal.SubmitComment(consultation_api.SubmitCommentRequest(
                comment=comment(draft["regulation_id"], TEXT, contact=contact)),
                metadata=bearer("portal"), timeout=10)
        except grpc.RpcError as error:  # until the consultation has opened
            if error.code() not in (grpc.StatusCode.NOT_FOUND,
                                    grpc.StatusCode.FAILED_PRECONDITION):
                raise
            return None

    eventually(submitted, what="the consultation to open")
    portal.SubmitComments(iter([consultation_api.SubmitCommentsRequest(comments=[
        comment(draft["regulation_id"], f"{TEXT} ({n})", contact=contact) for n in range(5)])]),
        metadata=bearer("portal"), timeout=30)

    rows = [row for service in ("drafting", "communication", "consultation")
            for row in audit_rows(database_url, service, draft["regulation_id"])]
    received = [row for row in rows if row["action"].endswith("CommentReceived")]
    assert [(row["actor"], row["via"], row["request"].rpartition("/")[2], len(row["event_ids"]))
            for row in received] == [("vpcp.portal", "grpc", "SubmitComment", 1),
                                     ("vpcp.portal", "grpc", "SubmitComments", 5)]
    everything = json.dumps(rows, default=str, ensure_ascii=False)
    for secret in (*CONTACT.values(), TEXT, "0987654417", "Riêng Tư", "rieng.tu"):
        assert secret not in everything
