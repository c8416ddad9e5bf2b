"""`policyctl consultation`: a draft's public consultation — its window, comments one at a
time or imported in bulk from a file, campaigns, the agency's answers and the report
(ConsultationService)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import click
import grpc
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from policy.common.v1 import common_pb2
from policy.consultation.v1 import consultation_service_pb2 as api
from policy.consultation.v1 import consultation_service_pb2_grpc as api_grpc
from policy.consultation.v1 import events_pb2 as events
from policyctl import errors
from policyctl.comment_files import (STAKEHOLDER_TYPES, FileProblem, RejectedRows, Row,
                                     count_rows, file_format, read_rows)
from policyctl.options import EnumChoice, idempotency_key_option, paged
from policyctl.output import as_dict, label, moment
from policyctl.session import Session, pass_session
from policykit.errors import retry_delay
from policykit.text import nfc

OUTCOME = EnumChoice(events.AnswerOutcome.DESCRIPTOR, "ANSWER_OUTCOME_")
# The service takes at most 1,000 comments a message; 500 keeps messages well under gRPC's
# 4 MiB default with 10,000-character comments.
COMMENTS_PER_MESSAGE = 500
# Rows sent per stream: a stream's result is stored before it ends, so an interrupted import
# loses at most one chunk of progress — and a re-run absorbs what was stored.
ROWS_PER_STREAM = 2_000
STREAM_ATTEMPTS = 8
RETRYABLE = (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE)


def _stub(session: Session) -> api_grpc.ConsultationServiceStub:
    return session.stub("consultation", api_grpc.ConsultationServiceStub)


def _answer_text(answer: api.Answer) -> str:
    if not answer.answer_id:
        return "-"
    return label(events.AnswerOutcome.Name(answer.outcome), "ANSWER_OUTCOME_")


@click.group("consultation")
def command():
    """Public consultation on a draft: comments, campaigns, answers and the report."""


@command.command("show")
@click.argument("regulation_id")
@pass_session
def show(session: Session, regulation_id: str) -> None:
    """Show a draft's consultation window and its counts."""
    c = _stub(session).GetConsultation(api.GetConsultationRequest(regulation_id=regulation_id),
                                       timeout=session.settings.timeout).consultation
    reason = (label(events.ClosingReason.Name(c.closing_reason), "CLOSING_REASON_")
              if c.closing_reason else None)
    session.out.emit(as_dict(c), lambda: session.out.fields([
        ("consultation", c.consultation_id), ("regulation", c.regulation_id),
        ("title", c.title),
        ("state", label(api.ConsultationState.Name(c.state), "CONSULTATION_STATE_")),
        ("opens", moment(c.opens_at)), ("closes", moment(c.closes_at)),
        ("closed", moment(c.closed_at) if c.HasField("closed_at") else None),
        ("closing reason", reason), ("comments", c.comments_received),
        ("answered", c.comments_answered)]))


@command.command("comment")
@click.argument("regulation_id")
@click.option("--text", required=True, help="The comment, 1 to 10,000 characters.")
@click.option("--stakeholder", type=click.Choice(list(STAKEHOLDER_TYPES)), required=True,
              help="Who comments.")
@click.option("--province", "province_code", required=True,
              help="A 2008 province code or a 2025 province id, e.g. 01 or ha-noi.")
@click.option("--article", "article_ref", default="",
              help='The article addressed, e.g. "Điều 12"; empty for the whole draft.')
@click.option("--name", default="", help="Contact details: kept by the consultation "
              "service only, never published.")
@click.option("--email", default="")
@click.option("--phone", default="")
@click.option("--organisation", default="")
@idempotency_key_option
@pass_session
def comment(session: Session, regulation_id: str, text: str, stakeholder: str,
            province_code: str, article_ref: str, name: str, email: str, phone: str,
            organisation: str, idempotency_key: str) -> None:
    """Submit one comment on a draft in consultation."""
    contact = api.ContactDetails(name=nfc(name), email=email, phone=phone,
                                 organisation=nfc(organisation))
    request = api.SubmitCommentRequest(comment=api.Comment(
        idempotency_key=idempotency_key, regulation_id=regulation_id, text=nfc(text),
        stakeholder_type=STAKEHOLDER_TYPES[stakeholder], province_code=province_code,
        article_ref=nfc(article_ref), contact=contact))
    reply = _stub(session).SubmitComment(request, timeout=session.settings.timeout)

    def render():
        notes = [note for flag, note in ((reply.resubmitted, "already received earlier"),
                                         (reply.flagged_corrupted_text,
                                          "stored flagged: the text looks corrupted"))
                 if flag]
        session.out.line(f"comment {reply.comment_id} received"
                         + (f" ({'; '.join(notes)})" if notes else ""))
    session.out.emit(as_dict(reply), render)


