"""Open data: each published regulation with its timeline as one JSON document, in the
format OPEN_DATA.md describes and open-data.schema.json checks.

`document` maps a GetTimelineResponse to that document, so the API and the open data always
say the same. The publisher republishes a regulation's document on policy.open-data.v1
(compacted, key = regulation_id) shortly after its timeline changes, one document for all
the changes of that interval. The topic carries JSON, not protobuf, on purpose: open-data
consumers read it without the platform's contracts."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import asyncpg
from google.protobuf.message import Message
from prometheus_client import Counter

from policy.common.v1 import common_pb2
from policy.communication.v1 import task_pb2
from policy.publication.v1 import publication_service_pb2 as api

from services.publication import periodic, publishing, timeline
from services.publication.effective_dates import type_name
from services.publication.storage import status_name

log = logging.getLogger(__name__)

FORMAT = "policy.open-data.regulation.v1"
SCHEMA_PATH = Path(__file__).with_name("open-data.schema.json")
# Kafka's default limit for a record is 1 MiB; a larger one would stop the outbox relay.
MAX_RECORD_BYTES = 1_000_000

DOCUMENTS_PUBLISHED = Counter("policy_publication_open_data_documents_total",
                              "Open-data documents put on policy.open-data.v1.")
DOCUMENTS_TOO_LARGE = Counter(
    "policy_publication_open_data_too_large_total",
    "Open-data documents too large for the topic; the file export still has them.")


def _time(message: Message, field: str) -> str | None:
    """RFC 3339 in UTC, e.g. "2026-03-01T17:00:00Z"; None when unset."""
    return getattr(message, field).ToJsonString() if message.HasField(field) else None


def _name(enum, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix)


def _counts(counts) -> list[dict]:
    return [{"key": c.key, "comments": c.comments, "campaign_comments": c.campaign_comments,
             "independent_opinions": c.independent_opinions} for c in counts]


def _promulgation(p: api.Promulgation) -> dict:
    return {
        "document_number": p.document_number, "signer": p.signer,
        "signed_at": _time(p, "signed_at"), "gazette_number": p.gazette_number,
        "gazette_published_at": _time(p, "gazette_published_at"),
        "effective_at": _time(p, "effective_at"),
        "effective_date_rule": p.effective_date_rule or None,
        "effective_date_override_reason": p.effective_date_override_reason or None,
    }


def _link(link: api.RegulationLink) -> dict:
    return {
        "kind": _name(api.LinkKind, link.kind, "LINK_KIND_"),
        "regulation_id": link.other_regulation_id,
        "document_number": link.other_document_number or None,
        "articles": list(link.articles), "linked_at": _time(link, "linked_at"),
        "event_id": link.event_id,
    }


def _consultation(c: api.ConsultationSummary) -> dict:
    return {
        "consultation_id": c.consultation_id, "opens_at": _time(c, "opens_at"),
        "closes_at": _time(c, "closes_at"), "closed_at": _time(c, "closed_at"),
        "comments_received": c.comments_received, "comments_answered": c.comments_answered,
        "total_comments": c.total_comments,
        "by_stakeholder_type": _counts(c.by_stakeholder_type),
        "by_province": _counts(c.by_province), "by_article": _counts(c.by_article),
        "report_url": c.report_url or None, "report_published_at": _time(c, "report_published_at"),
    }


def _task(summary: api.TaskSummary) -> dict:
    t = summary.task
    evidence = None
    if t.HasField("evidence"):
        evidence = {"url": t.evidence.url, "reach_count": t.evidence.reach_count,
                    "note": t.evidence.note or None}
    return {
        "task_id": t.task_id, "trigger_event_id": t.trigger_event_id, "kind": t.kind,
        "title": t.title, "channel": _name(common_pb2.Channel, t.channel, "CHANNEL_"),
        "owner_org_id": t.owner_org_id, "audience": t.audience,
        "region_ids": list(t.region_ids),
        "priority": _name(task_pb2.TaskPriority, t.priority, "TASK_PRIORITY_"),
        "created_at": _time(t, "created_at"), "due_at": _time(t, "due_at"),
        "status": _name(task_pb2.TaskStatus, t.status, "TASK_STATUS_"),
        "status_changed_at": _time(summary, "status_changed_at"),
        "percent_done": summary.percent_done, "completed_late": summary.completed_late,
        "escalated_to_org_id": summary.escalated_to_org_id or None,
        "cancel_reason": summary.cancel_reason or None, "evidence": evidence,
    }


def document(response: api.GetTimelineResponse) -> dict:
    """Returns the open-data document of a published regulation's whole timeline."""
    r = response.regulation
    return {
        "format": FORMAT,
        "regulation_id": r.regulation_id,
        "title": r.title,
        "summary": r.summary,
        "regulation_type": type_name(r.regulation_type),
        "lead_agency_id": r.lead_agency_id,
        "status": status_name(r.status),
        "promulgation": _promulgation(r.promulgation),
        "links": [_link(link) for link in r.links],
        "consultations": [_consultation(c) for c in response.consultations],
        "tasks": [_task(t) for t in response.tasks],
        "timeline": [{"event_id": e.event_id, "event_type": e.event_type, "topic": e.source,
                      "occurred_at": _time(e, "occurred_at"), "description": e.description}
                     for e in response.entries],
    }


def encode(document: dict, *, indent: int | None = None) -> bytes:
    """UTF-8 JSON with the Vietnamese text as it is (not \\u-escaped)."""
    separators = None if indent else (",", ":")
    return json.dumps(document, ensure_ascii=False, indent=indent,
                      separators=separators).encode("utf-8")


async def published_document(conn: asyncpg.Connection, regulation_id: str) -> dict:
    """Reads the regulation's whole timeline and returns its document."""
    return document(await timeline.load(conn, regulation_id))


async def publish_next(pool: asyncpg.Pool) -> bool:
    """Puts the document of the regulation that has waited longest in the outbox; returns
    False when none is waiting. One transaction a regulation: a handler changing it waits
    for this read (see storage.mark_changed), so the wait is one document's read."""
    async with pool.acquire() as conn, conn.transaction():
        regulation_id = await conn.fetchval(
            "SELECT regulation_id FROM open_data_pending ORDER BY marked_at LIMIT 1"
            " FOR UPDATE SKIP LOCKED")
        if regulation_id is None:
            return False
        body = encode(await published_document(conn, regulation_id))
        if len(body) > MAX_RECORD_BYTES:
            DOCUMENTS_TOO_LARGE.inc()
            log.error("open-data document of %s is %d bytes, over %d: not put on %s",
                      regulation_id, len(body), MAX_RECORD_BYTES, publishing.OPEN_DATA_TOPIC)
        else:
            await publishing.enqueue_document(conn, regulation_id, body)
            DOCUMENTS_PUBLISHED.inc()
        await conn.execute("DELETE FROM open_data_pending WHERE regulation_id = $1",
                           regulation_id)
    return True


async def run(pool: asyncpg.Pool, stop: asyncio.Event, interval_s: float) -> None:
    """Republishes changed documents every interval until `stop` is set."""

    async def publish_all() -> None:
        while await publish_next(pool):
            pass

    await periodic.every(interval_s, stop, publish_all, "publishing open data")
