"""Reads of the consultation service's tables for its API: consultations, comments, campaigns
and answers as the agency and the portals see them — never with contact details."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import asyncpg

from policy.consultation.v1 import consultation_service_pb2 as api
from policy.consultation.v1 import events_pb2 as events

CONSULTATION_COLUMNS = (
    "c.consultation_id, c.regulation_id, c.state, c.opens_at, c.closes_at, c.closed_at,"
    " c.closing_reason, c.summary, c.answers_version, c.report_answers_version,"
    " c.report_version, c.report_published_at, d.title, d.lead_agency_id, d.regulation_type")
CONSULTATION_FROM = "consultations c JOIN drafts d USING (regulation_id)"


def timestamp(value: datetime | None, target) -> None:
    """Sets a Timestamp field from an aware datetime; leaves it unset for None."""
    if value is not None:
        target.FromDatetime(value.astimezone(timezone.utc))


def consultation_id_of(regulation_id: str) -> uuid.UUID:
    """A draft has one consultation; its id follows from the regulation's."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"policy/consultation/{regulation_id}")


async def find_consultation(conn: asyncpg.Connection, regulation_id: str, *,
                            lock: str = "") -> asyncpg.Record | None:
    """Returns the consultation on the regulation with its draft's title and lead agency;
    `lock` (e.g. "FOR UPDATE") locks the consultation's row until the transaction ends."""
    return await conn.fetchrow(
        f"SELECT {CONSULTATION_COLUMNS} FROM {CONSULTATION_FROM} WHERE c.regulation_id = $1"
        f" {lock + ' OF c' if lock else ''}", regulation_id)


def consultation_view(row: asyncpg.Record, received: int, answered: int) -> api.Consultation:
    consultation = api.Consultation(
        consultation_id=str(row["consultation_id"]), regulation_id=row["regulation_id"],
        state=row["state"], comments_received=received, comments_answered=answered,
        title=row["title"], closing_reason=row["closing_reason"])
    timestamp(row["opens_at"], consultation.opens_at)
    timestamp(row["closes_at"], consultation.closes_at)
    timestamp(row["closed_at"], consultation.closed_at)
    return consultation


async def answers(conn: asyncpg.Connection, answer_ids) -> dict[uuid.UUID, api.Answer]:
    found = {}
    for row in await conn.fetch(
            "SELECT answer_id, outcome, explanation, answered_at, campaign_id FROM answers"
            " WHERE answer_id = ANY($1::uuid[])", list(set(answer_ids) - {None})):
        answer = api.Answer(answer_id=str(row["answer_id"]), outcome=row["outcome"],
                            explanation=row["explanation"],
                            campaign_id=str(row["campaign_id"] or ""))
        timestamp(row["answered_at"], answer.answered_at)
        found[row["answer_id"]] = answer
    return found


@dataclass(frozen=True)
class CommentQuery:
    consultation_id: uuid.UUID
    article: str | None
    campaign_id: uuid.UUID | None
    unanswered_only: bool
    flagged_only: bool
    after: uuid.UUID | None
    page_size: int


