"""The scorecard formula: what each scored item adds to its agency's or province's counters,
and how a subject's counters for a period become a score out of 100 with every lost point
traceable to an item.

Items and who they count for (in the month, Vietnam time, they are due/received/raised):
- a communication task counts for the unit of its owner (`bnnmt.communication` → bnnmt,
  `vtv` → vtv, `tuyen-quang.commune-officers` → tuyen-quang), in the month it is due;
- a consultation comment for the regulation's lead agency and for the commenter's province;
- a survey result for the lead agency and for the surveyed province;
- a misinformation alert for the lead agency (and, counted but not scored, its province).

Components, nominal points out of 100, and the ratio each earns:
- timeliness 30: (on time + ½ late) / tasks completed or overdue;
- goes_first 15: goes-first tasks (created and due on or before the planned consultation
  start) completed before the consultation opened / those completed or caught out by it;
- coverage 20: targets (task × targeted region) reached by a delivery report on the task's
  channel, or by completion evidence with a reach, / targets of tasks completed or overdue;
- two_way 15: agencies — comments answered / comments owed an answer (answered, or their
  consultation closed); provinces — min(1, comments per 100,000 inhabitants / target),
  counted when the province's population is known and anyone commented in the period;
- funnel 10: positive answers / respondents over every stage of know → benefit;
- misinformation 10 (agencies): (alerts rebutted by their task's due time + ½ rebutted late)
  / alerts rebutted or whose rebuttal task went overdue.

A component with no item in the period does not apply; the weights of those that do are
scaled to 100, so subjects are compared on what they were asked to do. Each item loses
`max_points × severity / items` of its component (severity 1 for a missed item, ½ for a late
one, the number of unreached regions for coverage, the negative answers for a survey), so the
lost points add up to 100 − score exactly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Iterable, Mapping

from policy.communication.v1 import task_pb2
from policy.evaluation.v1 import evaluation_service_pb2 as api

from services.evaluation import labels
from services.evaluation.periods import day_of, month_of
from services.evaluation.units import AGENCY, NATIONAL, PROVINCE, Units, unit_of

COUNTERS = (
    "tasks", "tasks_on_time", "tasks_late", "tasks_overdue",
    "goes_first_met", "goes_first_missed", "coverage_targets", "coverage_reached",
    "comments", "comments_owed", "comments_answered", "answer_seconds",
    "survey_respondents", "survey_positive",
    "alerts", "alerts_on_time", "alerts_late", "alerts_missed", "alerts_rebutted",
    "rebuttal_seconds", "lost_items",
)
LATE = 0.5


@dataclass(frozen=True)
class Component:
    name: str
    label: str
    weight: float


COMPONENTS = (
    Component("timeliness", "Đúng hạn", 30),
    Component("goes_first", "Truyền thông đi trước", 15),
    Component("coverage", "Bao phủ địa bàn, kênh", 20),
    Component("two_way", "Tương tác hai chiều", 15),
    Component("funnel", "Dân biết → Dân thụ hưởng", 10),
    Component("misinformation", "Xử lý thông tin sai lệch", 10),
)
COMPONENT_NAMES = tuple(c.name for c in COMPONENTS)


@dataclass(frozen=True)
class Loss:
    component: str
    severity: float
    reason: str


@dataclass(frozen=True)
class Share:
    """What one item adds to one subject's counters in one month, and what it costs."""

    kind: int
    unit_id: str
    at: datetime
    counters: Mapping[str, int]
    losses: tuple[Loss, ...] = ()

    @property
    def month(self) -> date:
        return month_of(self.at)


@dataclass(frozen=True)
class ItemRef:
    """An item as its lost points name it."""

    key: str
    regulation_id: str
    owner_org_id: str = ""
    task_id: str | None = None
    item_id: str = ""


@dataclass(frozen=True)
class RegulationContext:
    lead_agency_id: str
    consultation_opened_at: datetime | None


def _province_share(units: Units, region_id: str, at: datetime, counters: dict,
                    losses: tuple[Loss, ...] = ()) -> list[Share]:
    """A share for the region's province, none for a national or empty region."""
    if not region_id or region_id == NATIONAL or units.kind_of(region_id) != PROVINCE:
        return []
    return [Share(PROVINCE, region_id, at, counters, losses)]


