"""The load a fault test puts on the platform, and the ledger of what the platform acknowledged.

Worker threads take drafts through their lifecycle over gRPC — register, revise, then either
withdraw, or submit for consultation, comment (unary calls and bulk streams), complete some of
the draft's communication tasks and adopt. Each call is retried on transient failures
(UNAVAILABLE, DEADLINE_EXCEEDED, …) with the same request, so with the same idempotency key,
as a real client does: drafting through the SDK's DraftingClient, the other services with the
same RetryPolicy. Only a successful response enters the ledger: it is the ground truth of what
was accepted, which the audit then looks for everywhere."""

from __future__ import annotations

import itertools
import random
import threading
import time
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, TypeVar

import grpc

from policy.common.v1 import common_pb2
from policy.communication.v1 import task_pb2
from policy.communication.v1 import task_service_pb2 as tasks_api
from policy.communication.v1 import task_service_pb2_grpc as tasks_grpc
from policy.consultation.v1 import consultation_service_pb2 as consultation_api
from policy.consultation.v1 import consultation_service_pb2_grpc as consultation_grpc
from policy.drafting.v1 import drafting_service_pb2 as drafting_api
from policy_sdk import DraftingClient, RetryPolicy
from tests.support import eventually

# Long enough to outlast a restarting service or database; the key makes every retry safe.
RETRY = RetryPolicy(max_attempts=1_000_000, initial_backoff=0.1, max_backoff=1.0,
                    attempt_timeout=15.0, overall_timeout=300.0)
# How long a lifecycle waits for a consumer to act (open the window, create the tasks).
CATCH_UP_S = 300.0
# As the SDK sets up a channel of its own: reconnect to a restarted service within RETRY's
# backoff, not gRPC's default of up to two minutes.
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", int(RETRY.initial_backoff * 1000)),
                   ("grpc.max_reconnect_backoff_ms", int(RETRY.max_backoff * 1000))]
UNARY_COMMENTS = 3
BULK_MESSAGES, COMMENTS_PER_MESSAGE = 2, 5
COMPLETIONS = 2
# Drafts withdrawn, always before consultation: a withdrawal racing its consultation's events
# on another topic would leave the tasks those events create to timing, not to the playbook.
WITHDRAWN_SHARE = 0.25
PROVINCES = (("tp-ha-noi",), ("02", "tp-ha-noi"), ("22", "04"))
Response = TypeVar("Response")


def call(attempt: Callable[[float], Response]) -> Response:
    """Returns `attempt(timeout)`, retried on transient failures as RETRY says; the caller's
    request, and so its idempotency key, is the same every time. Other failures raise."""
    deadline = time.monotonic() + RETRY.overall_timeout
    for number in itertools.count(1):
        try:
            return attempt(max(0.1, min(RETRY.attempt_timeout, deadline - time.monotonic())))
        except grpc.RpcError as error:
            if error.code() not in RETRY.retryable_codes or time.monotonic() > deadline:
                raise
        time.sleep(RETRY.backoff(number))


@dataclass(frozen=True)
class Change:
    """An acknowledged drafting call: its method and the draft it answered with."""
    method: str
    version: int
    state: int


@dataclass
class Ledger:
    """Everything the platform acknowledged, by regulation."""
    changes: dict[str, list[Change]] = field(default_factory=dict)
    # regulation -> idempotency key -> comment id ("" when it came in a bulk stream)
    comments: dict[str, dict[str, str]] = field(default_factory=dict)
    completed: dict[str, str] = field(default_factory=dict)  # task id -> regulation
    calls: Counter = field(default_factory=Counter)          # acknowledged calls by method
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def change(self, method: str, draft: drafting_api.Draft) -> None:
        with self._lock:
            self.changes.setdefault(draft.regulation_id, []).append(
                Change(method, draft.version, draft.state))
            self.calls[method] += 1

    def comment(self, method: str, regulation_id: str, ids: dict[str, str]) -> None:
        with self._lock:
            self.comments.setdefault(regulation_id, {}).update(ids)
            self.calls[method] += 1

    def completion(self, task: task_pb2.Task) -> None:
        with self._lock:
            self.completed[task.task_id] = task.regulation_id
            self.calls["CompleteTask"] += 1

    def adopted(self) -> list[str]:
        return [r for r, changes in self.changes.items()
                if changes[-1].state == drafting_api.DRAFT_STATE_ADOPTED]