async def list_comments(conn: asyncpg.Connection,
                        query: CommentQuery) -> tuple[list[api.ReceivedComment], uuid.UUID | None]:
    """Returns one page of comments, oldest first, and the last one's id when more follow."""
    rows = await conn.fetch(
        "SELECT c.comment_id, c.idempotency_key, c.stakeholder_type, c.province_code,"
        "       c.article_ref, c.article, c.text, c.flagged_corrupted, c.commenter_pseudonym,"
        "       c.received_at, coalesce(c.answer_id, g.answer_id) AS answer_id,"
        "       CASE WHEN EXISTS (SELECT 1 FROM texts t2 JOIN comments c2"
        "                ON c2.consultation_id = t2.consultation_id AND c2.text_key = t2.text_key"
        "                WHERE t2.group_id = t.group_id AND c2.comment_id <> c.comment_id"
        "                  AND NOT c2.flagged_corrupted)"
        "            THEN t.group_id END AS campaign_id"
        " FROM comments c"
        " LEFT JOIN texts t ON NOT c.flagged_corrupted"
        "      AND t.consultation_id = c.consultation_id AND t.text_key = c.text_key"
        " LEFT JOIN text_groups g ON g.group_id = t.group_id"
        " WHERE c.consultation_id = $1 AND ($2::text IS NULL OR c.article = $2)"
        "   AND ($3::uuid IS NULL OR t.group_id = $3)"
        "   AND (NOT $4 OR coalesce(c.answer_id, g.answer_id) IS NULL)"
        "   AND (NOT $5 OR c.flagged_corrupted) AND ($6::uuid IS NULL OR c.comment_id > $6)"
        " ORDER BY c.comment_id LIMIT $7",
        query.consultation_id, query.article, query.campaign_id, query.unanswered_only,
        query.flagged_only, query.after, query.page_size + 1)
    page = rows[:query.page_size]
    known = await answers(conn, [row["answer_id"] for row in page])
    comments = []
    for row in page:
        comment = api.ReceivedComment(
            comment_id=str(row["comment_id"]), idempotency_key=row["idempotency_key"],
            stakeholder_type=row["stakeholder_type"], province_code=row["province_code"],
            article_ref=row["article_ref"], article=row["article"], text=row["text"],
            flagged_corrupted_text=row["flagged_corrupted"],
            campaign_id=str(row["campaign_id"] or ""),
            commenter_pseudonym=row["commenter_pseudonym"])
        timestamp(row["received_at"], comment.received_at)
        if row["answer_id"] in known:
            comment.answer.CopyFrom(known[row["answer_id"]])
        comments.append(comment)
    return comments, (page[-1]["comment_id"] if len(rows) > len(page) else None)


async def list_campaigns(conn: asyncpg.Connection, consultation_id: uuid.UUID,
                         after: tuple[int, uuid.UUID] | None,
                         page_size: int) -> tuple[list[api.Campaign], tuple | None]:
    """Returns one page of campaigns, largest first, and where the next page starts."""
    after_size, after_id = after or (None, None)
    rows = await conn.fetch(
        "WITH sizes AS ("
        "    SELECT t.group_id, count(*) AS comments FROM texts t JOIN comments c"
        "        ON c.consultation_id = t.consultation_id AND c.text_key = t.text_key"
        "    WHERE t.consultation_id = $1"
        "      AND NOT c.flagged_corrupted"
        "    GROUP BY t.group_id HAVING count(*) >= 2)"
        " SELECT s.group_id, s.comments, c.text, c.received_at, g.answer_id"
        " FROM sizes s JOIN text_groups g USING (group_id)"
        " JOIN comments c ON c.comment_id = g.first_comment_id"
        " WHERE $2::bigint IS NULL OR (s.comments, s.group_id) < ($2, $3)"
        " ORDER BY s.comments DESC, s.group_id DESC LIMIT $4",
        consultation_id, after_size, after_id, page_size + 1)
    page = rows[:page_size]
    known = await answers(conn, [row["answer_id"] for row in page])
    campaigns = []
    for row in page:
        campaign = api.Campaign(campaign_id=str(row["group_id"]), comments=row["comments"],
                                sample_text=row["text"])
        timestamp(row["received_at"], campaign.first_received_at)
        if row["answer_id"] in known:
            campaign.answer.CopyFrom(known[row["answer_id"]])
        campaigns.append(campaign)
    last = page[-1] if len(rows) > len(page) else None
    return campaigns, ((last["comments"], last["group_id"]) if last else None)


async def report(conn: asyncpg.Connection, regulation_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT state, closes_at, closing_reason, summary, report_html, report_version,"
        " report_published_at FROM consultations WHERE regulation_id = $1", regulation_id)


def summary_of(row: asyncpg.Record) -> events.ConsultationClosed:
    return events.ConsultationClosed.FromString(row["summary"] or b"")
