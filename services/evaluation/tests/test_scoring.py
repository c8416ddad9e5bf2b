"""The scorecard formula on known items: what each item adds, the score, the lost points that
explain it, ranking with ties, and periods."""

import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from policy.common.v1 import common_pb2 as common
from policy.communication.v1 import task_pb2
from policykit.reference import default as reference_data
from services.evaluation import scoring
from services.evaluation.periods import VIETNAM, parse_period
from services.evaluation.scoring import (AlertItem, CommentItem, RegulationContext, ScoreRule,
                                         SurveyItem, TaskItem)
from services.evaluation.units import AGENCY, NATIONAL, PROVINCE, Units

UNITS = Units(reference_data())
OPENED = datetime(2033, 3, 20, tzinfo=VIETNAM)
REGULATION = RegulationContext("btnmt", OPENED)


def day(d: int, hour: int = 9) -> datetime:
    return datetime(2033, 3, d, hour, tzinfo=VIETNAM)


def task(kind: str, owner: str, due: datetime, *, status=task_pb2.TASK_STATUS_CREATED,
         completed: datetime | None = None, overdue=False, targets=(NATIONAL,), unreached=None,
         goes_first=False, evidence=0, channel=common.CHANNEL_GOVERNMENT_PORTAL) -> TaskItem:
    if completed:
        status = task_pb2.TASK_STATUS_COMPLETED
    return TaskItem(task_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}/{owner}")),
                    regulation_id="reg-1", kind=kind, owner_org_id=owner, channel=channel,
                    targets=tuple(targets), unreached=tuple(
                        targets if unreached is None else unreached),
                    due_at=due, status=status, goes_first=goes_first, overdue=overdue,
                    completed_at=completed, late=bool(completed and completed > due),
                    evidence_reach=evidence)


def totals_of(items, kind: int, unit_ids: set[str]) -> tuple[dict, list]:
    shares = [s for item in items for s in item.shares(REGULATION, UNITS)
              if s.kind == kind and s.unit_id in unit_ids]
    return scoring.add_up(s.counters for s in shares), shares


ITEMS = [
    task("policy-brief", "bnnmt.communication", day(13), completed=day(10), goes_first=True,
         evidence=1000),
    task("faq", "bnnmt.communication", day(13), completed=day(15), goes_first=True),
    task("infographic", "btnmt.communication", day(15), overdue=True, goes_first=True,
         channel=common.CHANNEL_SOCIAL_MEDIA),
    task("sms-invitation", "bnnmt.communication", day(25), completed=day(24),
         targets=("tuyen-quang", "cao-bang"), unreached=("cao-bang",), channel=common.CHANNEL_SMS),
    task("cancelled", "bnnmt.communication", day(26), status=task_pb2.TASK_STATUS_CANCELLED),
    CommentItem("reg-1", "c-1", "02", "", day(21), day(23), True),
    CommentItem("reg-1", "c-2", "tuyen-quang", "", day(22), day(24), True),
    CommentItem("reg-1", "c-3", "04", "Điều 5", day(22), None, True),
    SurveyItem("reg-1", "s-1", "tuyen-quang", common.FUNNEL_STAGE_KNOW, 200, 150, day(28)),
    SurveyItem("reg-1", "s-1", "tuyen-quang", common.FUNNEL_STAGE_UNDERSTAND, 200, 100, day(28)),
]


def test_agency_kpis_and_score_on_known_items():
    totals, shares = totals_of(ITEMS, AGENCY, {"bnnmt", "btnmt"})
    assert {k: v for k, v in totals.items() if v} == {
        "tasks": 4, "tasks_on_time": 2, "tasks_late": 1, "tasks_overdue": 1,
        "goes_first_met": 2, "goes_first_missed": 1, "coverage_targets": 5,
        "coverage_reached": 2, "comments": 3, "comments_owed": 3, "comments_answered": 2,
        "answer_seconds": 2 * 2 * 86400, "survey_respondents": 400, "survey_positive": 250}
    assert sum(len(s.losses) for s in shares) == 9
    result = scoring.score(AGENCY, totals, ScoreRule())
    ratios = {c.component.name: (c.applicable, c.ratio) for c in result.components}
    assert ratios == {"timeliness": (True, 0.625), "goes_first": (True, pytest.approx(2 / 3)),
                      "coverage": (True, 0.4), "two_way": (True, pytest.approx(2 / 3)),
                      "funnel": (True, 0.625), "misinformation": (False, 0.0)}
    # Misinformation does not apply: the other 90 nominal points are scaled to 100.
    assert result.score == pytest.approx(100 / 90 * (30 * .625 + 15 * 2 / 3 + 20 * .4
                                                     + 15 * 2 / 3 + 10 * .625))
    kpis = {k.name: k.value for k in scoring.kpis(AGENCY, totals, result)}
    assert kpis["timeliness"] == 50 and kpis["coverage"] == 40
    assert kpis["hours_to_answer"] == 48


