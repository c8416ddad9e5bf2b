"""The timeline of one regulation: every event of every stage that happened to it, the
communication tasks with their latest status and evidence, and the consultation totals.

Entries are recorded as events are consumed, and for the service's own events in the
transaction that emits them; `load` reads them back in order a page at a time;
`format_timeline` renders one for the demo (policyctl.timeline.fetch_timeline reads it)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timezone

import asyncpg
from google.protobuf.message import Message

from policy.publication.v1 import events_pb2 as publication
from policy.publication.v1 import publication_service_pb2 as api
from policykit.envelope import Event

from services.publication import storage
from services.publication.descriptions import (CHANNELS, REGULATION_STATUSES, REGULATION_TYPES,
                                               STAGES, TASK_STATUSES, Context, count, day,
                                               describe, moment)

DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 5000
Position = tuple[datetime, int]


def topic_of(event_type: str) -> str:
    """Returns the stage topic an event type travels on: each stage's events are published
    on the topic named like their package (policy.drafting.v1.DraftAdopted on
    policy.drafting.v1)."""
    return event_type.rsplit(".", 1)[0]


def linked_regulation(payload: Message) -> str | None:
    """Returns the other regulation of an amendment or repeal, None for other events."""
    if isinstance(payload, publication.RegulationAmended):
        return payload.amended_by_regulation_id
    if isinstance(payload, publication.RegulationRepealed):
        return payload.repealed_by_regulation_id
    return None


async def _context(conn: asyncpg.Connection, payload: Message, regulation_id: str) -> Context:
    subject = regulation_id == payload.regulation_id
    linked = linked_regulation(payload)
    if linked is not None:
        other_id = linked if subject else payload.regulation_id
        other = await storage.get_regulation(conn, other_id)
        return Context(subject=subject, other=other.label if other else other_id)
    if "task_id" in payload.DESCRIPTOR.fields_by_name and payload.task_id:
        return Context(task=await storage.task_label(conn, payload.task_id))
    return Context()


async def record(conn: asyncpg.Connection, event: Event, regulation_id: str | None = None) -> None:
    """Adds the event to the timeline of its regulation, or of `regulation_id` (the other
    side of an amendment or repeal), and queues that regulation's open-data document."""
    regulation_id = regulation_id or event.regulation_id
    description = describe(event.payload, await _context(conn, event.payload, regulation_id))
    await storage.insert_entry(conn, regulation_id, event, topic_of(event.type), description)
    await storage.mark_changed(conn, regulation_id)


def encode_position(position: Position) -> str:
    occurred_at, seq = position
    return base64.urlsafe_b64encode(f"{occurred_at.isoformat()}|{seq}".encode()).decode()


def decode_position(token: str) -> Position:
    """Reads a next_page_token; raises ValueError for anything else."""
    try:
        occurred_at, seq = base64.urlsafe_b64decode(token.encode()).decode().split("|")
        occurred_at, seq = datetime.fromisoformat(occurred_at), int(seq)
        # As the query takes them: the time in UTC (one at the calendar's edge may not fit),
        # the sequence number a bigint.
        position = occurred_at.astimezone(timezone.utc), seq
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError) as error:
        raise ValueError(f"not a page token: {error}") from None
    if occurred_at.tzinfo is None or not -2**63 <= seq < 2**63:
        raise ValueError("not a page token")
    return position


async def load(conn: asyncpg.Connection, regulation_id: str, *, after: Position | None = None,
               page_size: int | None = None) -> api.GetTimelineResponse | None:
    """Returns the page of the timeline after `after` (every entry when page_size is None),
    or None when nothing at all is known of the regulation."""
    summary = await storage.regulation_summary(conn, regulation_id)
    found = await storage.entries(conn, regulation_id, after,
                                  None if page_size is None else page_size + 1)
    if summary is None and not found:
        return None
    page = found if page_size is None else found[:page_size]
    response = api.GetTimelineResponse(
        entries=[entry for entry, _ in page],
        tasks=await storage.task_summaries(conn, regulation_id),
        consultations=await storage.consultation_summaries(conn, regulation_id))
    if summary is not None:
        response.regulation.CopyFrom(summary)
    if len(found) > len(page):
        response.page.next_page_token = encode_position(page[-1][1])
    return response


