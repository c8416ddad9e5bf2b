"""The evaluation service as a running process against real Kafka and PostgreSQL: lifecycle,
task, consultation, survey and delivery events in; KPIs, ranked scorecards with traceable lost
points, and ScorecardUpdated events out. Each test scores a period no other test touches."""

from dataclasses import dataclass
from datetime import datetime

import grpc
import pytest

from policy.common.v1 import common_pb2 as common
from policy.communication.v1 import events_pb2 as tasks
from policy.consultation.v1 import events_pb2 as consultation
from policy.evaluation.v1 import evaluation_service_pb2 as api
from policy.evaluation.v1 import events_pb2 as listening
from policykit.envelope import from_record
from policykit.errors import field_violations
from services.evaluation.periods import VIETNAM
from services.evaluation.tests.helpers import (delivery, draft, kpi, new_regulation_id,
                                               regulation_kpis, scorecard, scorecard_when, stamp,
                                               task_completed, task_created, task_overdue)
from tests.support import eventually, read_topic

AGENCY, PROVINCE = api.SCORECARD_KIND_AGENCY, api.SCORECARD_KIND_PROVINCE
TUYEN_QUANG_POPULATION = 1_707_000  # services/evaluation/data/population-2025.csv


def march(d: int, hour: int = 9) -> datetime:
    return datetime(2033, 3, d, hour, tzinfo=VIETNAM)


@dataclass
class March:
    regulation_id: str
    infographic: tasks.TaskCreated


@pytest.fixture(scope="module")
def in_march(evaluation, produce) -> March:
    """A regulation drafted by btnmt (merged into bnnmt in 2025) with tasks, deliveries,
    comments and surveys in March 2033 — the known inputs of the scorecard tests."""
    reg = new_regulation_id("thang-ba")
    produce.send(draft(reg, planned_start=march(20, 0)), at=datetime(2033, 2, 1, tzinfo=VIETNAM))
    sms, speaker = common.CHANNEL_SMS, common.CHANNEL_COMMUNE_LOUDSPEAKER
    brief = task_created(reg, "policy-brief", "bnnmt.communication", march(13))
    faq = task_created(reg, "faq", "bnnmt.communication", march(13))
    infographic = task_created(reg, "infographic", "btnmt.communication", march(15),
                               channel=common.CHANNEL_SOCIAL_MEDIA)
    invitation = task_created(reg, "sms-invitation", "bnnmt.communication", march(25),
                              channel=sms, regions=("tuyen-quang", "cao-bang"))
    dropped = task_created(reg, "social-posts", "bnnmt.communication", march(26))
    script = task_created(reg, "loudspeaker-script", "tuyen-quang.commune-officers", march(25),
                          channel=speaker, regions=("tuyen-quang",))
    old_code = task_created(reg, "loudspeaker-script", "02.commune-officers", march(25),
                            channel=speaker, regions=("02",))
    for created in (brief, faq, infographic, invitation, dropped, script, old_code):
        produce.send(created, at=datetime(2033, 2, 1, tzinfo=VIETNAM))
    produce.send(delivery(reg, "02", sms, 500, march(24)))
    produce.send(delivery(reg, "08", speaker, 300, march(24)))
    produce.send(task_completed(brief, march(10), reach=1000))
    produce.send(task_completed(faq, march(15)))
    produce.send(task_overdue(infographic), at=march(16))
    produce.send(task_completed(invitation, march(24)))
    produce.send(task_completed(script, march(24)))
    produce.send(task_overdue(old_code), at=march(26))
    produce.send(tasks.TaskCancelled(regulation_id=reg, task_id=dropped.task.task_id,
                                     reason="Trùng nhiệm vụ"))
    produce.send(stamp(consultation.ConsultationOpened(regulation_id=reg, consultation_id="c1"),
                       opens_at=march(20, 0), closes_at=march(30, 0)), at=march(20, 0))
    for comment, province, at in (("y-1", "02", march(21)), ("y-2", "tuyen-quang", march(22)),
                                  ("y-3", "04", march(22))):
        produce.send(stamp(consultation.CommentReceived(
            regulation_id=reg, consultation_id="c1", comment_id=comment, province_code=province,
            stakeholder_type=common.STAKEHOLDER_TYPE_CITIZEN,
            article_ref="Điều 5" if comment == "y-3" else ""), received_at=at), at=at)
    for comment, at in (("y-1", march(23)), ("y-2", march(24))):
        produce.send(stamp(consultation.CommentAnswered(
            regulation_id=reg, consultation_id="c1", comment_ids=[comment],
            outcome=consultation.ANSWER_OUTCOME_ACCEPTED, explanation="Đã tiếp thu",
            answered_by_agency_id="bnnmt"), answered_at=at), at=at)
    produce.send(stamp(consultation.ConsultationClosed(regulation_id=reg, consultation_id="c1",
                                                       total_comments=3),
                       closed_at=march(30, 0)), at=march(30, 0))
    for stage, positive in ((common.FUNNEL_STAGE_KNOW, 150),
                            (common.FUNNEL_STAGE_UNDERSTAND, 100)):
        produce.send(stamp(listening.SurveyResultRecorded(
            regulation_id=reg, survey_id="s-1", region_id="tuyen-quang", stage=stage,
            respondents=200, positive=positive), recorded_at=march(28)))
    return March(reg, infographic)


