"""`policyctl tasks`: the communication tasks an organisation owns — list them, accept one,
report progress, complete it with evidence (TaskService of the communication service)."""

from __future__ import annotations

import click

from policy.common.v1 import common_pb2
from policy.communication.v1 import task_pb2
from policy.communication.v1 import task_service_pb2 as api
from policy.communication.v1 import task_service_pb2_grpc as api_grpc
from policyctl.options import EnumChoice, idempotency_key_option, paged
from policyctl.output import as_dict, label, moment
from policyctl.session import Session, pass_session

STATUS = EnumChoice(task_pb2.TaskStatus.DESCRIPTOR, "TASK_STATUS_")
CHANNEL = EnumChoice(common_pb2.Channel.DESCRIPTOR, "CHANNEL_")


def _stub(session: Session) -> api_grpc.TaskServiceStub:
    return session.stub("communication", api_grpc.TaskServiceStub)


def _status(task: task_pb2.Task) -> str:
    return label(task_pb2.TaskStatus.Name(task.status), "TASK_STATUS_")


def _show(session: Session, task: task_pb2.Task) -> None:
    def render():
        out = session.out
        out.fields([
            ("task", task.task_id), ("title", task.title), ("regulation", task.regulation_id),
            ("kind", task.kind), ("status", _status(task)),
            ("priority", label(task_pb2.TaskPriority.Name(task.priority), "TASK_PRIORITY_")),
            ("channel", label(common_pb2.Channel.Name(task.channel), "CHANNEL_")),
            ("owner", task.owner_org_id), ("audience", task.audience),
            ("regions", ", ".join(task.region_ids)), ("due", moment(task.due_at)),
            ("evidence", task.evidence.url), ("reach", task.evidence.reach_count or None),
            ("note", task.evidence.note),
            ("playbook", f"{task.playbook_rule} ({task.playbook_version})")])
    session.out.emit(as_dict(task), render)


@click.group("tasks")
def command():
    """Communication tasks: the ones your organisation owns, and their progress."""


@command.command("list")
@click.option("--org", envvar="POLICYCTL_ORG", show_envvar=True, required=True,
              help="Your organisation, e.g. bnnmt.communication, vtv, "
                   "lao-cai.commune-officers; includes tasks escalated to it.")
@click.option("--regulation", help="Only this regulation's tasks.")
@click.option("--status", type=STATUS, help="Only tasks in this status.")
@click.option("--channel", type=CHANNEL, help="Only tasks on this channel.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many tasks.")
@pass_session
def list_tasks(session: Session, org: str, regulation: str | None, status: int | None,
               channel: int | None, limit: int | None) -> None:
    """List your organisation's tasks, soonest due first."""
    stub = _stub(session)
    request = api.ListTasksRequest(owner_org_id=org, regulation_id=regulation or "",
                                   status=status or 0, channel=channel or 0)
    tasks = list(paged(lambda r: stub.ListTasks(r, timeout=session.settings.timeout),
                       request, "tasks", limit))
    session.out.emit(
        [as_dict(task) for task in tasks],
        lambda: session.out.table(
            ["TASK", "DUE", "STATUS", "KIND", "CHANNEL", "REGULATION", "TITLE"],
            [(t.task_id, moment(t.due_at), _status(t), t.kind,
              label(common_pb2.Channel.Name(t.channel), "CHANNEL_"), t.regulation_id, t.title)
             for t in tasks],
            title=f"{len(tasks)} task(s) of {org}"))


@command.command("show")
@click.argument("task_id")
@pass_session
def show(session: Session, task_id: str) -> None:
    """Show one task with its evidence."""
    response = _stub(session).GetTask(api.GetTaskRequest(task_id=task_id),
                                      timeout=session.settings.timeout)
    _show(session, response.task)


@command.command("accept")
@click.argument("task_id")
@click.option("--by", "accepted_by", required=True,
              help="Who takes it on: a person or unit of the owning organisation.")
@idempotency_key_option
@pass_session
def accept(session: Session, task_id: str, accepted_by: str, idempotency_key: str) -> None:
    """Accept a task your organisation owns."""
    response = _stub(session).AcceptTask(
        api.AcceptTaskRequest(idempotency_key=idempotency_key, task_id=task_id,
                              accepted_by=accepted_by), timeout=session.settings.timeout)
    _show(session, response.task)


@command.command("progress")
@click.argument("task_id")
@click.option("--percent", type=click.IntRange(0, 100), required=True, help="Share done.")
@click.option("--note", default="", help="What was done.")
@idempotency_key_option
@pass_session
def progress(session: Session, task_id: str, percent: int, note: str,
             idempotency_key: str) -> None:
    """Report how far a task is."""
    response = _stub(session).ReportProgress(
        api.ReportProgressRequest(idempotency_key=idempotency_key, task_id=task_id,
                                  percent_done=percent, note=note),
        timeout=session.settings.timeout)
    _show(session, response.task)


@command.command("complete")
@click.argument("task_id")
@click.option("--evidence-url", required=True,
              help="Where the result can be seen: the article, broadcast, post or report.")
@click.option("--reach", type=click.IntRange(min=0), default=0,
              help="How many people it reached (readers, listeners, households).")
@click.option("--note", default="", help="Anything the evaluators should know.")
@idempotency_key_option
@pass_session
def complete(session: Session, task_id: str, evidence_url: str, reach: int, note: str,
             idempotency_key: str) -> None:
    """Complete a task with its evidence."""
    evidence = task_pb2.Evidence(url=evidence_url, reach_count=reach, note=note)
    response = _stub(session).CompleteTask(
        api.CompleteTaskRequest(idempotency_key=idempotency_key, task_id=task_id,
                                evidence=evidence), timeout=session.settings.timeout)
    _show(session, response.task)
