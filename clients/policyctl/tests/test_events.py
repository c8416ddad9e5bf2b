"""`policyctl events tail` against the real broker: events decoded to JSON with their headers,
filters, start positions, records that do not decode, the open-data JSON topic, and the exit
codes for a missing topic and an unreachable broker."""

from __future__ import annotations

import base64
import json
import threading
import unicodedata
import uuid

from click.testing import CliRunner

from deploy.local.kafka_broker import free_port
from policy.drafting.v1 import events_pb2
from policykit.envelope import new_event, to_record
from policykit.kafka_io import create_producer, publish
from policykit.topic_reader import TopicReader
from policyctl import errors
from policyctl.cli import cli

TITLE = unicodedata.normalize("NFC", "Luật Đất đai (sửa đổi) — Nghị định về quản lý")


def tail(bootstrap: str, *args: str, json_mode: bool = True):
    options = ["--json"] if json_mode else []
    return CliRunner().invoke(cli, [*options, "--bootstrap-servers", bootstrap, "events",
                                    "tail", *args])


def lines(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def registered(regulation_id: str, title: str = TITLE):
    return new_event(events_pb2.DraftRegistered(regulation_id=regulation_id, title=title),
                     "test/policyctl")


def adopted(regulation_id: str):
    return new_event(events_pb2.DraftAdopted(regulation_id=regulation_id, version=2),
                     "test/policyctl")


def produce(bootstrap: str, topic: str, *events, partition: int | None = None) -> None:
    producer = create_producer(bootstrap)
    try:
        for event in events:
            key, value, headers = to_record(event)
            producer.send(topic, key=key, value=value, headers=headers,
                          partition=partition).get(timeout=30)
    finally:
        producer.close()


def test_prints_each_event_decoded_with_its_headers_and_the_title_as_it_is(
        kafka_bootstrap, topic_name):
    event = registered("luat-dat-dai")
    produce(kafka_bootstrap, topic_name, event)

    [record] = lines(tail(kafka_bootstrap, topic_name, "--from-beginning", "--no-follow"))

    assert (record["topic"], record["key"], record["offset"]) == (topic_name, "luat-dat-dai", 0)
    assert record["partition"] in (0, 1, 2) and record["timestamp"].endswith("+00:00")
    assert record["headers"]["ce_type"] == "policy.drafting.v1.DraftRegistered"
    assert record["headers"]["ce_id"] == event.id
    assert record["headers"]["ce_source"] == "test/policyctl"
    assert record["headers"]["content-type"] == "application/protobuf"
    # Proto field names, every field present, the title as it was sent.
    assert record["payload"]["regulation_id"] == "luat-dat-dai"
    assert record["payload"]["title"] == TITLE
    assert record["payload"]["affected_groups"] == []
    assert "error" not in record


def test_people_get_a_header_line_and_indented_json_with_vietnamese_unescaped(
        kafka_bootstrap, topic_name):
    produce(kafka_bootstrap, topic_name, registered("luat-dat-dai"))

    result = tail(kafka_bootstrap, topic_name, "--from-beginning", "--no-follow",
                  json_mode=False)

    assert result.exit_code == 0, result.output
    first, *document = result.stdout.splitlines()
    assert first.startswith(f"── {topic_name}[") and "key=luat-dat-dai" in first
    assert first.endswith("DraftRegistered")
    assert f'"title": "{TITLE}"' in result.stdout  # byte for byte, not \u-escaped
    assert json.loads("\n".join(document))["payload"]["title"] == TITLE


def test_filters_by_event_type_short_or_full_and_by_key(kafka_bootstrap, topic_name):
    produce(kafka_bootstrap, topic_name, registered("reg-1"), registered("reg-2"),
            adopted("reg-1"))

    def shown(*filters: str) -> list[tuple[str, str]]:
        result = tail(kafka_bootstrap, topic_name, "--from-beginning", "--no-follow", *filters)
        return sorted((r["key"], r["headers"]["ce_type"].rsplit(".", 1)[1])
                      for r in lines(result))

    assert shown("--type", "DraftRegistered") == [("reg-1", "DraftRegistered"),
                                                  ("reg-2", "DraftRegistered")]
    assert shown("--type", "policy.drafting.v1.DraftAdopted") == [("reg-1", "DraftAdopted")]
    assert shown("--key", "reg-1") == [("reg-1", "DraftAdopted"), ("reg-1", "DraftRegistered")]
    assert shown("--key", "reg-1", "--type", "DraftRegistered") == [("reg-1", "DraftRegistered")]
    assert shown("--key", "reg-1", "--key", "reg-2", "--type", "DraftAdopted",
                 "--type", "DraftRegistered") == [("reg-1", "DraftAdopted"),
                                                  ("reg-1", "DraftRegistered"),
                                                  ("reg-2", "DraftRegistered")]


def test_an_unknown_short_type_is_refused_with_a_suggestion(kafka_bootstrap, topic_name):
    result = tail(kafka_bootstrap, topic_name, "--type", "DraftRegisterd")

    assert result.exit_code == errors.USAGE
    assert "did you mean DraftRegistered?" in result.stderr


def test_starts_where_asked_per_partition(kafka_bootstrap, topic_name):
    produce(kafka_bootstrap, topic_name, *(registered(f"p0-{n}") for n in range(3)), partition=0)
    produce(kafka_bootstrap, topic_name, *(registered(f"p1-{n}") for n in range(2)), partition=1)

    def keys(*start: str) -> list[str]:
        return sorted(r["key"] for r in lines(tail(kafka_bootstrap, topic_name, "--no-follow",
                                                   *start)))

    assert keys("--last", "1") == ["p0-2", "p1-1"]
    assert keys("--last", "2") == ["p0-1", "p0-2", "p1-0", "p1-1"]
    assert keys("--last", "10") == keys("--from-beginning") == [
        "p0-0", "p0-1", "p0-2", "p1-0", "p1-1"]
    assert keys("--partition", "0", "--offset", "1") == ["p0-1", "p0-2"]
    assert keys("--partition", "1", "--from-beginning") == ["p1-0", "p1-1"]
    assert keys() == []  # by default only records produced from now on
    assert len(keys("--from-beginning", "--max-records", "2")) == 2


def test_start_options_that_contradict_each_other_are_refused(kafka_bootstrap, topic_name):
    both = tail(kafka_bootstrap, topic_name, "--from-beginning", "--last", "3")
    assert both.exit_code == errors.USAGE and "choose one of" in both.stderr
    offset = tail(kafka_bootstrap, topic_name, "--offset", "3")
    assert offset.exit_code == errors.USAGE and "--offset needs --partition" in offset.stderr
    partition = tail(kafka_bootstrap, topic_name, "--partition", "7")
    assert partition.exit_code == errors.NOT_FOUND and "no partition 7" in partition.stderr


def test_a_record_that_does_not_decode_is_shown_with_the_error_and_its_raw_value(
        kafka_bootstrap, topic_name):
    producer = create_producer(kafka_bootstrap)
    producer.send(topic_name, key=b"reg-x", value=b"\xffnot protobuf", partition=0).get(30)
    key, _, headers = to_record(registered("reg-y"))
    producer.send(topic_name, key=key, value=b"\xff\xff\xff", headers=headers,
                  partition=0).get(30)
    producer.close()
    produce(kafka_bootstrap, topic_name, registered("reg-z"), partition=0)

    bare, broken, good = lines(tail(kafka_bootstrap, topic_name, "--from-beginning",
                                    "--no-follow"))

    assert bare["key"] == "reg-x" and bare["headers"] == {}
    assert bare["error"] == "missing header ce_specversion"
    assert base64.b64decode(bare["value_base64"]) == b"\xffnot protobuf"
    assert "payload" not in bare
    assert broken["error"].startswith("payload is not a valid policy.drafting.v1.DraftRegistered")
    assert broken["headers"]["ce_type"] == "policy.drafting.v1.DraftRegistered"
    assert base64.b64decode(broken["value_base64"]) == b"\xff\xff\xff"
    # The tail goes on after them.
    assert good["payload"]["regulation_id"] == "reg-z"

    human = tail(kafka_bootstrap, topic_name, "--from-beginning", "--no-follow",
                 json_mode=False)
    assert human.exit_code == 0
    assert "not decoded: missing header ce_specversion" in human.stdout


def test_open_data_records_are_json_documents(platform_topics):
    regulation_id = f"nd-{uuid.uuid4().hex[:8]}"
    document = {"format": "policy.open-data.regulation.v1", "regulation_id": regulation_id,
                "title": TITLE, "timeline": []}
    producer = create_producer(platform_topics)
    producer.send("policy.open-data.v1", key=regulation_id.encode(),
                  value=json.dumps(document, ensure_ascii=False).encode(),
                  headers=[("content-type", b"application/json")]).get(timeout=30)
    producer.close()

    result = tail(platform_topics, "policy.open-data.v1", "--from-beginning", "--no-follow",
                  "--key", regulation_id)

    [record] = lines(result)
    assert record["payload"] == document
    assert TITLE in result.stdout  # JSON Lines keep Vietnamese readable


def test_follow_prints_only_records_produced_after_the_start(kafka_bootstrap, topic_name):
    produce(kafka_bootstrap, topic_name, registered("before"))
    results = []
    follower = threading.Thread(target=lambda: results.append(
        tail(kafka_bootstrap, topic_name, "--max-records", "2")))
    follower.start()
    # The tail takes its start position once connected: produce until it has seen two.
    producer = create_producer(kafka_bootstrap)
    try:
        for _ in range(300):
            if not follower.is_alive():
                break
            publish(producer, topic_name, registered("after")).get(timeout=30)
            follower.join(timeout=0.2)
    finally:
        producer.close()
    follower.join(timeout=60)

    assert [record["key"] for record in lines(results[0])] == ["after", "after"]


def test_ctrl_c_ends_a_follow_cleanly(kafka_bootstrap, topic_name, monkeypatch):
    produce(kafka_bootstrap, topic_name, registered("reg-1"))
    records = TopicReader.records

    def interrupted_after_one(self, follow=False):
        yield next(records(self, follow))
        raise KeyboardInterrupt

    monkeypatch.setattr(TopicReader, "records", interrupted_after_one)

    result = tail(kafka_bootstrap, topic_name, "--from-beginning")

    assert [record["key"] for record in lines(result)] == ["reg-1"]


def test_an_unknown_topic_is_not_found(kafka_bootstrap):
    result = tail(kafka_bootstrap, "policy.no-such-topic.v1")

    assert result.exit_code == errors.NOT_FOUND
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "NOT_FOUND"
    assert "policy.no-such-topic.v1 does not exist" in error["message"]


def test_an_unreachable_broker_is_unavailable():
    nowhere = f"127.0.0.1:{free_port()}"

    result = CliRunner().invoke(cli, ["--bootstrap-servers", nowhere, "--timeout", "1",
                                      "events", "tail", "policy.drafting.v1"])

    assert result.exit_code == errors.UNAVAILABLE
    assert result.stderr.startswith(f"error: UNAVAILABLE: Kafka at {nowhere}")