# By hand (see test_scoring.py for the same items): timeliness (2 + ½)/4, goes-first 2/3,
# coverage 2/5, answered 2/3, funnel 250/400; misinformation does not apply.
BNNMT_MARCH = 100 / 90 * (30 * 0.625 + 15 * 2 / 3 + 20 * 0.4 + 15 * 2 / 3 + 10 * 0.625)
# Two tasks, one overdue; both targets reached; 2 comments per capita against 5 per 100,000.
TUYEN_QUANG_MARCH = 100 / 75 * (30 * 0.5 + 20 * 1 + 15 * (2e5 / TUYEN_QUANG_POPULATION / 5)
                                + 10 * 0.625)


def test_agency_scorecard_from_known_inputs(stub, in_march):
    # The cancelled task leaves the score as it is: wait for its cancellation too, which the
    # consultation and survey events that complete the score can overtake (other topics).
    card = scorecard_when(stub, AGENCY, "bnnmt", "2033-03",
                          lambda c: c.score == pytest.approx(BNNMT_MARCH, abs=0.01)
                          and kpi(c, "tasks") == 4)
    assert (card.subject_name, card.rank) == ("Bộ Nông nghiệp và Môi trường", 1)
    assert set(card.merged_ids) == {"bnnmt", "btnmt"}
    assert {k: kpi(card, k) for k in ("tasks", "tasks_on_time", "tasks_late", "tasks_overdue",
                                      "comments", "hours_to_answer")} == {
        "tasks": 4, "tasks_on_time": 2, "tasks_late": 1, "tasks_overdue": 1, "comments": 3,
        "hours_to_answer": pytest.approx(48)}
    assert kpi(card, "reach") == 800
    components = {c.name: (c.applicable, round(c.ratio, 4)) for c in card.components}
    assert components["coverage"] == (True, 0.4)
    assert components["misinformation"] == (False, 0)


def test_each_lost_point_is_traceable_to_its_item(stub, in_march):
    card = scorecard_when(stub, AGENCY, "bnnmt", "2033-03", lambda c: c.lost_points_total == 9)
    assert sum(p.points for p in card.lost_points) == pytest.approx(100 - card.score, abs=0.01)
    top = card.lost_points[0]
    assert (top.reason, top.task_id, top.owner_org_id, top.component, top.regulation_id) == (
        "Nhiệm vụ quá hạn: infographic (btnmt.communication), hạn 2033-03-15",
        in_march.infographic.task.task_id, "btnmt.communication", "timeliness",
        in_march.regulation_id)
    assert top.points == pytest.approx(100 * 30 / 90 / 4, abs=0.01)
    assert [p.points for p in card.lost_points] == sorted(
        (p.points for p in card.lost_points), reverse=True)
    assert {p.item_id for p in card.lost_points if p.component == "two_way"} == {"y-3"}
    limited = scorecard(stub, AGENCY, "bnnmt", "2033-03", limit=2)
    assert (len(limited.lost_points), limited.lost_points_total) == (2, 9)