def test_lost_points_name_their_items_and_add_up_to_what_the_score_misses():
    totals, shares = totals_of(ITEMS, AGENCY, {"bnnmt", "btnmt"})
    result = scoring.score(AGENCY, totals, ScoreRule())
    lost = sorted(((result.points_lost(loss.component, loss.severity), loss.reason)
                   for share in shares for loss in share.losses), reverse=True)
    assert sum(points for points, _ in lost) == pytest.approx(100 - result.score)
    assert lost[0] == (pytest.approx(100 * 30 / 90 / 4),
                       "Nhiệm vụ quá hạn: infographic (btnmt.communication), hạn 2033-03-15")
    reasons = [reason for _, reason in lost]
    assert "Hoàn thành trễ hạn: faq (bnnmt.communication), hạn 2033-03-13, xong 2033-03-15" \
        in reasons
    assert ("Truyền thông chưa đi trước: infographic (btnmt.communication) chưa xong khi mở "
            "lấy ý kiến 2033-03-20") in reasons
    assert ("Chưa có báo cáo tiếp cận: sms-invitation (bnnmt.communication), Tin nhắn SMS tại "
            "Cao Bằng") in reasons
    assert "Ý kiến chưa được trả lời: c-3 (Điều 5), nhận 2033-03-22" in reasons
    assert "Khảo sát s-1: Dân hiểu 50,0% (100/200) tại Tuyên Quang" in reasons


def test_province_two_way_is_participation_per_capita():
    totals, _ = totals_of(ITEMS, PROVINCE, {"tuyen-quang", "02"})
    assert (totals["comments"], totals["survey_respondents"]) == (2, 400)
    result = scoring.score(PROVINCE, totals, ScoreRule(comments_per_100k_target=5),
                           population=1_707_000, national_comments=3)
    rate = 2 * 100_000 / 1_707_000
    assert result.comments_per_100k == pytest.approx(rate)
    assert result.component("two_way").ratio == pytest.approx(rate / 5)
    assert result.score == pytest.approx(100 / 25 * (15 * rate / 5 + 10 * 0.625))
    # Without a population figure the component is left out, not counted as zero.
    assert not scoring.score(PROVINCE, totals, ScoreRule(), None, 3).component(
        "two_way").applicable


def test_an_alert_rebutted_late_loses_half_and_a_missed_one_all():
    raised = day(5)
    on_time = AlertItem("a-1", "reg-1", "Tin đồn", "cao-bang", raised, "t-1",
                        raised + timedelta(hours=4), raised + timedelta(hours=3))
    late = AlertItem("a-2", "reg-1", "Tin đồn", "cao-bang", raised, "t-2",
                     raised + timedelta(hours=4), raised + timedelta(hours=6))
    missed = AlertItem("a-3", "reg-1", "Tin đồn", "", raised, "t-3",
                       raised + timedelta(hours=4), missed=True)
    totals, _ = totals_of([on_time, late, missed], AGENCY, {"btnmt"})
    result = scoring.score(AGENCY, totals, ScoreRule())
    assert result.component("misinformation").ratio == pytest.approx(1.5 / 3)
    assert result.score == pytest.approx(50)
    assert totals["rebuttal_seconds"] == 9 * 3600
    provinces, _ = totals_of([on_time, late, missed], PROVINCE, {"cao-bang"})
    assert provinces["alerts"] == 2 and not scoring.score(PROVINCE, provinces, ScoreRule()).scored


def test_ranks_share_places_on_equal_scores():
    assert scoring.ranks({"bct": 100.0, "byt": 100.004, "bxd": 0.0, "btc": 75.0, "bqp": None}) \
        == {"bct": 1, "byt": 1, "btc": 3, "bxd": 4, "bqp": 0}


def test_periods_are_months_quarters_and_years_in_vietnam_time():
    quarter = parse_period("2033-Q1")
    assert [m.month for m in quarter.months] == [1, 2, 3]
    assert quarter.starts_at == datetime(2033, 1, 1, tzinfo=VIETNAM)
    assert quarter.last_day == date(2033, 3, 31)
    assert len(parse_period("2033").months) == 12
    # 2033-03-31 20:00 UTC is already April in Vietnam.
    late_march = datetime(2033, 3, 31, 20, tzinfo=timezone.utc)
    assert scoring.Share(AGENCY, "bct", late_march, {}).month.month == 4
    for bad in ("2033-13", "2033-Q5", "33-01", "2033/01", ""):
        with pytest.raises(ValueError):
            parse_period(bad)
