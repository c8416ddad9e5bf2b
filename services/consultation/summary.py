"""The totals of a consultation: comments by stakeholder type, province and article, with
campaigns counted once among the independent opinions, and how many comments are answered.

A campaign is a group of two or more comments whose texts are identical or near-identical
(see grouping.py). Flagged comments (corrupted text) are in the total and in
flagged_comments, in no other count."""

from __future__ import annotations

import uuid
import asyncpg

from policy.common.v1 import common_pb2
from policy.consultation.v1 import events_pb2 as events

from services.consultation.storage import timestamp

# Comments with their text's group; a group with two or more of them is a campaign.
MEMBERS = """
    members AS MATERIALIZED (
        SELECT c.comment_id, c.stakeholder_type, c.province_id, c.article, c.answer_id,
               t.group_id
        FROM comments c JOIN texts t
            ON t.consultation_id = c.consultation_id AND t.text_key = c.text_key
        WHERE c.consultation_id = $1 AND NOT c.flagged_corrupted),
    campaigns AS (
        SELECT group_id, count(*) AS size FROM members GROUP BY group_id HAVING count(*) >= 2)
"""

_COUNTS = f"""
    WITH {MEMBERS}
    SELECT GROUPING(m.stakeholder_type) = 0 AS by_type,
           GROUPING(m.province_id) = 0 AS by_province, GROUPING(m.article) = 0 AS by_article,
           m.stakeholder_type, m.province_id, m.article, count(*) AS comments,
           count(k.group_id) AS campaign_comments, count(DISTINCT k.group_id) AS campaigns
    FROM members m LEFT JOIN campaigns k USING (group_id)
    GROUP BY GROUPING SETS ((m.stakeholder_type), (m.province_id), (m.article), ())
"""


def article_order(article: str) -> tuple:
    """Sorts the draft as a whole first, then Điều 1, 2, …, 10 by number, then the rest."""
    number = article.removeprefix("Điều ")
    if not article:
        return (0, 0, "")
    if number.isdigit():
        return (1, int(number), "")
    return (2, 0, article)


def _count(key: str, row: asyncpg.Record) -> events.CommentCount:
    return events.CommentCount(
        key=key, comments=row["comments"], campaign_comments=row["campaign_comments"],
        independent_opinions=row["comments"] - row["campaign_comments"] + row["campaigns"])


async def summarise(conn: asyncpg.Connection, consultation: asyncpg.Record,
                    ) -> events.ConsultationClosed:
    """Counts a closed consultation whose texts are all grouped; returns its
    ConsultationClosed event."""
    consultation_id = consultation["consultation_id"]
    closed = events.ConsultationClosed(
        regulation_id=consultation["regulation_id"], consultation_id=str(consultation_id),
        reason=consultation["closing_reason"])
    timestamp(consultation["opens_at"], closed.opens_at)
    timestamp(consultation["closed_at"], closed.closed_at)
    totals = await conn.fetchrow(
        "SELECT count(*) AS total, count(*) FILTER (WHERE flagged_corrupted) AS flagged"
        " FROM comments WHERE consultation_id = $1", consultation_id)
    closed.total_comments, closed.flagged_comments = totals["total"], totals["flagged"]
    by_type, by_province, by_article = [], [], []
    for row in await conn.fetch(_COUNTS, consultation_id):
        if row["by_type"]:
            by_type.append((row["stakeholder_type"], _count(
                common_pb2.StakeholderType.Name(row["stakeholder_type"]), row)))
        elif row["by_province"]:
            by_province.append(_count(row["province_id"], row))
        elif row["by_article"]:
            by_article.append(_count(row["article"], row))
        else:
            closed.campaigns = row["campaigns"]
            closed.campaign_comments = row["campaign_comments"]
            closed.independent_opinions = _count("", row).independent_opinions
    closed.by_stakeholder_type.extend(count for _, count in sorted(by_type, key=lambda t: t[0]))
    closed.by_province.extend(sorted(by_province, key=lambda c: (-c.comments, c.key)))
    closed.by_article.extend(sorted(by_article, key=lambda c: article_order(c.key)))
    return closed


async def comments_received(conn: asyncpg.Connection, consultation_id: uuid.UUID) -> int:
    """Counts from the outbox, one row per stored batch, rather than the comments."""
    return await conn.fetchval(
        "SELECT coalesce(sum(events), 0) FROM event_batches WHERE consultation_id = $1"
        " AND event_type = $2", consultation_id, events.CommentReceived.DESCRIPTOR.full_name)


async def comments_answered(conn: asyncpg.Connection, consultation_id: uuid.UUID) -> int:
    """Counts comments with an answer of their own, or of their campaign."""
    return await conn.fetchval(
        "SELECT (SELECT count(*) FROM comments WHERE consultation_id = $1"
        "        AND answer_id IS NOT NULL)"
        "     + (SELECT count(*) FROM text_groups g"
        "        JOIN texts t ON t.group_id = g.group_id"
        "        JOIN comments c ON c.consultation_id = t.consultation_id"
        "             AND c.text_key = t.text_key"
        "        WHERE g.consultation_id = $1 AND g.answer_id IS NOT NULL"
        "          AND c.answer_id IS NULL AND NOT c.flagged_corrupted)", consultation_id)
