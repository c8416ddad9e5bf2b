"""Inline SVG charts drawn on the server: ranked bars, the tile map of provinces, score
components, the funnel and a regulation's timeline. No script and no external resource, so
the page works offline and prints as it shows."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path

from services.evaluation import labels
from services.evaluation.periods import day_of, local

TILES_CSV = Path(__file__).parents[1] / "data" / "province-tiles.csv"
# Score bands, best first: (lowest score, colour, legend).
BANDS = ((85, "#1a9850", "từ 85"), (70, "#91cf60", "70–85"), (55, "#fee08b", "55–70"),
         (40, "#fc8d59", "40–55"), (0, "#d73027", "dưới 40"))
NO_DATA = "#d9d9d9"
STAGE_COLOURS = {"drafting": "#3366cc", "consultation": "#7b3294", "publication": "#1a9850",
                 "communication": "#e08214", "evaluation": "#d73027"}


def score_colour(score: float | None) -> str:
    if score is None:
        return NO_DATA
    return next(colour for lowest, colour, _ in BANDS if score >= lowest)


def legend() -> str:
    items = [*((colour, text) for _, colour, text in BANDS), (NO_DATA, "chưa có dữ liệu")]
    return ('<ul class="legend">' + "".join(
        f'<li><span class="swatch" style="background:{colour}"></span>{escape(text)}</li>'
        for colour, text in items) + "</ul>")


def _svg(width: int, height: int, body: str, label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{escape(label)}">'
            f"{body}</svg>")


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None
    href: str
    note: str = ""


def ranked_bars(bars: list[Bar], label: str, width: int = 620) -> str:
    """Horizontal bars on a 0–100 scale, one per subject, coloured by band."""
    row, left, right = 26, 230, 60
    scale = width - left - right
    parts = []
    for i, bar in enumerate(bars):
        y = i * row
        value = bar.value or 0.0
        name = bar.label if len(bar.label) <= 34 else bar.label[:33] + "…"
        parts.append(
            f'<a href="{escape(bar.href)}"><title>{escape(bar.label)}: '
            f'{escape(score_text(bar.value))}{escape(bar.note)}</title>'
            f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" class="bar-label">'
            f"{escape(name)}</text>"
            f'<rect x="{left}" y="{y + 4}" width="{scale * value / 100:.1f}" height="{row - 8}"'
            f' fill="{score_colour(bar.value)}" rx="3"/>'
            f'<text x="{left + scale * value / 100 + 6:.1f}" y="{y + 17}" class="bar-value">'
            f"{escape(score_text(bar.value))}</text></a>")
    return _svg(width, max(row * len(bars), row), "".join(parts), label)


def score_text(score: float | None) -> str:
    return "—" if score is None else labels.number(score, 1)


def _short(name: str) -> str:
    return name.replace("Thành phố ", "TP ")


def _tiles() -> dict[str, tuple[int, int]]:
    with TILES_CSV.open(encoding="utf-8", newline="") as file:
        return {row["province_id"]: (int(row["col"]), int(row["row"]))
                for row in csv.DictReader(file)}


def tile_map(units: list[tuple[str, str]], scores: dict[str, float | None],
             href: dict[str, str]) -> str:
    """One tile per province in force, placed roughly where it lies and coloured by score;
    units without a place on the map (the 63 of before 2025) follow in rows of six."""
    places = _tiles()
    w, h, gap = 100, 44, 5
    columns = 1 + max((col for col, _ in places.values()), default=5)
    spare_row = 1 + max((r for _, r in places.values()), default=-1)
    parts, spare = [], 0
    for unit_id, name in units:
        if unit_id in places:
            col, row_ = places[unit_id]
        else:
            col, row_ = spare % columns, spare_row + spare // columns
            spare += 1
        x, y = col * (w + gap), row_ * (h + gap)
        score = scores.get(unit_id)
        # White on the darkest bands (red, deep green), black elsewhere.
        ink = "#fff" if score is not None and (score < 40 or score >= 85) else "#222"
        parts.append(
            f'<a href="{escape(href[unit_id])}" data-province="{escape(unit_id)}">'
            f"<title>{escape(name)}: {escape(score_text(score))}</title>"
            f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" '
            f'fill="{score_colour(score)}" stroke="#fff"/>'
            f'<text x="{x + w / 2}" y="{y + 18}" text-anchor="middle" class="tile-name" '
            f'fill="{ink}">{escape(_short(name))}</text>'
            f'<text x="{x + w / 2}" y="{y + 35}" text-anchor="middle" class="tile-score" '
            f'fill="{ink}">{escape(score_text(score))}</text></a>')
    rows = spare_row + (spare + columns - 1) // columns
    return _svg(columns * (w + gap), max(rows, 1) * (h + gap), "".join(parts),
                "Bản đồ điểm các tỉnh, thành phố")


def component_bars(components) -> str:
    """Points earned against the most each component could earn."""
    row, left, scale = 30, 210, 360
    top = max((c.max_points for c in components), default=0) or 1
    parts = []
    for i, c in enumerate(components):
        y = i * row
        width = scale * c.max_points / top
        parts.append(
            f'<text x="{left - 8}" y="{y + 19}" text-anchor="end" class="bar-label">'
            f"{escape(c.label)}</text>")
        if not c.applicable:
            parts.append(f'<text x="{left}" y="{y + 19}" class="muted">không áp dụng</text>')
            continue
        parts.append(
            f'<rect x="{left}" y="{y + 5}" width="{width:.1f}" height="{row - 10}" rx="3" '
            f'fill="#eee" stroke="#bbb"/>'
            f'<rect x="{left}" y="{y + 5}" width="{width * c.ratio:.1f}" height="{row - 10}" '
            f'rx="3" fill="{score_colour(100 * c.ratio)}"/>'
            f'<text x="{left + width + 6:.1f}" y="{y + 19}" class="bar-value">'
            f"{labels.number(c.points, 1)}/{labels.number(c.max_points, 1)}</text>")
    return _svg(left + scale + 90, row * len(components), "".join(parts), "Thành phần điểm")


def funnel(stages: list[tuple[str, float, int]]) -> str:
    """(stage, share %, respondents) from know to benefit."""
    row, left, scale = 30, 130, 380
    parts = []
    for i, (stage, share, respondents) in enumerate(stages):
        y = i * row
        width = scale * share / 100
        parts.append(
            f'<text x="{left - 8}" y="{y + 19}" text-anchor="end" class="bar-label">'
            f"{escape(stage)}</text>"
            f'<rect x="{left + (scale - width) / 2:.1f}" y="{y + 4}" width="{width:.1f}" '
            f'height="{row - 8}" rx="3" fill="#3366cc" opacity="{1 - i * 0.1:.1f}"/>'
            f'<text x="{left + scale + 8}" y="{y + 19}" class="bar-value">'
            f"{labels.number(share, 1)}% của {labels.number(respondents)}</text>")
    return _svg(left + scale + 150, max(row * len(stages), row), "".join(parts),
                "Phễu Dân biết → Dân thụ hưởng")


def timeline(entries: list[tuple[datetime, str, str]], width: int = 1100) -> str:
    """(time, stage, summary) on a time axis: milestones as labelled dots, tasks as ticks."""
    if not entries:
        return ""
    start, end = entries[0][0], entries[-1][0]
    span = max((end - start).total_seconds(), 1.0)
    milestones = sum(1 for _, stage, _ in entries if stage != "communication")
    left, right, axis = 20, 20, 40 + 22 * min(milestones, 5)
    scale = width - left - right
    parts = [f'<line x1="{left}" y1="{axis}" x2="{width - right}" y2="{axis}" '
             'stroke="#888"/>',
             f'<text x="{left}" y="{axis + 20}" class="muted">{day_of(start)}</text>',
             f'<text x="{width - right}" y="{axis + 20}" text-anchor="end" class="muted">'
             f"{day_of(end)}</text>"]
    labelled = 0
    for at, stage, summary in entries:
        x = left + scale * (at - start).total_seconds() / span
        colour = STAGE_COLOURS.get(stage, "#555")
        if stage == "communication":
            parts.append(f'<line x1="{x:.1f}" y1="{axis - 6}" x2="{x:.1f}" y2="{axis + 6}" '
                         f'stroke="{colour}"><title>{escape(summary)}</title></line>')
            continue
        level = axis - 24 - 22 * (labelled % 5)
        labelled += 1
        text = summary if len(summary) <= 40 else summary[:39] + "…"
        parts.append(
            f'<line x1="{x:.1f}" y1="{level + 4}" x2="{x:.1f}" y2="{axis}" stroke="{colour}" '
            f'stroke-dasharray="2 2"/><circle cx="{x:.1f}" cy="{axis}" r="6" fill="{colour}">'
            f"<title>{escape(local(at).strftime('%Y-%m-%d %H:%M'))} {escape(summary)}</title>"
            f'</circle><text x="{x:.1f}" y="{level}" class="timeline-label" '
            f'text-anchor="{"end" if x > width / 2 else "start"}">{escape(text)}</text>')
    return _svg(width, axis + 30, "".join(parts), "Dòng thời gian")