def test_province_scorecard_counts_2008_codes_for_the_unit_in_force(stub, in_march):
    card = scorecard_when(stub, PROVINCE, "tuyen-quang", "2033-03",
                          lambda c: c.score == pytest.approx(TUYEN_QUANG_MARCH, abs=0.01))
    assert set(card.merged_ids) == {"tuyen-quang", "02"}
    assert kpi(card, "reach") == 800  # SMS to "02" and loudspeakers to "08" count here
    assert kpi(card, "comments_per_100k") == pytest.approx(2e5 / TUYEN_QUANG_POPULATION)
    overdue = [p for p in card.lost_points if p.component == "timeliness"]
    assert [p.owner_org_id for p in overdue] == ["02.commune-officers"]
    [participation] = [p for p in card.lost_points if p.component == "two_way"]
    assert participation.reason == "Tham gia góp ý thấp: 0,1 ý kiến/100.000 dân (mục tiêu 5,0)"
    assert sum(p.points for p in card.lost_points) == pytest.approx(100 - card.score, abs=0.01)
    # A 2008 code asked for maps to its unit in force on the report date.
    assert scorecard(stub, PROVINCE, "02", "2033-03").subject_id == "tuyen-quang"


def test_regulation_kpis(stub, in_march):
    def complete(response):
        return (response and response.funnel and len(response.coverage) == 4
                and sum(c.reach for c in response.coverage) == 800 and response)

    found = eventually(lambda: complete(regulation_kpis(stub, in_march.regulation_id)),
                       what="the regulation's KPIs")
    coverage = {c.channel: (c.targets, c.reached, c.reach) for c in found.coverage}
    assert coverage[common.CHANNEL_SMS] == (2, 1, 500)
    assert coverage[common.CHANNEL_COMMUNE_LOUDSPEAKER] == (2, 2, 300)
    assert [(f.stage, f.share) for f in found.funnel] == [
        (common.FUNNEL_STAGE_KNOW, 75.0), (common.FUNNEL_STAGE_UNDERSTAND, 50.0)]
    assert {(p.province_id, p.comments) for p in found.comments_by_province} == {
        ("tuyen-quang", 2), ("cao-bang", 1)}
    assert {(r.region_id, r.channel, r.reach) for r in found.reach} == {
        ("tuyen-quang", common.CHANNEL_SMS, 500),
        ("tuyen-quang", common.CHANNEL_COMMUNE_LOUDSPEAKER, 300)}
    values = {k.name: k.value for k in found.kpis}
    assert values["goes_first"] == pytest.approx(200 / 3)
    assert values["goes_first_lead_days"] == pytest.approx(10 - 9 / 24)  # brief done 03-10 09:00
    assert values["comments_answered_share"] == pytest.approx(200 / 3)


def test_rankings_share_places_on_equal_scores(stub, evaluation, produce):
    reg = new_regulation_id("thang-nam")
    produce.send(draft(reg, lead="bct"), at=datetime(2033, 4, 1, tzinfo=VIETNAM))
    due = datetime(2033, 5, 10, tzinfo=VIETNAM)
    for owner, outcome in (("bct.communication", "on time"), ("byt.communication", "on time"),
                           ("bxd.communication", "overdue"), ("vtv", "late")):
        created = task_created(reg, "press-release", owner, due)
        produce.send(created)
        if outcome == "overdue":
            produce.send(task_overdue(created))
        else:
            produce.send(task_completed(created, due.replace(day=9 if outcome == "on time"
                                                             else 12), reach=100))

    def ranked(response):
        return {c.subject_id: (c.rank, round(c.score, 2)) for c in response.scorecards}

    ranks = eventually(lambda: (r := ranked(stub.ListRankings(api.ListRankingsRequest(
        kind=AGENCY, period="2033-05"), timeout=10))) and len(r) == 4 and r["vtv"][1] == 70 and r,
        what="four ranked agencies")
    assert ranks == {"bct": (1, 100), "byt": (1, 100), "vtv": (3, 70), "bxd": (4, 0)}
    cards = stub.ListRankings(api.ListRankingsRequest(kind=AGENCY, period="2033-05"),
                              timeout=10).scorecards
    # The overdue task costs timeliness and coverage; the late one, timeliness.
    assert {c.subject_id: c.lost_points_total for c in cards} == {
        "bct": 0, "byt": 0, "vtv": 1, "bxd": 2}


