"""The dashboard's HTML, in Vietnamese: ranked scorecards, one scorecard with its lost points,
a regulation's KPIs and timeline, the overdue list, and the printable report."""

from __future__ import annotations

from datetime import datetime
from html import escape
from urllib.parse import urlencode

from policy.evaluation.v1 import evaluation_service_pb2 as api

from services.evaluation import labels
from services.evaluation.dashboard import charts
from services.evaluation.periods import VIETNAM, day_of, local
from services.evaluation.scorecards import LostItem, Ranking, Standing
from services.evaluation.timeline import stage_of
from services.evaluation.units import AGENCY, KIND_NAMES, PROVINCE

KIND_TITLES = {AGENCY: "Bộ, ngành, cơ quan báo chí", PROVINCE: "Tỉnh, thành phố"}


def link(path: str, **query) -> str:
    query = {k: v for k, v in query.items() if v}
    return path + ("?" + urlencode(query) if query else "")


def scorecard_link(kind: int, subject_id: str, period: str, report_date: str) -> str:
    return link(f"/scorecards/{KIND_NAMES[kind]}/{subject_id}", period=period, date=report_date)


def layout(title: str, body: str, *, period: str = "", report_date: str = "",
           printable: bool = False) -> str:
    form = "" if printable else f"""
<form class="scope" method="get">
  <label>Kỳ <input name="period" value="{escape(period)}" placeholder="YYYY-MM, YYYY-Qn"
    size="9"></label>
  <label>Ngày báo cáo <input name="date" value="{escape(report_date)}" placeholder="YYYY-MM-DD"
    size="10"></label>
  <button>Xem</button>
</form>"""
    nav = "" if printable else f"""
<nav>
  <a href="{escape(link('/', period=period, date=report_date))}">Bảng xếp hạng</a>
  <a href="/overdue">Nhiệm vụ quá hạn</a>
  <a href="/regulations">Văn bản</a>
  <a href="{escape(link('/report', period=period, date=report_date))}">Báo cáo in</a>
</nav>"""
    return f"""<!DOCTYPE html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} — Đánh giá truyền thông chính sách</title>
<link rel="stylesheet" href="/static/dashboard.css">
</head>
<body{' class="printable"' if printable else ''}>
<header>
  <div class="brand">Đánh giá truyền thông chính sách</div>{nav}{form}
</header>
<main>
<h1>{escape(title)}</h1>
{body}
</main>
</body>
</html>"""


