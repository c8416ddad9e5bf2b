"""Loads the Hypothesis profile (tests/fuzz/profiles.py) before the fuzz tests are collected,
runs the five services once for the fuzz tests that need them, and gives each module valid
requests about live things to vary."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf.message import Message

from policy.communication.v1 import task_service_pb2 as tasks_api
from policy.communication.v1 import task_service_pb2_grpc as tasks_grpc
from policy.consultation.v1 import consultation_service_pb2 as consultation_api
from policy.consultation.v1 import consultation_service_pb2_grpc as consultation_grpc
from policy.drafting.v1 import drafting_service_pb2 as drafting_api
from policy.drafting.v1 import drafting_service_pb2_grpc as drafting_grpc
from tests.fuzz import profiles  # noqa: F401
from tests.fuzz import seeds
from tests.support import eventually, running_platform


@pytest.fixture(scope="package")
def platform(platform_topics, database_url, tmp_path_factory):
    # Calls go unauthenticated: what is fuzzed here is input, not access (tests/security).
    with running_platform(platform_topics, database_url, tmp_path_factory.mktemp("fuzz"),
                          extra_env={"AUTH_MODE": "none"}) as services:
        yield services


@pytest.fixture(scope="package")
def channels(platform) -> dict[str, grpc.Channel]:
    """A channel to each running service, by name."""
    opened = {name: grpc.insecure_channel(service.grpc_target)
              for name, service in platform.items()}
    yield opened
    for channel in opened.values():
        channel.close()


class Seeds(dict):
    """Valid requests by type; each lookup is a copy of its own, to change at will."""

    def __getitem__(self, request_type: type[Message]) -> Message:
        request = request_type()
        request.CopyFrom(super().__getitem__(request_type))
        return request


@pytest.fixture(scope="module")
def world(channels) -> Seeds:
    """Valid requests of every type about a live draft in consultation, one of its comments
    and one of its tasks, and a second draft."""
    seed = seeds.requests()
    drafts = drafting_grpc.DraftingServiceStub(channels["drafting"])
    register = seed[drafting_api.RegisterDraftRequest]
    regulation_ids = []
    for _ in range(2):
        register.idempotency_key = str(uuid.uuid4())
        regulation_ids.append(drafts.RegisterDraft(register, timeout=10).draft.regulation_id)
    drafts.SubmitForConsultation(drafting_api.SubmitForConsultationRequest(
        idempotency_key=str(uuid.uuid4()), regulation_id=regulation_ids[0]), timeout=10)
    comments = consultation_grpc.ConsultationServiceStub(channels["consultation"])
    comment = seed[consultation_api.SubmitCommentRequest]
    comment.comment.regulation_id = regulation_ids[0]

    def commented() -> str | None:
        comment.comment.idempotency_key = str(uuid.uuid4())
        try:
            return comments.SubmitComment(comment, timeout=10).comment_id
        except grpc.RpcError as error:  # until the consultation opens
            assert error.code() in (grpc.StatusCode.NOT_FOUND,
                                    grpc.StatusCode.FAILED_PRECONDITION), error
            return None
    comment_id = eventually(commented, what="the consultation to open")
    tasks = tasks_grpc.TaskServiceStub(channels["communication"])
    task_id = eventually(lambda: [task.task_id for task in tasks.ListTasks(
        tasks_api.ListTasksRequest(regulation_id=regulation_ids[0]), timeout=10).tasks],
        what="the draft's tasks")[0]
    return Seeds(seeds.requests(regulation_id=regulation_ids[0],
                                other_regulation_id=regulation_ids[1], task_id=task_id,
                                comment_id=comment_id))
