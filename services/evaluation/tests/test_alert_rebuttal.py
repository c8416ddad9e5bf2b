"""Misinformation end to end, with the real communication engine: a surge of signals about a
regulation raises one alert, the default playbook turns it into an urgent rebuttal task for
the lead agency's spokesperson, and completing that task gives the time to rebuttal. A flat
stream raises nothing.

The engine also plans tasks for other regulations it has not seen yet; this module runs
first in the package (alphabetically), so the periods the other modules score are produced
only after the engine has stopped."""

from datetime import datetime, timedelta, timezone

import grpc
import pytest

from policy.common.v1 import common_pb2 as common
from policy.communication.v1 import task_pb2
from policy.communication.v1 import task_service_pb2 as tasks_api
from policy.communication.v1 import task_service_pb2_grpc as tasks_grpc
from policy.evaluation.v1 import evaluation_service_pb2 as api
from policy.evaluation.v1 import events_pb2 as listening
from policykit import kafka_io
from policykit.envelope import from_record
from services.evaluation.tests.helpers import draft, new_regulation_id, regulation_kpis, stamp
from tests.support import eventually, read_topic, start_service

CLAIM = "Dự thảo buộc nông dân trả lại đất không bồi thường"
# Event time of the signals: hour-aligned, far from the periods other tests score.
START = datetime(2033, 6, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def task_service(platform_topics, database_url, tmp_path_factory, evaluation):
    engine = start_service("services.communication", tmp_path_factory.mktemp("engine"), {
        "KAFKA_BOOTSTRAP_SERVERS": platform_topics, "DATABASE_URL": database_url,
        "OUTBOX_POLL_INTERVAL_MS": "20"})
    with grpc.insecure_channel(engine.grpc_target) as channel:
        yield tasks_grpc.TaskServiceStub(channel)
    assert engine.terminate() == 0


def signals(produce, regulation_id: str, hours: range, per_signal: int, claim: str = CLAIM):
    """Twelve signals an hour of `per_signal` each, from Tuyên Quang."""
    for hour in hours:
        for minute in range(0, 60, 5):
            at = START + timedelta(hours=hour, minutes=minute)
            produce.send(stamp(listening.MisinformationSignalObserved(
                regulation_id=regulation_id, claim=claim, source="mạng xã hội",
                region_id="tuyen-quang", volume=per_signal), observed_at=at))


def handled_up_to_here(produce, stub, regulation_id: str) -> None:
    """Waits until the evaluation handled every listening event of the regulation sent so
    far: a survey result sent after them, on the same partition, is visible. Once per
    regulation."""
    produce.send(stamp(listening.SurveyResultRecorded(
        regulation_id=regulation_id, survey_id="moc", region_id="tuyen-quang",
        stage=common.FUNNEL_STAGE_KNOW, respondents=10, positive=5),
        recorded_at=START))
    eventually(lambda: (kpis := regulation_kpis(stub, regulation_id)) and kpis.funnel,
               what="the marker survey")


def alerts_on_topic(bootstrap: str, regulation_id: str, until) -> list:
    def raised(records):
        return [e for e in (from_record(r.key, r.value, r.headers) for r in records
                            if r.key == regulation_id.encode())
                if isinstance(e.payload, listening.MisinformationAlertRaised)]

    return raised(read_topic(bootstrap, ["policy.evaluation.v1"],
                             lambda records: until(raised(records))))


def test_a_surge_becomes_one_alert_and_a_rebuttal_measured_to_completion(
        stub, produce, task_service, platform_topics):
    surging, flat = new_regulation_id("tin-don"), new_regulation_id("binh-thuong")
    for regulation_id in (surging, flat):
        produce.send(draft(regulation_id, lead="btnmt"))
    signals(produce, flat, range(0, 12), 10)
    signals(produce, surging, range(0, 6), 10)
    signals(produce, surging, range(6, 8), 60)  # two surging hours: still one surge
    handled_up_to_here(produce, stub, surging)
    handled_up_to_here(produce, stub, flat)

    [alert] = alerts_on_topic(platform_topics, surging, bool)
    payload = alert.payload
    assert (payload.alert_id, payload.claim, payload.region_id, payload.source) == (
        alert.id, CLAIM, "tuyen-quang", "mạng xã hội")
    assert payload.baseline_rate == pytest.approx(120)
    assert payload.observed_rate > 3 * payload.baseline_rate
    assert payload.window_start.ToDatetime(tzinfo=timezone.utc) == START + timedelta(hours=6)
    assert list(regulation_kpis(stub, flat).alerts) == []

    def rebuttal():
        found = task_service.ListTasks(tasks_api.ListTasksRequest(regulation_id=surging),
                                       timeout=10).tasks
        return [t for t in found if t.kind == "rebuttal"]

    [task] = eventually(rebuttal, what="the rebuttal task")
    assert (task.owner_org_id, task.priority, task.trigger_event_id) == (
        "bnnmt.spokesperson", task_pb2.TASK_PRIORITY_URGENT, alert.id)
    assert task.title == f"Phản bác thông tin sai lệch: {CLAIM}"
    assert task.due_at.ToDatetime(tzinfo=timezone.utc) == alert.time + timedelta(hours=4)
    task_service.CompleteTask(tasks_api.CompleteTaskRequest(
        idempotency_key=f"phan-bac-{task.task_id}", task_id=task.task_id,
        evidence=task_pb2.Evidence(url="https://baochinhphu.vn/phan-bac", reach_count=5000)),
        timeout=10)

    def rebutted():
        found = regulation_kpis(stub, surging)
        return found.alerts and found.alerts[0].HasField("rebutted_at") and found

    kpis = eventually(rebutted, what="the time to rebuttal")
    [summary] = kpis.alerts
    assert (summary.alert_id, summary.rebuttal_task_id) == (alert.id, task.task_id)
    assert 0 < summary.hours_to_rebuttal < 4
    month = datetime.now(timezone(timedelta(hours=7))).strftime("%Y-%m")
    card = stub.GetScorecard(api.GetScorecardRequest(
        kind=api.SCORECARD_KIND_AGENCY, subject_id="bnnmt", period=month), timeout=10).scorecard
    misinformation = next(c for c in card.components if c.name == "misinformation")
    assert (misinformation.applicable, misinformation.ratio) == (True, 1.0)
    assert next(k.value for k in card.kpis if k.name == "hours_to_rebuttal") == pytest.approx(
        summary.hours_to_rebuttal, abs=0.01)


def test_a_signal_without_volume_is_dead_lettered(stub, produce, platform_topics):
    regulation_id = new_regulation_id("rong")
    produce.send(draft(regulation_id))
    event = produce.send(stamp(listening.MisinformationSignalObserved(
        regulation_id=regulation_id, claim=CLAIM, volume=0), observed_at=START))

    def parked(records):
        return [r for r in records if dict(r.headers).get("ce_id") == event.id.encode()]

    [dead] = parked(read_topic(platform_topics, ["policy.dlq.evaluation"],
                               lambda records: bool(parked(records))))
    assert dict(dead.headers)[kafka_io.DLQ_REASON] == b"volume: must be positive"