def _table(headers: list[str], rows: list[str], css: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return (f'<table class="{css}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _score(score: float) -> str:
    return labels.number(score, 1)


def ranking_rows(ranking: Ranking, report_date: str) -> list[str]:
    rows = []
    for s in ranking.standings:
        href = scorecard_link(ranking.kind, s.subject_id, ranking.period.label, report_date)
        score = s.result.score if s.rank else None
        rows.append(
            f'<tr class="scorecard-row" data-subject="{escape(s.subject_id)}" '
            f'data-rank="{s.rank}" data-score="{score if score is not None else ""}">'
            f'<td class="rank">{s.rank or "—"}</td>'
            f'<td><a href="{escape(href)}">{escape(s.name)}</a>'
            f'{_merged(s)}</td>'
            f'<td class="num"><span class="chip" style="background:'
            f'{charts.score_colour(score)}"></span>{escape(charts.score_text(score))}</td>'
            f'<td class="num">{s.totals["tasks"]}</td>'
            f'<td class="num">{s.totals["tasks_overdue"]}</td>'
            f'<td class="num">{s.totals["lost_items"]}</td></tr>')
    return rows


def _merged(standing: Standing) -> str:
    others = [i for i in standing.merged_ids if i != standing.subject_id]
    return f' <span class="muted">(gồm {escape(", ".join(others))})</span>' if others else ""


RANKING_HEADERS = ["Hạng", "Đơn vị", "Điểm", "Nhiệm vụ", "Quá hạn", "Mục mất điểm"]


def overview(agencies: Ranking, provinces: Ranking, province_units: list[tuple[str, str]],
             report_date: str) -> str:
    period = agencies.period.label
    bars = [charts.Bar(s.name, s.result.score, scorecard_link(AGENCY, s.subject_id, period,
                                                                report_date))
            for s in agencies.standings if s.rank]
    scores = {s.subject_id: s.result.score for s in provinces.standings if s.rank}
    hrefs = {unit: scorecard_link(PROVINCE, unit, period, report_date)
             for unit, _ in province_units}
    agency_chart = (charts.ranked_bars(bars, "Xếp hạng bộ, ngành") if bars
                    else '<p class="muted">Chưa có dữ liệu trong kỳ.</p>')
    csv_links = {k: link("/export/rankings.csv", kind=KIND_NAMES[k], period=period,
                         date=report_date) for k in (AGENCY, PROVINCE)}
    exports = " · ".join(f'<a href="{escape(href)}">CSV {escape(KIND_TITLES[k].lower())}</a>'
                         for k, href in csv_links.items())
    return f"""
<p class="lead">Kỳ <strong>{escape(period)}</strong>, đơn vị hành chính và cơ quan theo ngày
{escape(report_date)}. Điểm trên 100: đúng hạn, truyền thông đi trước, bao phủ, tương tác hai
chiều, hiệu quả (Dân biết → Dân thụ hưởng) và xử lý thông tin sai lệch. {exports}</p>
<div class="panels">
<section id="agencies" class="panel">
  <h2>{KIND_TITLES[AGENCY]}</h2>
  {agency_chart}
  {_table(RANKING_HEADERS, ranking_rows(agencies, report_date), "rankings")}
</section>
<section id="provinces" class="panel">
  <h2>{KIND_TITLES[PROVINCE]}</h2>
  {charts.tile_map(province_units, scores, hrefs)}
  {charts.legend()}
  {_table(RANKING_HEADERS, ranking_rows(provinces, report_date), "rankings")}
</section>
</div>"""


def _kpi_tiles(kpis) -> str:
    tiles = []
    for kpi in kpis:
        decimals = 0 if kpi.unit not in ("%", "giờ", "ngày", "điểm", "ý kiến/100.000 dân") else 1
        tiles.append(f'<div class="kpi" data-kpi="{escape(kpi.name)}">'
                     f'<div class="kpi-value">{labels.number(kpi.value, decimals)}'
                     f'<span class="unit"> {escape(kpi.unit)}</span></div>'
                     f'<div class="kpi-label">{escape(kpi.label)}</div></div>')
    return f'<div class="kpis">{"".join(tiles)}</div>'


def lost_point_rows(items) -> list[str]:
    """Rows of lost points, LostItem or api.LostPoint alike."""
    return [
        f'<tr class="lost-point" data-component="{escape(i.component)}">'
        f'<td class="num">−{labels.number(i.points, 2)}</td><td>{escape(i.reason)}</td>'
        f'<td>{_regulation_link(i.regulation_id)}</td>'
        f'<td class="mono">{escape(i.task_id or i.item_id)}</td></tr>'
        for i in items]


def _regulation_link(regulation_id: str) -> str:
    if not regulation_id:
        return ""
    return f'<a href="/regulations/{escape(regulation_id)}">{escape(regulation_id)}</a>'


def scorecard(card: api.Scorecard, kind: int) -> str:
    score_text = _score(card.score) if card.rank else "—"
    colour = charts.score_colour(card.score if card.rank else None)
    export = link("/export/lost-points.csv", kind=KIND_NAMES[kind], subject=card.subject_id,
                  period=card.period, date=card.report_date)
    merged = ", ".join(card.merged_ids)
    return f"""
<div class="headline">
  <div class="big-score" style="border-color:{colour}">
    {score_text}<span class="unit">/100</span></div>
  <div>
    <p class="lead">Kỳ <strong>{escape(card.period)}</strong> —
    {f"hạng <strong>{card.rank}</strong>/{card.ranked_subjects}" if card.rank else "chưa xếp hạng"}.
    Đơn vị theo ngày {escape(card.report_date)}; gồm dữ liệu ghi dưới mã: {escape(merged)}.</p>
  </div>
</div>
<section class="panel"><h2>Thành phần điểm</h2>{charts.component_bars(card.components)}</section>
<section class="panel"><h2>Chỉ số</h2>{_kpi_tiles(card.kpis)}</section>
<section class="panel">
  <h2>Mất điểm ({card.lost_points_total} mục) <a class="small" href="{escape(export)}">CSV</a></h2>
  {_table(["Điểm", "Lý do", "Văn bản", "Nhiệm vụ / mục"], lost_point_rows(card.lost_points),
           "lost-points")}
</section>"""


def regulation(kpis: api.GetRegulationKpisResponse, lead_agency: str,
               entries: list[tuple[datetime, str, str]]) -> str:
    stages = [(labels.funnel_stage(s.stage), s.share, s.respondents) for s in kpis.funnel]
    coverage = [
        f"<tr><td>{escape(labels.channel(c.channel))}</td><td class='num'>{c.reached}/{c.targets}"
        f"</td><td class='num'>{labels.number(c.reach)}</td>"
        f"<td class='num'>{labels.number(c.delivery_reports)}</td></tr>" for c in kpis.coverage]
    comments = [
        f"<tr><td>{escape(p.province_name)}</td><td class='num'>{labels.number(p.comments)}</td>"
        f"<td class='num'>{labels.number(p.per_100k, 2)}</td></tr>"
        for p in kpis.comments_by_province]
    alerts = [
        f"<tr><td>{day_of(a.raised_at.ToDatetime(tzinfo=VIETNAM))}</td>"
        f"<td>{escape(a.claim)}</td><td class='num'>{labels.number(a.observed_rate)}/"
        f"{labels.number(a.baseline_rate)}</td><td class='num'>"
        f"{labels.number(a.hours_to_rebuttal, 1) if a.HasField('rebutted_at') else 'chưa'}"
        "</td></tr>" for a in kpis.alerts]
    timeline_rows = [
        f'<li class="stage-{escape(stage_of(kind))}"><time>'
        f'{escape(local(at).strftime("%Y-%m-%d %H:%M"))}</time> {escape(summary)}</li>'
        for at, kind, summary in entries]
    chart_entries = [(at, stage_of(kind), summary) for at, kind, summary in entries]
    return f"""
<p class="lead">Cơ quan chủ trì: {escape(lead_agency)} · mã văn bản {escape(kpis.regulation_id)}</p>
<section class="panel"><h2>Chỉ số</h2>{_kpi_tiles(kpis.kpis)}</section>
<section class="panel"><h2>Dòng thời gian</h2>{charts.timeline(chart_entries)}
  <ol class="timeline">{"".join(timeline_rows)}</ol></section>
<div class="panels">
<section class="panel"><h2>Phễu Dân biết → Dân thụ hưởng</h2>
  {charts.funnel(stages) if stages else '<p class="muted">Chưa có khảo sát.</p>'}</section>
<section class="panel"><h2>Bao phủ và tiếp cận theo kênh</h2>
  {_table(["Kênh", "Địa bàn đã tiếp cận", "Lượt tiếp cận", "Báo cáo phát"], coverage)}</section>
<section class="panel"><h2>Góp ý theo tỉnh</h2>
  {_table(["Tỉnh, thành phố", "Ý kiến", "Trên 100.000 dân"], comments)}</section>
<section class="panel"><h2>Thông tin sai lệch</h2>
  {_table(["Cảnh báo", "Nội dung", "Mức/giờ (nền)", "Giờ đến khi phản bác"], alerts)}</section>
</div>"""


def regulations(rows) -> str:
    items = [f'<tr><td><a href="/regulations/{escape(r["regulation_id"])}">'
             f'{escape(r["title"])}</a></td><td>{escape(r["lead_agency_id"])}</td>'
             f'<td>{day_of(r["registered_at"])}</td>'
             f'<td>{"đã rút" if r["withdrawn"] else ""}</td></tr>' for r in rows]
    return _table(["Văn bản", "Cơ quan chủ trì", "Đăng ký", ""], items, "regulations")


def overdue(rows, total: int, now: datetime) -> str:
    items = [
        f'<tr class="overdue-row"><td>{day_of(r["due_at"])}</td>'
        f'<td class="num">{(now - r["due_at"]).days}</td>'
        f'<td>{escape(r["title"])}<div class="muted">{escape(r["kind"])}</div></td>'
        f'<td>{escape(r["owner_org_id"])}</td><td>{escape(r["escalated_to_org_id"] or "")}</td>'
        f'<td>{_regulation_link(r["regulation_id"])}</td></tr>' for r in rows]
    shown = f"{len(rows)} trên {total}" if total > len(rows) else str(total)
    return (f'<p class="lead">{shown} nhiệm vụ quá hạn chưa hoàn thành, hạn sớm nhất trước. '
            f'<a href="/export/overdue.csv">CSV</a></p>'
            + _table(["Hạn", "Số ngày quá hạn", "Nhiệm vụ", "Đơn vị", "Chuyển đôn đốc",
                      "Văn bản"], items, "overdue"))


def report(rankings: list[Ranking], lost: dict[tuple[int, str], list[LostItem]],
           report_date: str) -> str:
    sections = []
    for ranking in rankings:
        rows = []
        for s in ranking.standings:
            components = "".join(
                f"<td class='num'>{labels.number(c.points, 1) if c.applicable else '—'}</td>"
                for c in s.result.components)
            rows.append(f"<tr><td class='rank'>{s.rank or '—'}</td><td>{escape(s.name)}</td>"
                        f"<td class='num'>{_score(s.result.score) if s.rank else '—'}</td>"
                        f"{components}</tr>")
        headers = ["Hạng", "Đơn vị", "Điểm",
                   *(c.component.label for c in (ranking.standings[0].result.components
                                                  if ranking.standings else ()))]
        details = "".join(
            f"<h3>{escape(s.name)}: {_score(s.result.score)} điểm</h3>"
            + _table(["Điểm", "Lý do", "Văn bản", "Nhiệm vụ / mục"],
                     lost_point_rows(lost[(ranking.kind, s.subject_id)]))
            for s in ranking.standings if lost.get((ranking.kind, s.subject_id)))
        sections.append(f'<section class="report-section"><h2>{KIND_TITLES[ranking.kind]}'
                        f"</h2>{_table(headers, rows, 'rankings')}"
                        f"<h2>Các mục mất điểm lớn nhất</h2>{details}</section>")
    period = rankings[0].period.label
    return (f'<p class="lead">Kỳ {escape(period)}; đơn vị hành chính theo ngày '
            f'{escape(report_date)}; lập lúc {datetime.now(VIETNAM).strftime("%Y-%m-%d %H:%M")}.'
            ' <button class="no-print" onclick="window.print()">In báo cáo</button></p>'
            + "".join(sections))
