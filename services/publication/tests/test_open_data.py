"""Open data: the file export and the topic carry, in the documented JSON format, exactly
what GetTimeline says of each published regulation."""

import json
import os
import subprocess
import sys
import uuid

import jsonschema

from policy.communication.v1 import events_pb2 as communication
from policy.communication.v1 import task_pb2
from policy.consultation.v1 import events_pb2 as consultation
from policy.publication.v1 import publication_service_pb2 as api
from services.publication.open_data import FORMAT, SCHEMA_PATH, document
from services.publication.tests.helpers import (OPEN_DATA_TOPIC, key, produce, published,
                                                wait_for_timeline)
from policyctl.timeline import fetch_timeline
from tests.support import PYTHONPATH, REPO, read_topic

SCHEMA = json.loads(SCHEMA_PATH.read_text("utf-8"))


def a_regulation_with_everything(stub, producer) -> api.GetTimelineResponse:
    """A promulgated regulation with a consultation, a completed task and an amendment."""
    regulation, amending = published(stub, producer), published(stub, producer)
    reg = regulation.regulation_id
    stub.AmendRegulation(api.AmendRegulationRequest(
        idempotency_key=key(), regulation_id=reg,
        amended_by_regulation_id=amending.regulation_id, amended_articles=["Điều 3"]),
        timeout=10)
    task = task_pb2.Task(task_id=str(uuid.uuid4()), regulation_id=reg,
                         kind="plain-language-explainer", title="Giải thích dễ hiểu",
                         channel=4, owner_org_id="bnnmt.communication", priority=3,
                         audience="general-public", region_ids=["national"],
                         status=task_pb2.TASK_STATUS_CREATED,
                         trigger_event_id=str(uuid.uuid4()))
    task.created_at.GetCurrentTime()
    task.due_at.GetCurrentTime()
    for topic, payload in [
            ("policy.consultation.v1", consultation.ConsultationOpened(
                regulation_id=reg, consultation_id=f"c-{reg}")),
            ("policy.consultation.v1", consultation.ConsultationClosed(
                regulation_id=reg, consultation_id=f"c-{reg}", total_comments=2,
                by_province=[consultation.CommentCount(key="lai-chau", comments=2)])),
            ("policy.communication.v1", communication.TaskCreated(regulation_id=reg, task=task)),
            ("policy.communication.v1", communication.TaskCompleted(
                regulation_id=reg, task_id=task.task_id, evidence=task_pb2.Evidence(
                    url="https://baochinhphu.vn/giai-thich", reach_count=40000)))]:
        produce(producer, topic, payload)
    return wait_for_timeline(
        stub, reg, lambda t: len(t.tasks) == 1 and t.tasks[0].task.evidence.url
        and t.consultations and t.consultations[0].total_comments == 2, "tasks and totals")


def test_the_export_and_the_topic_say_what_get_timeline_says(stub, producer, platform_topics,
                                                             database_url, tmp_path):
    timeline = a_regulation_with_everything(stub, producer)
    reg = timeline.regulation.regulation_id
    subprocess.run([sys.executable, "-m", "services.publication.export", "--out", str(tmp_path)],
                   cwd=REPO, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": PYTHONPATH, "DATABASE_URL": database_url})
    expected = document(fetch_timeline(stub, reg))

    index = json.loads((tmp_path / "index.json").read_text("utf-8"))
    assert index["format"] == "policy.open-data.index.v1"
    [entry] = [e for e in index["regulations"] if e["regulation_id"] == reg]
    assert entry["document_number"] == timeline.regulation.promulgation.document_number
    text = (tmp_path / entry["path"]).read_text("utf-8")
    assert "Được sửa đổi, bổ sung bởi" in text  # Vietnamese as it is, not \u-escaped
    exported = json.loads(text)
    jsonschema.validate(exported, SCHEMA)
    assert exported == expected
    assert exported["format"] == FORMAT
    assert [e["event_id"] for e in exported["timeline"]] == [e.event_id for e in timeline.entries]
    assert exported["links"][0]["kind"] == "AMENDED_BY"
    assert exported["tasks"][0]["evidence"] == {
        "url": "https://baochinhphu.vn/giai-thich", "reach_count": 40000, "note": None}
    assert exported["consultations"][0]["by_province"][0]["key"] == "lai-chau"
    for other in index["regulations"]:
        jsonschema.validate(json.loads((tmp_path / other["path"]).read_text("utf-8")), SCHEMA)

    def latest(records) -> dict | None:
        mine = [r for r in records if r.key == reg.encode()]
        return json.loads(mine[-1].value.decode("utf-8")) if mine else None

    records = read_topic(platform_topics, [OPEN_DATA_TOPIC],
                         lambda rs: latest(rs) == expected)
    [record] = [r for r in records if r.key == reg.encode()][-1:]
    assert dict(record.headers)["content-type"] == b"application/json"
    jsonschema.validate(latest(records), SCHEMA)
