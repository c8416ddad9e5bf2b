"""The TaskService gRPC API: communication offices, press agencies and commune officers list
their tasks (and those escalated to them) and move them to completion. Who may see and change
which task is checked here, on the task's parties (access.py)."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime, timezone
from typing import Callable

import asyncpg

from policy.communication.v1 import task_service_pb2 as api
from policy.communication.v1 import task_service_pb2_grpc as api_grpc
from policykit import auth, idempotency
from policykit.errors import FieldViolations, NotFound

from services.communication import storage, tasks

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def _page_token(task) -> str:
    key = [task.due_at.ToJsonString(), task.task_id]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _after(token: str) -> tuple[datetime, str] | None:
    if not token:
        return None
    try:
        due, task_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        due = datetime.fromisoformat(due.replace("Z", "+00:00"))
        if due.tzinfo is None:
            raise ValueError("no time zone")
        # As the query takes them: the time in UTC (one at the calendar's edge may not fit),
        # the task id as PostgreSQL reads a UUID.
        return due.astimezone(timezone.utc), str(uuid.UUID(task_id))
    except (ValueError, TypeError, AttributeError, OverflowError, binascii.Error):
        violations = FieldViolations()
        violations.add("page.page_token", "is not a token this service returned")
        raise violations from None


def _commissions(parties) -> bool:
    """Tells whether the caller is the communication office of the task's lead agency, which
    commissions and follows up its regulation's communication."""
    return auth.speaks_for(parties["lead_agency_id"], office="communication")


class TaskServicer(api_grpc.TaskServiceServicer):
    def __init__(self, pool: asyncpg.Pool, clock: Callable[[], datetime]):
        self.pool = pool
        self.clock = clock

    async def ListTasks(self, request: api.ListTasksRequest, context) -> api.ListTasksResponse:
        tasks.check_listing(request)
        size = min(request.page.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = _after(request.page.page_token)
        conditions, args = [], []

        def where(sql: str, value) -> None:
            args.append(value)
            conditions.append(sql.replace("?", f"${len(args)}"))

        # An organisation lists its own tasks; operators anyone's.
        operator = auth.has_role(auth.OPERATOR)
        owner = request.owner_org_id or ("" if operator else auth.current_principal().org)
        auth.require(operator or auth.is_org(owner), f"list the tasks of {owner}")
        if owner:
            where("(owner_org_id = ? OR escalated_to_org_id = ?)", owner)
        if request.regulation_id:
            where("regulation_id = ?", request.regulation_id)
        if request.status:
            where("status = ?", request.status)
        if request.channel:
            where("channel = ?", request.channel)
        if after:
            args.extend(after)
            conditions.append(f"(due_at, task_id) > (${len(args) - 1}, ${len(args)}::uuid)")
        args.append(size + 1)
        sql = (f"SELECT {storage.TASK_COLUMNS} FROM tasks"
               f"{' WHERE ' + ' AND '.join(conditions) if conditions else ''}"
               f" ORDER BY due_at, task_id LIMIT ${len(args)}")
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(sql, *args)
        found = [storage.task_from_row(row) for row in rows[:size]]
        response = api.ListTasksResponse(tasks=found)
        if len(rows) > size:
            response.page.next_page_token = _page_token(found[-1])
        return response

    async def GetTask(self, request: api.GetTaskRequest, context) -> api.GetTaskResponse:
        violations = FieldViolations()
        tasks.check_task_id(violations, request.task_id)
        violations.raise_if_any()
        parties = await self._parties(request.task_id)
        auth.require(auth.has_role(auth.OPERATOR) or _commissions(parties)
                     or auth.is_org(parties["owner_org_id"], parties["escalated_to_org_id"]),
                     f"see task {request.task_id}")
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {storage.TASK_COLUMNS} FROM tasks WHERE task_id = $1::uuid",
                request.task_id)
        return api.GetTaskResponse(task=storage.task_from_row(row))

    async def _parties(self, task_id: str):
        async with self.pool.acquire() as conn:
            parties = await storage.task_parties(conn, task_id)
        if parties is None:
            raise NotFound(f"no task with task_id {task_id!r}")
        return parties

    async def _change(self, action: str, request, response_type):
        tasks.validate(action, request)
        # Before the idempotent change: a response remembered for one organisation's key is
        # never handed to another. Owners work on their tasks; the commissioning office
        # cancels them.
        parties = await self._parties(request.task_id)
        if action == "CancelTask":
            auth.require(_commissions(parties), f"cancel task {request.task_id}")
        else:
            auth.require(auth.is_org(parties["owner_org_id"]),
                         f"{action} on task {request.task_id}, owned by {parties['owner_org_id']}")

        async def apply(conn):
            return response_type(task=await tasks.change(conn, action, request, self.clock()))
        return await idempotency.once(self.pool, request, action,
                                      response_type, apply)

    async def AcceptTask(self, request, context):
        return await self._change("AcceptTask", request, api.AcceptTaskResponse)

    async def ReportProgress(self, request, context):
        return await self._change("ReportProgress", request, api.ReportProgressResponse)

    async def CompleteTask(self, request, context):
        return await self._change("CompleteTask", request, api.CompleteTaskResponse)

    async def CancelTask(self, request, context):
        return await self._change("CancelTask", request, api.CancelTaskResponse)