def test_scorecards_across_the_2025_merger(stub, evaluation, produce):
    reg = new_regulation_id("sap-nhap")
    produce.send(draft(reg, lead="btnmt", provinces=("02", "08")),
                 at=datetime(2025, 1, 5, tzinfo=VIETNAM))
    plan = [("btnmt.communication", (), datetime(2025, 2, 10), True),
            ("bnnmt.communication", (), datetime(2025, 9, 10), False),
            ("02.commune-officers", ("02",), datetime(2025, 5, 10), True),
            ("08.information-department", ("08",), datetime(2025, 5, 12), False),
            ("tuyen-quang.commune-officers", ("tuyen-quang",), datetime(2025, 9, 12), True)]
    for owner, regions, due, done in plan:
        due = due.replace(tzinfo=VIETNAM)
        created = task_created(reg, "plan", owner, due, regions=regions or ("national",))
        produce.send(created)
        produce.send(task_completed(created, due.replace(day=1), reach=10) if done
                     else task_overdue(created))

    def settled(count: int):
        return lambda card: kpi(card, "tasks_on_time") + kpi(card, "tasks_overdue") == count

    after = scorecard_when(stub, PROVINCE, "tuyen-quang", "2025", settled(3),
                           report_date="2025-12-31")
    assert set(after.merged_ids) == {"02", "08", "tuyen-quang"}
    assert after.score == pytest.approx(100 * (30 * 2 / 3 + 20 * 2 / 3) / 50, abs=0.01)
    agency = scorecard_when(stub, AGENCY, "btnmt", "2025", settled(2), report_date="2025-12-31")
    assert (agency.subject_id, set(agency.merged_ids), agency.score) == (
        "bnnmt", {"btnmt", "bnnmt"}, 50)

    # Reported before the merger, the 2008 units stand on their own.
    before = stub.ListRankings(api.ListRankingsRequest(kind=PROVINCE, period="2025-05",
                                                       report_date="2025-06-15"), timeout=10)
    assert [(c.subject_id, c.subject_name, c.rank, c.score) for c in before.scorecards] == [
        ("02", "Hà Giang", 1, 100), ("08", "Tuyên Quang", 2, 0)]
    february = scorecard(stub, AGENCY, "btnmt", "2025-02", report_date="2025-02-15")
    assert (february.subject_id, february.subject_name, february.score) == (
        "btnmt", "Bộ Tài nguyên và Môi trường", 100)


def test_invalid_queries_name_each_field(stub, evaluation):
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetScorecard(api.GetScorecardRequest(period="2033-13", report_date="31/12/2033",
                                                  lost_points_limit=9999), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {f for f, _ in field_violations(caught.value)} == {
        "kind", "period", "report_date", "subject_id", "lost_points_limit"}
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetScorecard(api.GetScorecardRequest(kind=AGENCY, subject_id="tuyen-quang",
                                                  period="2033-Q1"), timeout=10)
    assert field_violations(caught.value) == [
        ("subject_id", "'tuyen-quang' is not an agency of the reference data")]
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListRankings(api.ListRankingsRequest(kind=PROVINCE, period="Q1-2033"), timeout=10)
    assert [f for f, _ in field_violations(caught.value)] == ["period"]
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetRegulationKpis(api.GetRegulationKpisRequest(regulation_id="khong-co"),
                               timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_changed_scorecards_are_announced(stub, in_march, platform_topics):
    card = scorecard_when(stub, AGENCY, "bnnmt", "2033-03",
                          lambda c: c.score == pytest.approx(BNNMT_MARCH, abs=0.01))

    def announced(records):
        events = [from_record(r.key, r.value, r.headers) for r in records
                  if r.key == in_march.regulation_id.encode()]
        return [e for e in events if isinstance(e.payload, listening.ScorecardUpdated)
                and e.payload.subject_id == "bnnmt" and e.payload.period == "2033-03"
                and e.payload.score == pytest.approx(card.score, abs=0.01)]

    [*_, last] = announced(read_topic(platform_topics, ["policy.evaluation.v1"],
                                      lambda rs: bool(announced(rs))))
    assert (last.source, last.payload.scorecard_kind, last.payload.rank) == (
        "policy/evaluation", "agency", 1)