_LINKS = {api.LINK_KIND_AMENDS: "sửa đổi, bổ sung", api.LINK_KIND_AMENDED_BY: "được sửa đổi bởi",
          api.LINK_KIND_REPEALS: "bãi bỏ", api.LINK_KIND_REPEALED_BY: "bị bãi bỏ bởi"}


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    """Lines with the columns aligned; the last column is left ragged."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)] if rows else []
    return ["  " + "  ".join([*(c.ljust(w) for c, w in zip(row, widths)), row[-1]]).rstrip()
            for row in rows]


def _heading(summary: api.RegulationSummary) -> list[str]:
    p = summary.promulgation
    lines = [f"{summary.title} — {p.document_number or 'chưa ban hành'}",
             f"  {summary.regulation_id} · {REGULATION_TYPES.get(summary.regulation_type, '')}"
             f" · cơ quan chủ trì {summary.lead_agency_id}"
             f" · {REGULATION_STATUSES.get(summary.status, '')}"]
    if summary.HasField("promulgation"):
        rule = p.effective_date_rule or f"ngày hiệu lực riêng: {p.effective_date_override_reason}"
        lines.append(f"  {p.signer} ký ngày {day(p.signed_at)} · Công báo {p.gazette_number}"
                     f" ngày {day(p.gazette_published_at)} · hiệu lực từ"
                     f" {moment(p.effective_at)} ({rule})")
    for link in summary.links:
        articles = f" ({', '.join(link.articles)})" if link.articles else ""
        other = link.other_document_number or link.other_regulation_id
        lines.append(f"  {_LINKS[link.kind]} {other}{articles}, {day(link.linked_at)}")
    return lines


def _consultation(c: api.ConsultationSummary) -> list[str]:
    window = " – ".join(day(getattr(c, end)) if c.HasField(end) else "?"
                        for end in ("opens_at", "closes_at"))
    if c.HasField("closed_at"):
        totals = f"đã kết thúc: {count(c.total_comments)} ý kiến"
    else:
        totals = f"đang mở: {count(c.comments_received)} ý kiến đã nhận"
    lines = [f"  {c.consultation_id}: {window}, {totals},"
             f" {count(c.comments_answered)} ý kiến đã trả lời"]
    for label, counts in (("theo đối tượng", c.by_stakeholder_type),
                          ("theo tỉnh", c.by_province), ("theo điều", c.by_article)):
        if counts:
            counted = ", ".join(f"{n.key} {count(n.comments)}" for n in counts)
            lines.append(f"    {label}: {counted}")
    if c.report_url:
        lines.append(f"    báo cáo tiếp thu, giải trình: {c.report_url}")
    return lines


def _task(t: api.TaskSummary) -> tuple[str, ...]:
    task = t.task
    evidence = ""
    if task.evidence.url:
        evidence = f"{task.evidence.url} · tiếp cận {count(task.evidence.reach_count)}"
    elif t.escalated_to_org_id:
        evidence = f"chuyển {t.escalated_to_org_id} đôn đốc"
    return (TASK_STATUSES.get(task.status, ""), moment(task.due_at), task.kind,
            CHANNELS.get(task.channel, ""), task.owner_org_id, evidence)


def format_timeline(response: api.GetTimelineResponse) -> str:
    """Renders a timeline for reading: the regulation and its promulgation, every entry with
    its time in Vietnam and its stage, the consultations and the tasks."""
    lines = _heading(response.regulation) if response.HasField("regulation") else []
    lines += ["", f"Dòng thời gian ({len(response.entries)} sự kiện, giờ Việt Nam)"]
    lines += _table([(moment(e.occurred_at), STAGES.get(e.source, e.source), e.description)
                     for e in response.entries])
    if response.consultations:
        lines += ["", "Lấy ý kiến"]
        for consultation in response.consultations:
            lines += _consultation(consultation)
    lines += ["", f"Nhiệm vụ truyền thông ({len(response.tasks)})"]
    lines += _table([_task(t) for t in response.tasks])
    return "\n".join(lines)