@dataclass(frozen=True)
class TaskItem:
    task_id: str
    regulation_id: str
    kind: str
    owner_org_id: str
    channel: int
    # Targeted regions as the units in force today, or (NATIONAL,).
    targets: tuple[str, ...]
    unreached: tuple[str, ...]
    due_at: datetime
    status: int
    goes_first: bool
    # The engine found it overdue; it stays so for scoring unless completed.
    overdue: bool = False
    completed_at: datetime | None = None
    late: bool = False
    evidence_reach: int = 0

    def ref(self) -> ItemRef:
        return ItemRef(f"task:{self.task_id}", self.regulation_id, self.owner_org_id,
                       self.task_id)

    def shares(self, regulation: RegulationContext, units: Units) -> list[Share]:
        if self.status == task_pb2.TASK_STATUS_CANCELLED:
            return []
        what = f"{self.kind} ({self.owner_org_id})"
        counters, losses = {"tasks": 1}, []
        completed = self.status == task_pb2.TASK_STATUS_COMPLETED
        overdue = self.overdue and not completed
        if completed and self.late:
            counters["tasks_late"] = 1
            losses.append(Loss("timeliness", LATE, f"Hoàn thành trễ hạn: {what}, hạn "
                               f"{day_of(self.due_at)}, xong {day_of(self.completed_at)}"))
        elif completed:
            counters["tasks_on_time"] = 1
        elif overdue:
            counters["tasks_overdue"] = 1
            losses.append(Loss("timeliness", 1, f"Nhiệm vụ quá hạn: {what}, hạn "
                               f"{day_of(self.due_at)}"))
        opened = regulation.consultation_opened_at
        if self.goes_first:
            if completed and (opened is None or self.completed_at <= opened):
                counters["goes_first_met"] = 1
            elif opened is not None:
                counters["goes_first_missed"] = 1
                losses.append(Loss("goes_first", 1, f"Truyền thông chưa đi trước: {what} "
                                   f"chưa xong khi mở lấy ý kiến {day_of(opened)}"))
        if completed or overdue:
            unreached = () if self.evidence_reach > 0 else self.unreached
            counters["coverage_targets"] = len(self.targets)
            counters["coverage_reached"] = len(self.targets) - len(unreached)
            if unreached:
                regions = ", ".join(units.region_name(r) for r in unreached)
                losses.append(Loss("coverage", len(unreached), f"Chưa có báo cáo tiếp cận: "
                                   f"{what}, {labels.channel(self.channel)} tại {regions}"))
        kind = units.kind_of(unit_of(self.owner_org_id))
        return [Share(kind, unit_of(self.owner_org_id), self.due_at, counters, tuple(losses))]


@dataclass(frozen=True)
class CommentItem:
    regulation_id: str
    comment_id: str
    province_code: str
    article_ref: str
    received_at: datetime
    answered_at: datetime | None
    # The consultation closed, so the comment is owed an answer.
    owed: bool

    def ref(self) -> ItemRef:
        return ItemRef(f"comment:{self.regulation_id}/{self.comment_id}", self.regulation_id,
                       item_id=self.comment_id)

    def shares(self, regulation: RegulationContext, units: Units) -> list[Share]:
        counters, losses = {"comments": 1}, ()
        if self.answered_at is not None:
            counters.update(comments_owed=1, comments_answered=1, answer_seconds=round(
                (self.answered_at - self.received_at).total_seconds()))
        elif self.owed:
            counters["comments_owed"] = 1
            article = f" ({self.article_ref})" if self.article_ref else ""
            losses = (Loss("two_way", 1, f"Ý kiến chưa được trả lời: {self.comment_id}"
                           f"{article}, nhận {day_of(self.received_at)}"),)
        agency = Share(AGENCY, regulation.lead_agency_id, self.received_at, counters, losses)
        return [agency, *_province_share(units, self.province_code, self.received_at,
                                         {"comments": 1})]


@dataclass(frozen=True)
class SurveyItem:
    regulation_id: str
    survey_id: str
    region_id: str
    stage: int
    respondents: int
    positive: int
    recorded_at: datetime

    def ref(self) -> ItemRef:
        key = f"{self.survey_id}/{self.region_id}/{self.stage}"
        return ItemRef(f"survey:{self.regulation_id}/{key}", self.regulation_id, item_id=key)

    def shares(self, regulation: RegulationContext, units: Units) -> list[Share]:
        counters = {"survey_respondents": self.respondents, "survey_positive": self.positive}
        losses = ()
        if self.respondents > self.positive:
            share = 100 * self.positive / self.respondents
            losses = (Loss("funnel", self.respondents - self.positive,
                           f"Khảo sát {self.survey_id}: {labels.funnel_stage(self.stage)} "
                           f"{labels.number(share, 1)}% ({self.positive}/{self.respondents}) "
                           f"tại {units.region_name(units.current_region(self.region_id))}"),)
        agency = Share(AGENCY, regulation.lead_agency_id, self.recorded_at, counters, losses)
        return [agency, *_province_share(units, self.region_id, self.recorded_at, counters,
                                         losses)]


