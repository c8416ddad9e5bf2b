"""The report on how comments were taken into account ("báo cáo tổng hợp, tiếp thu, giải
trình ý kiến"): a readable HTML document in Vietnamese, article by article — the comments,
the campaigns and the agency's answers — with the consultation's totals.

It names no commenter and shows no contact details; phone numbers and email addresses that
people wrote into their comments are masked. Each article lists its campaigns (up to
MAX_CAMPAIGNS, largest first) and its independent comments (up to MAX_COMMENTS, answered ones
first); the counts always cover them all."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import asyncpg

from policy.common.v1 import common_pb2
from policy.consultation.v1 import events_pb2 as events
from policykit.reference import ReferenceData, UnknownReference

from services.consultation.summary import MEMBERS, article_order

MAX_CAMPAIGNS = 50
MAX_COMMENTS = 100
VIETNAM = timezone(timedelta(hours=7), "ICT")  # no daylight saving time

STAKEHOLDERS = {
    common_pb2.STAKEHOLDER_TYPE_CITIZEN: "Người dân",
    common_pb2.STAKEHOLDER_TYPE_BUSINESS: "Doanh nghiệp",
    common_pb2.STAKEHOLDER_TYPE_ORGANISATION: "Tổ chức",
    common_pb2.STAKEHOLDER_TYPE_EXPERT: "Chuyên gia, nhà khoa học",
    common_pb2.STAKEHOLDER_TYPE_AGENCY: "Cơ quan nhà nước",
}
OUTCOMES = {
    events.ANSWER_OUTCOME_ACCEPTED: "Tiếp thu",
    events.ANSWER_OUTCOME_PARTLY_ACCEPTED: "Tiếp thu một phần",
    events.ANSWER_OUTCOME_NOT_ACCEPTED: "Không tiếp thu, có giải trình",
}
UNANSWERED = "Chưa trả lời"
CLOSING = {
    events.CLOSING_REASON_WINDOW_ENDED: "hết thời hạn lấy ý kiến",
    events.CLOSING_REASON_DRAFT_ADOPTED: "dự thảo đã được thông qua",
    events.CLOSING_REASON_DRAFT_WITHDRAWN: "dự thảo đã được rút",
}
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<!\d)(?:\+?84|0)(?:[ .-]?\d){8,10}(?!\d)")


@dataclass
class Answered:
    outcome: int
    explanation: str


@dataclass
class CampaignLine:
    sample_text: str
    comments: int        # on this article
    answer: Answered | None


@dataclass
class CommentLine:
    stakeholder_type: int
    province_id: str
    article_ref: str
    text: str
    answer: Answered | None


@dataclass
class Article:
    key: str
    count: events.CommentCount
    answered: int = 0
    campaigns: list[CampaignLine] = field(default_factory=list)
    campaigns_total: int = 0
    comments: list[CommentLine] = field(default_factory=list)
    comments_total: int = 0


@dataclass
class Facts:
    title: str
    agency: str
    opens_at: datetime
    closed_at: datetime
    summary: events.ConsultationClosed
    answered: int
    articles: list[Article]
    version: int
    published_at: datetime


def _answer(row: asyncpg.Record) -> Answered | None:
    return Answered(row["outcome"], row["explanation"]) if row["outcome"] else None


async def collect(conn: asyncpg.Connection, consultation: asyncpg.Record,
                  summary: events.ConsultationClosed, answered: int, version: int,
                  published_at: datetime, reference: ReferenceData) -> Facts:
    """Reads what the report says about a closed consultation whose texts are grouped."""
    consultation_id = consultation["consultation_id"]
    articles = {count.key: Article(count.key, count) for count in summary.by_article}
    campaign_rows = await conn.fetch(
        f"WITH {MEMBERS}"
        " SELECT m.article, k.group_id, count(*) AS comments,"
        "        count(*) FILTER (WHERE m.answer_id IS NOT NULL OR g.answer_id IS NOT NULL)"
        "            AS answered,"
        "        min(c.text) AS sample_text, min(a.outcome) AS outcome,"
        "        min(a.explanation) AS explanation"
        " FROM members m JOIN campaigns k USING (group_id)"
        " JOIN text_groups g USING (group_id) JOIN comments c ON c.comment_id = g.first_comment_id"
        " LEFT JOIN answers a ON a.answer_id = g.answer_id"
        " GROUP BY m.article, k.group_id ORDER BY m.article, comments DESC, k.group_id",
        consultation_id)
    for row in campaign_rows:
        article = articles[row["article"]]
        article.answered += row["answered"]
        article.campaigns_total += 1
        if len(article.campaigns) < MAX_CAMPAIGNS:
            article.campaigns.append(CampaignLine(row["sample_text"], row["comments"],
                                                  _answer(row)))
    comment_rows = await conn.fetch(
        f"WITH {MEMBERS}"
        " SELECT * FROM ("
        "   SELECT m.article, c.article_ref, c.stakeholder_type, c.province_id, c.text,"
        "          a.outcome, a.explanation,"
        "          row_number() OVER (PARTITION BY m.article"
        "                             ORDER BY a.outcome IS NULL, c.comment_id) AS position,"
        "          count(*) OVER (PARTITION BY m.article) AS total,"
        "          count(a.outcome) OVER (PARTITION BY m.article) AS answered"
        "   FROM members m JOIN comments c USING (comment_id)"
        "   LEFT JOIN campaigns k USING (group_id)"
        "   LEFT JOIN answers a ON a.answer_id = c.answer_id"
        "   WHERE k.group_id IS NULL) listed"
        " WHERE position <= $2 ORDER BY article, position", consultation_id, MAX_COMMENTS)
    for row in comment_rows:
        article = articles[row["article"]]
        if row["position"] == 1:
            article.comments_total = row["total"]
            article.answered += row["answered"]
        article.comments.append(CommentLine(row["stakeholder_type"], row["province_id"],
                                            row["article_ref"], row["text"], _answer(row)))
    try:
        agency = reference.agency_on(consultation["lead_agency_id"],
                                     summary.closed_at.ToDatetime().date()).name
    except UnknownReference:
        agency = consultation["lead_agency_id"]
    return Facts(
        title=consultation["title"], agency=agency, opens_at=consultation["opens_at"],
        closed_at=consultation["closed_at"], summary=summary, answered=answered,
        articles=sorted(articles.values(), key=lambda a: article_order(a.key)),
        version=version, published_at=published_at)


def _masked(text: str) -> str:
    return _PHONE.sub("[số điện thoại đã ẩn]", _EMAIL.sub("[thư điện tử đã ẩn]", text))


def _when(moment: datetime) -> str:
    return moment.astimezone(VIETNAM).strftime("%H:%M ngày %d/%m/%Y")


def _e(value) -> str:
    return html.escape(str(value))


def _number(value: int) -> str:
    return f"{value:,}".replace(",", ".")  # Vietnamese groups thousands with dots


def _outcome_cells(answer: Answered | None) -> str:
    if answer is None:
        return f"<td class=\"pending\">{UNANSWERED}</td><td></td>"
    return f"<td>{_e(OUTCOMES[answer.outcome])}</td><td>{_e(answer.explanation)}</td>"


def _count_table(caption: str, counts, label) -> list[str]:
    lines = [f"<table><caption>{caption}</caption>",
             "<tr><th></th><th>Số ý kiến</th><th>Thuộc chiến dịch</th>"
             "<th>Ý kiến độc lập</th></tr>"]
    for count in counts:
        lines.append(f"<tr><td>{_e(label(count.key))}</td><td>{_number(count.comments)}</td>"
                     f"<td>{_number(count.campaign_comments)}</td>"
                     f"<td>{_number(count.independent_opinions)}</td></tr>")
    lines.append("</table>")
    return lines


def _more(left_out: int, what: str) -> list[str]:
    return [f"<p class=\"more\">… và {_number(left_out)} {what}.</p>"] if left_out > 0 else []


def _article(article: Article, province_name) -> list[str]:
    heading = article.key or "Ý kiến chung về dự thảo"
    count = article.count
    lines = [f"<section><h3>{_e(heading)}</h3>",
             f"<p>{_number(count.comments)} ý kiến, trong đó {_number(count.independent_opinions)}"
             f" ý kiến độc lập và {_number(article.campaigns_total)} chiến dịch gồm"
             f" {_number(count.campaign_comments)} ý kiến; đã trả lời"
             f" {_number(article.answered)} ý kiến.</p>"]
    if article.campaigns:
        lines += ["<table><caption>Chiến dịch (ý kiến giống hoặc gần giống nhau)</caption>",
                  "<tr><th>Nội dung tiêu biểu</th><th>Số ý kiến</th><th>Kết quả</th>"
                  "<th>Giải trình của cơ quan soạn thảo</th></tr>"]
        for campaign in article.campaigns:
            lines.append(f"<tr><td>{_e(_masked(campaign.sample_text))}</td>"
                         f"<td>{_number(campaign.comments)}</td>"
                         f"{_outcome_cells(campaign.answer)}</tr>")
        lines.append("</table>")
        lines += _more(article.campaigns_total - len(article.campaigns),
                       "chiến dịch nhỏ hơn không liệt kê")
    if article.comments:
        lines += ["<table><caption>Ý kiến độc lập</caption>",
                  "<tr><th>STT</th><th>Đối tượng</th><th>Tỉnh, thành phố</th><th>Vị trí</th>"
                  "<th>Nội dung góp ý</th><th>Kết quả</th>"
                  "<th>Giải trình của cơ quan soạn thảo</th></tr>"]
        for number, comment in enumerate(article.comments, 1):
            lines.append(
                f"<tr><td>{number}</td><td>{_e(STAKEHOLDERS[comment.stakeholder_type])}</td>"
                f"<td>{_e(province_name(comment.province_id))}</td>"
                f"<td>{_e(comment.article_ref)}</td><td>{_e(_masked(comment.text))}</td>"
                f"{_outcome_cells(comment.answer)}</tr>")
        lines.append("</table>")
        lines += _more(article.comments_total - len(article.comments),
                       "ý kiến độc lập khác không liệt kê")
    lines.append("</section>")
    return lines


def render(facts: Facts, reference: ReferenceData) -> str:
    """Returns the report as a complete HTML document."""
    def province_name(province_id: str) -> str:
        try:
            return reference.province(province_id).name
        except UnknownReference:
            return province_id

    def stakeholder(key: str) -> str:
        return STAKEHOLDERS[common_pb2.StakeholderType.Value(key)]

    summary = facts.summary
    lines = [
        "<!DOCTYPE html>", '<html lang="vi">', "<head>", '<meta charset="utf-8">',
        f"<title>Báo cáo tiếp thu, giải trình ý kiến: {_e(facts.title)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto;line-height:1.5}"
        "table{border-collapse:collapse;margin:1em 0;width:100%}"
        "td,th{border:1px solid #999;padding:.3em;vertical-align:top;text-align:left}"
        "caption{font-weight:bold;text-align:left}.pending{color:#a00}.more{font-style:italic}"
        "</style>", "</head>", "<body>",
        "<h1>Báo cáo tổng hợp, tiếp thu, giải trình ý kiến góp ý</h1>",
        f"<p>Dự thảo: <strong>{_e(facts.title)}</strong></p>",
        f"<p>Cơ quan chủ trì soạn thảo: {_e(facts.agency)}</p>",
        f"<p>Thời gian lấy ý kiến: từ {_when(facts.opens_at)} đến {_when(facts.closed_at)}"
        f" ({CLOSING[summary.reason]}).</p>",
        f"<p>Phiên bản {facts.version}, cập nhật lúc {_when(facts.published_at)}.</p>",
        "<h2>1. Tổng quan</h2>", "<ul>",
        f"<li>Tổng số ý kiến nhận được: {_number(summary.total_comments)}.</li>",
        f"<li>Ý kiến độc lập: {_number(summary.independent_opinions)} (mỗi chiến dịch được"
        " tính là một ý kiến).</li>",
        f"<li>Chiến dịch — nhóm ý kiến có nội dung giống hoặc gần giống nhau:"
        f" {_number(summary.campaigns)}, gồm {_number(summary.campaign_comments)} ý kiến.</li>",
        f"<li>Ý kiến có nội dung bị lỗi mã hóa ký tự, không đưa vào thống kê:"
        f" {_number(summary.flagged_comments)}.</li>",
        f"<li>Đã trả lời: {_number(facts.answered)}/{_number(summary.total_comments)}"
        " ý kiến.</li>", "</ul>",
        "<h2>2. Ý kiến theo đối tượng và địa phương</h2>",
        *_count_table("Theo đối tượng góp ý", summary.by_stakeholder_type, stakeholder),
        *_count_table("Theo tỉnh, thành phố", summary.by_province, province_name),
        "<h2>3. Tiếp thu, giải trình theo từng điều</h2>",
    ]
    for article in facts.articles:
        lines += _article(article, province_name)
    lines += ["<footer><p>Báo cáo không nêu tên và thông tin liên hệ của người góp ý; số điện"
              " thoại và địa chỉ thư điện tử trong nội dung ý kiến đã được ẩn.</p></footer>",
              "</body>", "</html>"]
    return "\n".join(lines)
