"""What people do with their tasks: accept, report progress, complete with evidence, cancel.
Each change is checked against the task's state and emitted as a task event."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import asyncpg

from policy.common.v1 import common_pb2
from policy.communication.v1 import events_pb2 as task_events
from policy.communication.v1 import task_pb2
from policy.communication.v1 import task_service_pb2 as api
from policykit.envelope import REGULATION_ID, new_event
from policykit.errors import FailedPrecondition, FieldViolations, NotFound
from policykit.outbox import enqueue
from policykit.text import looks_corrupted

from services.communication import storage
from services.communication.handlers import OPEN_STATUSES, SOURCE, TASK_TOPIC
from services.communication.organisations import is_org_id

S = task_pb2
# For each action: the statuses it may start from and the status it leads to.
TRANSITIONS = {
    "AcceptTask": ((S.TASK_STATUS_CREATED, S.TASK_STATUS_ASSIGNED, S.TASK_STATUS_OVERDUE),
                   S.TASK_STATUS_ACCEPTED),
    "ReportProgress": ((S.TASK_STATUS_ACCEPTED, S.TASK_STATUS_IN_PROGRESS,
                        S.TASK_STATUS_OVERDUE), S.TASK_STATUS_IN_PROGRESS),
    "CompleteTask": (OPEN_STATUSES, S.TASK_STATUS_COMPLETED),
    "CancelTask": (OPEN_STATUSES, S.TASK_STATUS_CANCELLED),
}
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
MAX_NOTE = 2000


def _status(value: int) -> str:
    return task_pb2.TaskStatus.Name(value)


def check_transition(action: str, status: int, task_id: str) -> int:
    """Returns the status the action leads to, or raises FailedPrecondition naming the
    current one."""
    allowed, target = TRANSITIONS[action]
    if status not in allowed:
        raise FailedPrecondition(
            f"task {task_id} is {_status(status)}; {action} is allowed only in "
            f"{', '.join(_status(s) for s in allowed)}")
    return target


def _text(violations: FieldViolations, field: str, value: str, required: bool) -> None:
    if required and not value.strip():
        violations.add(field, "must not be empty")
    elif len(value) > MAX_NOTE:
        violations.add(field, f"must be at most {MAX_NOTE} characters")
    elif looks_corrupted(value):
        violations.add(field, "text looks corrupted; resend it as UTF-8")


def check_task_id(violations: FieldViolations, task_id: str) -> None:
    # The hyphenated form PostgreSQL reads: uuid.UUID also takes "0000_0000…" or "+0000…".
    try:
        canonical = str(uuid.UUID(task_id)) == task_id.lower()
    except ValueError:
        canonical = False
    if not canonical:
        violations.add("task_id", "must be a task id (a UUID)")


def check_listing(request: api.ListTasksRequest) -> None:
    """Checks a ListTasks request's filters and page size; raises FieldViolations naming each
    bad one."""
    violations = FieldViolations()
    if request.page.page_size < 0:
        violations.add("page.page_size", "must not be negative")
    if request.owner_org_id and not is_org_id(request.owner_org_id):
        violations.add("owner_org_id", "must be an organisation id like bnnmt.communication")
    if request.regulation_id and not REGULATION_ID.match(request.regulation_id):
        violations.add("regulation_id", "must be a regulation id: 1 to 64 characters a-z, 0-9 "
                                        "and '-'")
    for field, enum in (("status", task_pb2.TaskStatus), ("channel", common_pb2.Channel)):
        if getattr(request, field) not in enum.values():
            violations.add(field, f"must be one of {', '.join(enum.keys()[1:])}, or unset")
    violations.raise_if_any()


def validate(action: str, request) -> None:
    """Checks the request's own fields; raises FieldViolations naming each bad one."""
    violations = FieldViolations()
    check_task_id(violations, request.task_id)
    if action == "AcceptTask":
        _text(violations, "accepted_by", request.accepted_by, required=True)
    elif action == "ReportProgress":
        if not 0 <= request.percent_done <= 100:
            violations.add("percent_done", "must be between 0 and 100")
        _text(violations, "note", request.note, required=False)
    elif action == "CompleteTask":
        if not _URL.match(request.evidence.url):
            violations.add("evidence.url", "must be an http(s) URL where the result can be seen")
        if request.evidence.reach_count < 0:
            violations.add("evidence.reach_count", "must not be negative")
        _text(violations, "evidence.note", request.evidence.note, required=False)
    elif action == "CancelTask":
        _text(violations, "reason", request.reason, required=True)
    violations.raise_if_any()


async def change(conn: asyncpg.Connection, action: str, request, now: datetime) -> task_pb2.Task:
    """Applies the action to the task within the caller's transaction, emits its event and
    returns the task as it now is."""
    row = await conn.fetchrow(
        f"SELECT {storage.TASK_COLUMNS} FROM tasks WHERE task_id = $1 FOR UPDATE",
        request.task_id)
    if row is None:
        raise NotFound(f"no task with task_id {request.task_id!r}")
    target = check_transition(action, row["status"], request.task_id)
    task = storage.task_from_row(row)
    if action == "AcceptTask":
        await conn.execute("UPDATE tasks SET status = $2, accepted_by = $3, updated_at = $4"
                           " WHERE task_id = $1", row["task_id"], target, request.accepted_by, now)
        event = task_events.TaskAccepted(task_id=task.task_id, accepted_by=request.accepted_by)
        event.accepted_at.FromDatetime(now)
    elif action == "ReportProgress":
        await conn.execute("UPDATE tasks SET status = $2, percent_done = $3, progress_note = $4,"
                           " updated_at = $5 WHERE task_id = $1", row["task_id"], target,
                           request.percent_done, request.note, now)
        event = task_events.TaskProgressReported(task_id=task.task_id,
                                                 percent_done=request.percent_done,
                                                 note=request.note)
        event.reported_at.FromDatetime(now)
    elif action == "CompleteTask":
        evidence = request.evidence
        await conn.execute("UPDATE tasks SET status = $2, evidence_url = $3, evidence_reach = $4,"
                           " evidence_note = $5, completed_at = $6, updated_at = $6"
                           " WHERE task_id = $1", row["task_id"], target, evidence.url,
                           evidence.reach_count, evidence.note, now)
        task.evidence.CopyFrom(evidence)
        event = task_events.TaskCompleted(task_id=task.task_id, evidence=evidence,
                                          late=now > row["due_at"])
        event.completed_at.FromDatetime(now)
    else:
        await conn.execute("UPDATE tasks SET status = $2, cancel_reason = $3, updated_at = $4"
                           " WHERE task_id = $1", row["task_id"], target, request.reason, now)
        event = task_events.TaskCancelled(task_id=task.task_id, reason=request.reason)
        event.cancelled_at.FromDatetime(now)
    event.regulation_id = task.regulation_id
    await enqueue(conn, TASK_TOPIC, new_event(event, SOURCE, time=now))
    task.status = target
    return task