@dataclass(frozen=True)
class AlertItem:
    alert_id: str
    regulation_id: str
    claim: str
    region_id: str
    raised_at: datetime
    # The first task the alert triggered: its due time and when it was completed.
    rebuttal_task_id: str | None = None
    rebuttal_due_at: datetime | None = None
    rebutted_at: datetime | None = None
    # The rebuttal task went overdue before anyone completed it.
    missed: bool = False

    def ref(self) -> ItemRef:
        return ItemRef(f"alert:{self.alert_id}", self.regulation_id,
                       task_id=self.rebuttal_task_id, item_id=self.alert_id)

    def shares(self, regulation: RegulationContext, units: Units) -> list[Share]:
        counters, losses = {"alerts": 1}, ()
        raised = day_of(self.raised_at)
        if self.rebutted_at is not None:
            counters.update(alerts_rebutted=1, rebuttal_seconds=round(
                (self.rebutted_at - self.raised_at).total_seconds()))
            if self.rebuttal_due_at is None or self.rebutted_at <= self.rebuttal_due_at:
                counters["alerts_on_time"] = 1
            else:
                counters["alerts_late"] = 1
                losses = (Loss("misinformation", LATE, f"Phản bác muộn thông tin sai lệch "
                               f"«{self.claim}»: cảnh báo {raised}, phản bác "
                               f"{day_of(self.rebutted_at)}"),)
        elif self.missed:
            counters["alerts_missed"] = 1
            losses = (Loss("misinformation", 1, f"Chưa phản bác thông tin sai lệch "
                           f"«{self.claim}» (cảnh báo {raised})"),)
        agency = Share(AGENCY, regulation.lead_agency_id, self.raised_at, counters, losses)
        return [agency, *_province_share(units, self.region_id, self.raised_at, {"alerts": 1})]


@dataclass(frozen=True)
class ScoreRule:
    comments_per_100k_target: float = 5.0


@dataclass(frozen=True)
class ComponentResult:
    component: Component
    applicable: bool
    items: int
    ratio: float
    max_points: float = 0.0
    points: float = 0.0


@dataclass(frozen=True)
class ScoreResult:
    components: tuple[ComponentResult, ...]
    score: float
    scored: bool
    comments_per_100k: float | None = None

    def component(self, name: str) -> ComponentResult:
        return next(c for c in self.components if c.component.name == name)

    def points_lost(self, component: str, severity: float) -> float:
        """The points one item of the component loses with the given severity."""
        result = self.component(component)
        if not result.applicable or not result.items:
            return 0.0
        return result.max_points * severity / result.items

    def shortfall(self, component: str) -> float:
        result = self.component(component)
        return result.max_points - result.points


def per_100k(comments: int, population: int | None) -> float | None:
    return None if not population else comments * 100_000 / population


def _measures(kind: int, t: Mapping[str, int]) -> dict[str, tuple[int, float]]:
    """(items, achieved) per component; achieved / items is the ratio."""
    measures = {
        "timeliness": (t["tasks_on_time"] + t["tasks_late"] + t["tasks_overdue"],
                       t["tasks_on_time"] + LATE * t["tasks_late"]),
        "goes_first": (t["goes_first_met"] + t["goes_first_missed"], t["goes_first_met"]),
        "coverage": (t["coverage_targets"], t["coverage_reached"]),
        "two_way": (t["comments_owed"], t["comments_answered"]),
        "funnel": (t["survey_respondents"], t["survey_positive"]),
        "misinformation": (t["alerts_on_time"] + t["alerts_late"] + t["alerts_missed"],
                           t["alerts_on_time"] + LATE * t["alerts_late"]),
    }
    if kind == PROVINCE:
        measures["misinformation"] = (0, 0)  # rebuttals are the lead agency's to give
    return measures