@command.command("import")
@click.argument("regulation_id")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "declared_format", type=click.Choice(["csv", "jsonl"]),
              help="Default: from the extension (.csv, .jsonl, .ndjson).")
@click.option("--rejected", "rejected_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the rejected rows with their reasons. "
                   "Default: beside the file, <name>.rejected.<ext>.")
@pass_session
def import_comments(session: Session, regulation_id: str, path: Path,
                    declared_format: str | None, rejected_path: Path | None) -> None:
    """Import a CSV or JSON Lines file of comments, e.g. from a portal or paper forms.

    Columns: text (required), stakeholder_type, province_code, article_ref, name, email,
    phone, organisation, idempotency_key. Rows the service refuses are written, with the
    field and the reason, to the rejected-rows file; fix them there and import that file.
    Importing a file again stores nothing twice. Exit code 8 when rows were rejected."""
    try:
        fmt = file_format(path, declared_format)
        total = count_rows(path, fmt)
    except FileProblem as error:
        raise errors.CommandError(str(error), errors.INVALID_INPUT) from error
    rejected = RejectedRows(rejected_path or path.with_name(f"{path.stem}.rejected.{fmt}"), fmt)
    totals: Counter = Counter()
    progress = Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), console=session.out.errors,
                        disable=session.json, transient=False)
    try:
        with progress:
            bar = progress.add_task("import", total=total)
            chunk: list[Row] = []
            for row in read_rows(path, fmt, regulation_id):
                chunk.append(row)
                if len(chunk) == ROWS_PER_STREAM:
                    _submit(session, chunk, totals, rejected)
                    progress.advance(bar, len(chunk))
                    chunk = []
            if chunk:
                _submit(session, chunk, totals, rejected)
                progress.advance(bar, len(chunk))
    except FileProblem as error:
        _summary(session, path, totals, rejected)
        raise errors.CommandError(str(error), errors.INVALID_INPUT) from error
    finally:
        rejected.close()
    _summary(session, path, totals, rejected)
    if rejected.count:
        raise click.exceptions.Exit(errors.PARTIAL)


def _submit(session: Session, chunk: list[Row], totals: Counter, rejected: RejectedRows) -> None:
    """Streams a chunk's comments and writes its rejected rows — the file's and the
    service's — in file order."""
    refusals = [(row, row.field, row.reason) for row in chunk if row.comment is None]
    rows = [row for row in chunk if row.comment is not None]
    messages = [api.SubmitCommentsRequest(comments=[r.comment for r in
                                                    rows[i:i + COMMENTS_PER_MESSAGE]])
                for i in range(0, len(rows), COMMENTS_PER_MESSAGE)]
    if messages:
        reply = _send(session, messages)
        totals.update(accepted=reply.accepted, resubmitted=reply.resubmitted,
                      flagged=reply.flagged_corrupted_text)
        refusals += [(rows[r.position], r.field, r.reason) for r in reply.rejected]
    for row, field, reason in sorted(refusals, key=lambda refusal: refusal[0].number):
        rejected.add(row, field, reason)


def _send(session: Session,
          messages: list[api.SubmitCommentsRequest]) -> api.SubmitCommentsResponse:
    """One stream; retried whole when the service is busy or away — the idempotency keys
    make a retry absorb what an earlier attempt stored."""
    for attempt in range(1, STREAM_ATTEMPTS + 1):
        try:
            return _stub(session).SubmitComments(iter(messages),
                                                 timeout=max(session.settings.timeout, 60))
        except grpc.RpcError as error:
            if error.code() not in RETRYABLE or attempt == STREAM_ATTEMPTS:
                raise
            time.sleep(_retry_delay(error, attempt))
    raise AssertionError("unreachable: the last attempt returns or raises")


def _retry_delay(error: grpc.RpcError, attempt: int) -> float:
    """The service's RetryInfo delay when it sent one, else exponential backoff."""
    return retry_delay(error) or min(10.0, 0.2 * 2 ** attempt)


def _summary(session: Session, path: Path, totals: Counter, rejected: RejectedRows) -> None:
    summary = {"file": str(path), "accepted": totals["accepted"],
               "already_received": totals["resubmitted"],
               "flagged_corrupted_text": totals["flagged"], "rejected": rejected.count,
               "rejected_rows_file": str(rejected.path) if rejected.count else None}

    def render():
        session.out.line(f"{summary['accepted']} comment(s) accepted"
                         f" ({summary['already_received']} already received earlier,"
                         f" {summary['flagged_corrupted_text']} flagged as corrupted text),"
                         f" {rejected.count} rejected")
        if rejected.count:
            session.out.line(f"rejected rows and their reasons: {rejected.path}")
    session.out.emit(summary, render)