class LoadDriver:
    """Runs `workers` threads taking drafts through their lifecycle until stop(); records
    what was acknowledged in `ledger` and what failed for good in `errors`."""

    def __init__(self, targets: dict[str, str], seed: int, workers: int = 4):
        self.seed = seed
        self.run_id = uuid.UUID(int=random.Random(seed).getrandbits(128)).hex[:12]
        self.ledger = Ledger()
        self.errors: list[str] = []
        self._stop = threading.Event()
        # Each worker's channels to drafting, consultation and communication.
        self._channels = [{name: grpc.insecure_channel(targets[name], CHANNEL_OPTIONS)
                           for name in ("drafting", "consultation", "communication")}
                          for _ in range(workers)]
        self._threads = [threading.Thread(target=self._work, args=(n,), name=f"load-{n}",
                                          daemon=True) for n in range(workers)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 2 * CATCH_UP_S) -> None:
        """Lets each worker finish the lifecycle it is in, so that its draft is adopted or
        withdrawn, and waits for them."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            self.errors.append(f"workers still busy after {timeout:.0f} s: {stuck}")
        self.abandon()

    def abandon(self) -> None:
        """Stops the workers at once (a test that failed): their calls fail on the closed
        channels instead of retrying for minutes."""
        self._stop.set()
        for channels in self._channels:
            for channel in channels.values():
                channel.close()

    def _work(self, worker: int) -> None:
        channels = self._channels[worker]
        lifecycle = Lifecycle(self.ledger, DraftingClient(channels["drafting"], retry=RETRY),
                              consultation_grpc.ConsultationServiceStub(channels["consultation"]),
                              tasks_grpc.TaskServiceStub(channels["communication"]),
                              random.Random(f"{self.seed}/{worker}"))
        for number in itertools.count():
            if self._stop.is_set():
                return
            try:
                lifecycle.run(f"faults-{self.run_id}-{worker}-{number}")
            except Exception:
                self.errors.append(f"worker {worker}, draft {number}:\n"
                                   f"{traceback.format_exc()}")
                return


class Lifecycle:
    """One draft's way through the platform, as one worker drives it."""

    def __init__(self, ledger: Ledger, drafting: DraftingClient,
                 consultation: consultation_grpc.ConsultationServiceStub,
                 tasks: tasks_grpc.TaskServiceStub, rng: random.Random):
        self.ledger = ledger
        self.drafting = drafting
        self.consultation = consultation
        self.tasks = tasks
        self.rng = rng

    def run(self, key: str) -> None:
        """Takes a new draft to its end; `key` prefixes every idempotency key it sends."""
        now = datetime.now(timezone.utc)
        draft = self._change("RegisterDraft", self.drafting.register_draft,
                             regulation_type="REGULATION_TYPE_DECREE",
                             title="Nghị định về quản lý đất đai ở vùng biên giới",
                             lead_agency_id="bnnmt", impact_level="IMPACT_LEVEL_HIGH",
                             affected_groups=["nong-dan"],
                             affected_province_codes=self.rng.choice(PROVINCES),
                             planned_consultation_start=now + timedelta(days=14),
                             idempotency_key=f"{key}-register")
        regulation_id = draft.regulation_id
        self._change("ReviseDraft", self.drafting.revise_draft, regulation_id,
                     change_summary="Bổ sung Điều 5", title="Nghị định về đất đai vùng biên giới",
                     idempotency_key=f"{key}-revise")
        if self.rng.random() < WITHDRAWN_SHARE:
            self._change("WithdrawDraft", self.drafting.withdraw_draft, regulation_id,
                         reason="Chưa đủ điều kiện trình", idempotency_key=f"{key}-withdraw")
            return
        self._change("SubmitForConsultation", self.drafting.submit_for_consultation,
                     regulation_id, idempotency_key=f"{key}-submit")
        self._await_window(regulation_id)
        self._comment(regulation_id, key)
        self._complete_tasks(regulation_id, key)
        self._change("AdoptDraft", self.drafting.adopt_draft, regulation_id,
                     idempotency_key=f"{key}-adopt")

    def _change(self, method: str, sdk_call, *args, **kwargs) -> drafting_api.Draft:
        draft = sdk_call(*args, **kwargs)
        self.ledger.change(method, draft)
        return draft

    def _await_window(self, regulation_id: str) -> None:
        request = consultation_api.GetConsultationRequest(regulation_id=regulation_id)

        def is_open() -> bool:
            try:
                reply = call(lambda timeout: self.consultation.GetConsultation(request,
                                                                               timeout=timeout))
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:  # not consumed yet
                    return False
                raise
            return reply.consultation.state == consultation_api.CONSULTATION_STATE_OPEN

        eventually(is_open, timeout=CATCH_UP_S, what=f"the consultation on {regulation_id}")

    def _new_comment(self, regulation_id: str, key: str) -> consultation_api.Comment:
        article = self.rng.randint(1, 40)
        return consultation_api.Comment(
            idempotency_key=key, regulation_id=regulation_id,
            stakeholder_type=self.rng.choice((common_pb2.STAKEHOLDER_TYPE_CITIZEN,
                                              common_pb2.STAKEHOLDER_TYPE_BUSINESS)),
            province_code=self.rng.choice(("01", "02", "tp-ha-noi")),
            article_ref=f"Điều {article}",
            text=f"Đề nghị làm rõ Điều {article}: ý kiến {key} về thời hạn bồi thường.")

    def _comment(self, regulation_id: str, key: str) -> None:
        for n in range(UNARY_COMMENTS):
            request = consultation_api.SubmitCommentRequest(
                comment=self._new_comment(regulation_id, f"{key}-comment-{n}"))
            reply = call(lambda timeout: self.consultation.SubmitComment(request, timeout=timeout))
            self.ledger.comment("SubmitComment", regulation_id,
                                {request.comment.idempotency_key: reply.comment_id})
        stream = [consultation_api.SubmitCommentsRequest(comments=[
            self._new_comment(regulation_id, f"{key}-bulk-{m}-{n}")
            for n in range(COMMENTS_PER_MESSAGE)]) for m in range(BULK_MESSAGES)]
        # After a failure the whole stream is sent again: stored comments are counted again,
        # never stored twice.
        reply = call(lambda timeout: self.consultation.SubmitComments(iter(stream),
                                                                      timeout=timeout))
        sent = [c.idempotency_key for message in stream for c in message.comments]
        if reply.accepted != len(sent) or reply.rejected:
            raise AssertionError(f"bulk stream of {regulation_id}: {reply}")
        self.ledger.comment("SubmitComments", regulation_id, dict.fromkeys(sent, ""))

    def _complete_tasks(self, regulation_id: str, key: str) -> None:
        request = tasks_api.ListTasksRequest(regulation_id=regulation_id,
                                             page=common_pb2.PageRequest(page_size=500))
        listed = eventually(
            lambda: call(lambda timeout: self.tasks.ListTasks(request, timeout=timeout)).tasks,
            timeout=CATCH_UP_S, what=f"the tasks of {regulation_id}")
        for n, task in enumerate(self.rng.sample(list(listed), min(COMPLETIONS, len(listed)))):
            completion = tasks_api.CompleteTaskRequest(
                idempotency_key=f"{key}-complete-{n}", task_id=task.task_id,
                evidence=task_pb2.Evidence(url=f"https://baochinhphu.vn/{key}-{n}",
                                           reach_count=1000, note="Đã đăng tải"))
            reply = call(lambda timeout: self.tasks.CompleteTask(completion, timeout=timeout))
            self.ledger.completion(reply.task)
