"""`policyctl timeline`: everything that happened to one regulation, from the publication
service — every stage's events, the consultation totals, and each communication task with
its latest status and evidence."""

from __future__ import annotations

import click

from policy.common.v1 import common_pb2
from policy.communication.v1 import task_pb2
from policy.publication.v1 import publication_service_pb2 as api
from policy.publication.v1 import publication_service_pb2_grpc as api_grpc
from policyctl.output import as_dict, label, moment
from policyctl.session import Session, pass_session

# The service's largest page: a timeline is read whole.
PAGE_SIZE = 5000


def fetch_timeline(stub: api_grpc.PublicationServiceStub, regulation_id: str,
                   timeout: float = 10) -> api.GetTimelineResponse:
    """Calls GetTimeline page after page and returns the whole timeline as one response."""
    whole = api.GetTimelineResponse()
    token = ""
    while True:
        response = stub.GetTimeline(api.GetTimelineRequest(
            regulation_id=regulation_id,
            page=common_pb2.PageRequest(page_size=PAGE_SIZE, page_token=token)),
            timeout=timeout)
        whole.entries.extend(response.entries)
        token = response.page.next_page_token
        if not token:
            response.ClearField("entries")
            response.ClearField("page")
            whole.MergeFrom(response)
            return whole


def _heading(session: Session, r: api.RegulationSummary) -> None:
    p = r.promulgation
    session.out.fields([
        ("regulation", r.regulation_id), ("title", r.title),
        ("type", label(common_pb2.RegulationType.Name(r.regulation_type), "REGULATION_TYPE_")),
        ("lead agency", r.lead_agency_id),
        ("status", label(api.RegulationStatus.Name(r.status), "REGULATION_STATUS_")),
        ("document", p.document_number or None),
        ("signed", f"{moment(p.signed_at)} by {p.signer}" if p.signer else None),
        ("effective", moment(p.effective_at) if r.HasField("promulgation") else None),
        *((label(api.LinkKind.Name(link.kind), "LINK_KIND_"),
           link.other_document_number or link.other_regulation_id) for link in r.links)])


def _render(session: Session, t: api.GetTimelineResponse) -> None:
    out = session.out
    if t.HasField("regulation"):
        _heading(session, t.regulation)
    out.line()
    out.table(["TIME (UTC+7)", "STAGE", "WHAT HAPPENED"],
              [(moment(e.occurred_at), e.source, e.description) for e in t.entries],
              title=f"{len(t.entries)} event(s)")
    for c in t.consultations:
        out.line()
        counted = (f"{c.total_comments} comment(s), closed {moment(c.closed_at)}"
                   if c.HasField("closed_at") else f"{c.comments_received} comment(s) so far")
        out.line(f"consultation {c.consultation_id}: {moment(c.opens_at)} – "
                 f"{moment(c.closes_at)}, {counted}, {c.comments_answered} answered"
                 + (f"; report {c.report_url}" if c.report_url else ""))
    out.line()
    out.table(["STATUS", "DUE", "KIND", "CHANNEL", "OWNER", "EVIDENCE"],
              [(label(task_pb2.TaskStatus.Name(s.task.status), "TASK_STATUS_")
                + (" (late)" if s.completed_late else ""), moment(s.task.due_at), s.task.kind,
                label(common_pb2.Channel.Name(s.task.channel), "CHANNEL_"),
                s.task.owner_org_id,
                s.task.evidence.url or (f"escalated to {s.escalated_to_org_id}"
                                        if s.escalated_to_org_id else ""))
               for s in t.tasks],
              title=f"{len(t.tasks)} communication task(s)")


@click.command("timeline")
@click.argument("regulation_id")
@pass_session
def command(session: Session, regulation_id: str) -> None:
    """Show a regulation's timeline: events of every stage, consultations and tasks."""
    stub = session.stub("publication", api_grpc.PublicationServiceStub)
    timeline = fetch_timeline(stub, regulation_id, session.settings.timeout)
    session.out.emit(as_dict(timeline), lambda: _render(session, timeline))