def score(kind: int, totals: Mapping[str, int], rule: ScoreRule, population: int | None = None,
          national_comments: int = 0) -> ScoreResult:
    """Scores one subject's counters for a period; `national_comments` (all provinces) tells
    whether anyone could comment at all."""
    measured = {}
    for name, (items, achieved) in _measures(kind, totals).items():
        measured[name] = (items > 0, items, achieved / items if items else 0.0)
    rate = per_100k(totals["comments"], population)
    if kind == PROVINCE:
        measured["two_way"] = (rate is not None and national_comments > 0, totals["comments"],
                               min(1.0, (rate or 0.0) / rule.comments_per_100k_target))
    applicable_weight = sum(c.weight for c in COMPONENTS if measured[c.name][0])
    results = []
    for component in COMPONENTS:
        applicable, items, ratio = measured[component.name]
        maximum = 100 * component.weight / applicable_weight if applicable else 0.0
        results.append(ComponentResult(component, applicable, items, ratio, maximum,
                                       maximum * ratio))
    return ScoreResult(tuple(results), sum(r.points for r in results), applicable_weight > 0,
                       rate)


def ranks(scores: Mapping[str, float | None]) -> dict[str, int]:
    """Competition ranking ("1, 1, 3") by score rounded to hundredths; a subject without a
    score gets 0."""
    ordered = sorted(((s, round(v, 2)) for s, v in scores.items() if v is not None),
                     key=lambda pair: (-pair[1], pair[0]))
    result = {subject: 0 for subject in scores}
    previous, rank = None, 0
    for position, (subject, value) in enumerate(ordered, start=1):
        if value != previous:
            rank, previous = position, value
        result[subject] = rank
    return result


def add_up(rows: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Sums counters; a row may leave out the ones it does not touch."""
    totals = dict.fromkeys(COUNTERS, 0)
    for row in rows:
        for name in COUNTERS:
            totals[name] += row.get(name, 0)
    return totals


def _share(part: float, whole: float) -> float:
    return 100 * part / whole if whole else 0.0


def kpis(kind: int, totals: Mapping[str, int], result: ScoreResult) -> list[api.Kpi]:
    """The measures behind a score, as shown beside it."""
    t = totals
    settled = t["tasks_on_time"] + t["tasks_late"] + t["tasks_overdue"]
    found = [
        ("score", "Điểm", result.score, "điểm"),
        ("tasks", "Nhiệm vụ", t["tasks"], "nhiệm vụ"),
        ("tasks_on_time", "Hoàn thành đúng hạn", t["tasks_on_time"], "nhiệm vụ"),
        ("tasks_late", "Hoàn thành trễ hạn", t["tasks_late"], "nhiệm vụ"),
        ("tasks_overdue", "Quá hạn chưa hoàn thành", t["tasks_overdue"], "nhiệm vụ"),
        ("timeliness", "Tỷ lệ nhiệm vụ đúng hạn", _share(t["tasks_on_time"], settled), "%"),
        ("goes_first", "Truyền thông đi trước",
         _share(t["goes_first_met"], t["goes_first_met"] + t["goes_first_missed"]), "%"),
        ("coverage", "Địa bàn mục tiêu được tiếp cận",
         _share(t["coverage_reached"], t["coverage_targets"]), "%"),
        ("comments", "Ý kiến góp ý", t["comments"], "ý kiến"),
    ]
    if kind == AGENCY:
        found += [
            ("comments_answered_share", "Ý kiến được trả lời",
             _share(t["comments_answered"], t["comments_owed"]), "%"),
            ("hours_to_answer", "Thời gian trả lời trung bình",
             t["answer_seconds"] / 3600 / t["comments_answered"] if t["comments_answered"]
             else 0.0, "giờ"),
        ]
    else:
        found.append(("comments_per_100k", "Ý kiến trên 100.000 dân",
                      result.comments_per_100k or 0.0, "ý kiến/100.000 dân"))
    found += [
        ("funnel_positive_share", "Khảo sát: trả lời tích cực",
         _share(t["survey_positive"], t["survey_respondents"]), "%"),
        ("alerts", "Cảnh báo thông tin sai lệch", t["alerts"], "cảnh báo"),
    ]
    if kind == AGENCY:
        found.append(("hours_to_rebuttal", "Thời gian phản bác trung bình",
                      t["rebuttal_seconds"] / 3600 / t["alerts_rebutted"]
                      if t["alerts_rebutted"] else 0.0, "giờ"))
    return [api.Kpi(name=n, label=label, value=float(v), unit=u) for n, label, v, u in found]
