"""CSV exports of rankings, lost points and the overdue list: UTF-8 with a byte-order mark so
that spreadsheet programs read the Vietnamese correctly, numbers with a decimal point."""

from __future__ import annotations

import csv
import io

from services.evaluation.periods import day_of
from services.evaluation.scorecards import LostItem, Ranking
from services.evaluation.units import KIND_NAMES

BOM = "\ufeff"


def to_csv(rows: list[list]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def rankings(ranking: Ranking) -> str:
    components = [c.component.name for c in
                  (ranking.standings[0].result.components if ranking.standings else ())]
    rows = [["kind", "period", "report_date", "rank", "subject_id", "subject_name", "score",
             *(f"{name}_points" for name in components), "tasks", "tasks_overdue",
             "lost_items", "merged_ids"]]
    for s in ranking.standings:
        rows.append([KIND_NAMES[ranking.kind], ranking.period.label,
                     ranking.report_date.isoformat(), s.rank or "", s.subject_id, s.name,
                     f"{s.result.score:.2f}" if s.rank else "",
                     *(f"{c.points:.2f}" if c.applicable else "" for c in s.result.components),
                     s.totals["tasks"], s.totals["tasks_overdue"], s.totals["lost_items"],
                     ";".join(s.merged_ids)])
    return BOM + to_csv(rows)


LOST_POINT_HEADER = ["subject_id", "period", "component", "points", "date", "regulation_id",
                     "task_id", "item_id", "owner_org_id", "reason"]


def lost_point_lines(subject_id: str, period: str, items: list[LostItem]) -> str:
    return to_csv([[subject_id, period, i.component, f"{i.points:.4f}", day_of(i.at),
                  i.regulation_id, i.task_id, i.item_id, i.owner_org_id, i.reason]
                 for i in items])


def overdue(rows) -> str:
    return BOM + to_csv([["due", "task_id", "kind", "title", "owner_org_id",
                        "escalated_to_org_id", "regulation_id", "regulation_title"]] + [
        [day_of(r["due_at"]), str(r["task_id"]), r["kind"], r["title"], r["owner_org_id"],
         r["escalated_to_org_id"] or "", r["regulation_id"], r["regulation_title"]]
        for r in rows])
