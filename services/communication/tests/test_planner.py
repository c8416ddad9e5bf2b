"""What the default playbook plans for an event: pure logic, no broker or database."""

from datetime import datetime, timedelta, timezone

import pytest

from policy.common.v1 import common_pb2
from policy.consultation.v1 import events_pb2 as consultation
from policy.drafting.v1 import events_pb2 as drafting
from policykit.envelope import new_event
from policykit.reference import default
from services.communication import playbook
from services.communication.handlers import regulation_from_draft
from services.communication.planner import plan

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
CONSULTATION_START = NOW + timedelta(days=30)


@pytest.fixture(scope="module")
def rules():
    return playbook.load(playbook.DEFAULT_PATH, default())


def registered(impact=common_pb2.IMPACT_LEVEL_HIGH, provinces=("02", "04", "tp-ha-noi"),
               agency="bnnmt"):
    payload = drafting.DraftRegistered(
        regulation_id="reg-1", regulation_type=common_pb2.REGULATION_TYPE_LAW,
        title="Luật Đất đai (sửa đổi)", lead_agency_id=agency, impact_level=impact,
        affected_groups=["nong-dan"], affected_province_codes=list(provinces))
    payload.planned_consultation_start.FromDatetime(CONSULTATION_START)
    return new_event(payload, "policy/test", event_id="event-1", time=NOW)


def test_large_impact_draft_reaches_border_provinces_by_voice_and_in_person(rules):
    event = registered()
    tasks = plan(rules, event, regulation_from_draft(event.payload), default())
    remote = {(t.kind, t.owner_org_id, t.region_ids) for t in tasks
              if t.rule_id == "high-impact-draft-remote-areas"}
    # Hà Giang (02) is in Tuyên Quang since 2025-07-01; Cao Bằng borders China; Hà Nội is neither.
    assert remote == {
        ("loudspeaker-announcement", "tuyen-quang.commune-officers", ("tuyen-quang",)),
        ("loudspeaker-announcement", "cao-bang.commune-officers", ("cao-bang",)),
        ("collaborator-briefing", "tuyen-quang.grassroots-collaborators", ("tuyen-quang",)),
        ("collaborator-briefing", "cao-bang.grassroots-collaborators", ("cao-bang",)),
    }
    kinds = {t.kind for t in tasks}
    assert {"policy-brief", "faq", "infographic", "press-commission"} <= kinds
    assert {t.owner_org_id for t in tasks if t.kind == "press-commission"} == {"vtv", "baochinhphu"}


def test_communication_goes_first(rules):
    event = registered()
    tasks = plan(rules, event, regulation_from_draft(event.payload), default())
    brief = next(t for t in tasks if t.kind == "policy-brief")
    assert brief.due_at == CONSULTATION_START - timedelta(days=7)


def test_merged_ministry_hands_new_tasks_to_its_successor(rules):
    event = registered(agency="btnmt")
    tasks = plan(rules, event, regulation_from_draft(event.payload), default())
    assert next(t for t in tasks if t.kind == "policy-brief").owner_org_id == "bnnmt.communication"


def test_low_impact_draft_gets_no_draft_stage_tasks(rules):
    event = registered(impact=common_pb2.IMPACT_LEVEL_LOW)
    assert plan(rules, event, regulation_from_draft(event.payload), default()) == []


def test_consultation_opened_reaches_every_affected_province(rules):
    regulation = regulation_from_draft(registered().payload)
    opened = new_event(consultation.ConsultationOpened(regulation_id="reg-1", consultation_id="c"),
                       "policy/test", event_id="event-2", time=NOW)
    tasks = plan(rules, opened, regulation, default())
    loudspeakers = {t.region_ids[0] for t in tasks if t.kind == "loudspeaker-script"}
    assert loudspeakers == {"tuyen-quang", "cao-bang", "tp-ha-noi"}
    visits = {t.region_ids[0] for t in tasks if t.kind == "collaborator-visits"}
    assert visits == {"tuyen-quang", "cao-bang"}
    portal = next(t for t in tasks if t.kind == "portal-notice")
    assert portal.due_at == NOW + timedelta(hours=4)


def test_the_same_event_always_plans_the_same_task_ids(rules):
    event = registered()
    first = plan(rules, event, regulation_from_draft(event.payload), default())
    again = plan(rules, event, regulation_from_draft(event.payload), default())
    assert [t.task_id for t in first] == [t.task_id for t in again]
    assert len({t.task_id for t in first}) == len(first)