@command.command("comments")
@click.argument("regulation_id")
@click.option("--unanswered", is_flag=True, help="Only comments without an answer.")
@click.option("--flagged", is_flag=True, help="Only comments whose text looked corrupted.")
@click.option("--campaign", "campaign_id", default="", help="Only this campaign's comments.")
@click.option("--article", default="", help='Only comments on this article, e.g. "Điều 12".')
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@pass_session
def comments(session: Session, regulation_id: str, unanswered: bool, flagged: bool,
             campaign_id: str, article: str, limit: int) -> None:
    """List a draft's comments (without contact details), oldest first."""
    stub = _stub(session)
    request = api.ListCommentsRequest(regulation_id=regulation_id, unanswered_only=unanswered,
                                      flagged_only=flagged, campaign_id=campaign_id,
                                      article=nfc(article))
    found = list(paged(lambda r: stub.ListComments(r, timeout=session.settings.timeout),
                       request, "comments", limit))
    session.out.emit([as_dict(c) for c in found], lambda: session.out.table(
        ["COMMENT", "RECEIVED", "WHO", "PROVINCE", "ARTICLE", "CAMPAIGN", "ANSWER", "TEXT"],
        [(c.comment_id, moment(c.received_at),
          label(common_pb2.StakeholderType.Name(c.stakeholder_type), "STAKEHOLDER_TYPE_"),
          c.province_code, c.article or "-", c.campaign_id or "-", _answer_text(c.answer),
          _excerpt(c.text)) for c in found],
        title=f"{len(found)} comment(s) on {regulation_id}"))


def _excerpt(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width - 1] + "…"


@command.command("campaigns")
@click.argument("regulation_id")
@pass_session
def campaigns(session: Session, regulation_id: str) -> None:
    """List groups of identical or near-identical comments, counted as one opinion each."""
    stub = _stub(session)
    found = list(paged(lambda r: stub.ListCampaigns(r, timeout=session.settings.timeout),
                       api.ListCampaignsRequest(regulation_id=regulation_id), "campaigns"))
    session.out.emit([as_dict(c) for c in found], lambda: session.out.table(
        ["CAMPAIGN", "COMMENTS", "FIRST", "ANSWER", "SAMPLE"],
        [(c.campaign_id, c.comments, moment(c.first_received_at), _answer_text(c.answer),
          _excerpt(c.sample_text)) for c in found],
        title=f"{len(found)} campaign(s) on {regulation_id}"))


@command.command("answer")
@click.argument("regulation_id")
@click.option("--comment", "comment_ids", multiple=True, help="A comment to answer; repeatable.")
@click.option("--campaign", "campaign_id", default="", help="Answer a whole campaign instead.")
@click.option("--outcome", type=OUTCOME, required=True, help="How the comment was taken into account.")
@click.option("--explanation", required=True, help="The agency's explanation, published in the report.")
@idempotency_key_option
@pass_session
def answer(session: Session, regulation_id: str, comment_ids: tuple[str, ...], campaign_id: str,
           outcome: int, explanation: str, idempotency_key: str) -> None:
    """Answer comments (or a campaign) as the drafting agency."""
    if bool(comment_ids) == bool(campaign_id):
        raise click.UsageError("give either --comment (one or more) or --campaign")
    reply = _stub(session).AnswerComments(api.AnswerCommentsRequest(
        idempotency_key=idempotency_key, regulation_id=regulation_id,
        comment_ids=list(comment_ids), campaign_id=campaign_id, outcome=outcome,
        explanation=nfc(explanation)), timeout=session.settings.timeout)
    session.out.emit(as_dict(reply), lambda: session.out.line(
        f"answer {reply.answer_id}: {reply.comments_answered} comment(s) answered"))


@command.command("report")
@click.argument("regulation_id")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the HTML report to this file.")
@pass_session
def report(session: Session, regulation_id: str, out_path: Path | None) -> None:
    """Show the published consultation report's totals; save the HTML with --out."""
    reply = _stub(session).GetConsultationReport(
        api.GetConsultationReportRequest(regulation_id=regulation_id),
        timeout=session.settings.timeout)
    if out_path:
        out_path.write_text(reply.html, encoding="utf-8")
    s = reply.summary
    data = as_dict(reply)
    data.pop("html")

    def render():
        session.out.fields([
            ("report", f"version {reply.version}, published {moment(reply.published_at)}"),
            ("url", reply.report_url), ("comments", s.total_comments),
            ("independent opinions", s.independent_opinions),
            ("campaigns", f"{s.campaigns} ({s.campaign_comments} comments)"),
            ("flagged", s.flagged_comments), ("saved to", out_path)])
    session.out.emit(data, render)
