"""`policyctl dead-letters` against the real broker: dead letters made by policykit's own
consumer are listed with their origin and reason, and replayed to the topic they came from
without their dlq_* headers, filtered by reason, source topic and offset, not at all with
--dry-run, and only after a confirmation (or --yes)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from policy.drafting.v1 import events_pb2
from policykit.envelope import new_event
from policykit.kafka_io import EventConsumer, RejectedEvent, create_producer, publish
from policyctl import dead_letters as command
from policyctl import errors
from policyctl.cli import cli
from tests.support import eventually, read_topic, topic_size

REJECTED = "title: rejected by the test"


def run(bootstrap: str, *args: str, json_mode: bool = False, input: str | None = None):
    options = ["--json"] if json_mode else []
    return CliRunner().invoke(cli, [*options, "--bootstrap-servers", bootstrap, "dead-letters",
                                    *args], input=input)


def output(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def replays(records: list) -> dict[bytes, object]:
    """Maps each value to its latest record: a replayed record is keyed like the original, so it
    sits after it on the same partition."""
    latest = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        latest[record.value] = record
    return latest


def registered(regulation_id: str, title: str):
    return new_event(events_pb2.DraftRegistered(regulation_id=regulation_id, title=title),
                     "test/replay")


@pytest.fixture
def dead_letters(kafka_bootstrap, topic_name):
    """Three dead letters in `<topic>.dlq`: two events a handler rejected and one record that
    is not an event; returns them in key order (reg-1, reg-2, reg-3)."""
    producer = create_producer(kafka_bootstrap)
    publish(producer, topic_name, registered("reg-1", "Luật Đất đai")).get(timeout=30)
    publish(producer, topic_name, registered("reg-2", "Nghị định")).get(timeout=30)
    producer.send(topic_name, key=b"reg-3", value=b"not an event").get(timeout=30)
    producer.close()

    def reject(event):
        raise RejectedEvent(REJECTED)

    consumer = EventConsumer(kafka_bootstrap, f"replay-{topic_name}", [topic_name],
                             f"{topic_name}.dlq", reject)
    try:
        eventually(lambda: consumer.poll_once() >= 0
                   and topic_size(kafka_bootstrap, f"{topic_name}.dlq") >= 3,
                   what="three dead letters")
    finally:
        consumer.close()
    records = read_topic(kafka_bootstrap, [f"{topic_name}.dlq"], lambda records: len(records) >= 3)
    return sorted(records, key=lambda r: r.key)


def test_lists_where_each_dead_letter_is_and_came_from_and_why(
        kafka_bootstrap, topic_name, dead_letters):
    listed = output(run(kafka_bootstrap, "list", "--topic", f"{topic_name}.dlq",
                        json_mode=True))

    assert listed["topic"] == f"{topic_name}.dlq"
    by_position = {(d["partition"], d["offset"]): d for d in listed["dead_letters"]}
    assert set(by_position) == {(r.partition, r.offset) for r in dead_letters}
    for record in dead_letters:
        letter = by_position[(record.partition, record.offset)]
        headers = {name: value.decode() for name, value in record.headers}
        assert letter["source_topic"] == topic_name
        assert letter["source_partition"] == int(headers["dlq_source_partition"])
        assert letter["source_offset"] == int(headers["dlq_source_offset"])
        assert letter["consumer_group"] == f"replay-{topic_name}"
        assert letter["failed_at"] == headers["dlq_failed_at"]
        assert letter["key"] == record.key.decode()
        assert letter["ce_id"] == headers.get("ce_id")
    assert sorted((d["key"], d["ce_type"], d["reason"]) for d in listed["dead_letters"]) == [
        ("reg-1", "policy.drafting.v1.DraftRegistered", REJECTED),
        ("reg-2", "policy.drafting.v1.DraftRegistered", REJECTED),
        ("reg-3", None, "missing header ce_specversion")]
    assert listed["by_reason"] == [{"reason": REJECTED, "count": 2},
                                   {"reason": "missing header ce_specversion", "count": 1}]


def test_the_table_shows_the_dead_letters_and_counts_them_by_reason(
        kafka_bootstrap, topic_name, dead_letters):
    result = run(kafka_bootstrap, "list", "--topic", f"{topic_name}.dlq")

    assert result.exit_code == 0, result.output
    table, summary = result.stdout.split("\n\n")
    first = dead_letters[0]
    row = next(line for line in table.splitlines() if "reg-1" in line)
    assert row.startswith(f"{first.partition}@{first.offset} ")
    assert f"{topic_name}[" in row and "DraftRegistered" in row and REJECTED in row
    assert summary.splitlines()[0] == f"3 dead letter(s) in {topic_name}.dlq, by reason:"
    assert [line.rstrip().split(None, 1) for line in summary.splitlines()[2:]] == [
        ["2", REJECTED], ["1", "missing header ce_specversion"]]


def test_lists_only_what_the_filters_select(kafka_bootstrap, topic_name, dead_letters):
    def keys(*filters: str) -> list[str]:
        listed = output(run(kafka_bootstrap, "list", "--topic", f"{topic_name}.dlq", *filters,
                            json_mode=True))
        return sorted(letter["key"] for letter in listed["dead_letters"])

    assert keys("--reason", "^title: rejected") == ["reg-1", "reg-2"]
    assert keys("--reason", "ce_spec") == ["reg-3"]
    assert keys("--source-topic", topic_name) == ["reg-1", "reg-2", "reg-3"]
    assert keys("--source-topic", "policy.drafting.v1") == []
    first = dead_letters[0]
    assert keys("--partition", str(first.partition), "--from-offset", str(first.offset),
                "--to-offset", str(first.offset)) == ["reg-1"]

    nothing = run(kafka_bootstrap, "list", "--topic", f"{topic_name}.dlq", "--source-topic", "x")
    assert nothing.exit_code == 0
    assert nothing.stdout == f"No dead letters in {topic_name}.dlq match.\n"


def test_replays_the_records_back_to_their_topic_without_dead_letter_headers(
        kafka_bootstrap, topic_name, dead_letters):
    result = run(kafka_bootstrap, "replay", "--topic", f"{topic_name}.dlq", "--yes")

    assert result.exit_code == 0, result.output
    *sent, summary = result.stdout.splitlines()
    assert sorted(sent) == sorted(f"replayed {r.topic}[{r.partition}]@{r.offset} -> {topic_name}"
                                  for r in dead_letters)
    assert summary == f"replayed 3 record(s) from {topic_name}.dlq; skipped 0"
    records = read_topic(kafka_bootstrap, [topic_name], lambda records: len(records) >= 6)
    latest = replays(records)
    for dead in dead_letters:
        [original, again] = sorted((r for r in records if r.value == dead.value),
                                   key=lambda r: r.offset)
        assert again is latest[dead.value] and again.partition == original.partition
        assert again.key == dead.key
        assert again.headers == [h for h in dead.headers if not h[0].startswith("dlq_")]
        assert not any(name.startswith("dlq_") for name, _ in again.headers)
    # The Vietnamese title travels byte for byte.
    assert any("Luật Đất đai".encode() in value for value in latest)


def test_dry_run_sends_nothing_and_says_what_it_would_replay(
        kafka_bootstrap, topic_name, dead_letters):
    result = run(kafka_bootstrap, "replay", "--topic", f"{topic_name}.dlq", "--dry-run")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        f"would replay 3 record(s) from {topic_name}.dlq; skipped 0")
    assert sum(line.rstrip().endswith(f" {topic_name}") for line in result.stdout.splitlines()) == 3
    planned = output(run(kafka_bootstrap, "replay", "--topic", f"{topic_name}.dlq", "--dry-run",
                         json_mode=True))
    assert planned["dry_run"] is True and planned["skipped"] == []
    assert sorted(letter["to"] for letter in planned["replayed"]) == [topic_name] * 3
    assert topic_size(kafka_bootstrap, topic_name) == 3


def test_replays_only_what_the_filters_select(kafka_bootstrap, topic_name, dead_letters):
    rejected = output(run(kafka_bootstrap, "replay", "--topic", f"{topic_name}.dlq", "--dry-run",
                          "--reason", "^title: rejected", json_mode=True))
    assert sorted(letter["key"] for letter in rejected["replayed"]) == ["reg-1", "reg-2"]

    first = dead_letters[0]
    result = run(kafka_bootstrap, "replay", "--topic", f"{topic_name}.dlq", "--yes",
                 "--partition", str(first.partition), "--from-offset", str(first.offset),
                 "--to-offset", str(first.offset))

    assert result.exit_code == 0, result.output
    assert f"@{first.offset} -> {topic_name}" in result.stdout
    records = read_topic(kafka_bootstrap, [topic_name], lambda records: len(records) >= 4)
    assert len(records) == 4
    again = replays(records)[first.value]
    assert again.key == first.key and again.offset > min(
        r.offset for r in records if r.value == first.value)


def test_a_record_without_a_source_topic_is_skipped_not_sent(kafka_bootstrap, topic_name):
    producer = create_producer(kafka_bootstrap)
    producer.send(f"{topic_name}.dlq", key=b"k", value=b"v",
                  headers=[("dlq_reason", b"made by hand")]).get(timeout=30)
    producer.close()

    result = run(kafka_bootstrap, "replay", "--topic", f"{topic_name}.dlq", "--yes",
                 json_mode=True)

    replayed = output(result)
    assert replayed["replayed"] == []
    assert [letter["skip"] for letter in replayed["skipped"]] == ["no dlq_source_topic header"]
    assert topic_size(kafka_bootstrap, topic_name) == 0


def test_refuses_to_replay_without_yes_when_it_cannot_ask(kafka_bootstrap, topic_name,
                                                          dead_letters):
    result = run(kafka_bootstrap, "replay", "--topic", f"{topic_name}.dlq")

    assert result.exit_code == errors.USAGE
    assert "without --yes" in result.stderr
    assert topic_size(kafka_bootstrap, topic_name) == 3


def test_asks_before_replaying_on_a_terminal(kafka_bootstrap, topic_name, dead_letters,
                                             monkeypatch):
    monkeypatch.setattr(command, "_can_prompt", lambda: True)

    declined = run(kafka_bootstrap, "replay", "--topic", f"{topic_name}.dlq", input="n\n")
    assert declined.exit_code == 1
    assert f"Replay 3 record(s) from {topic_name}.dlq to {topic_name}?" in declined.stderr
    assert topic_size(kafka_bootstrap, topic_name) == 3

    accepted = run(kafka_bootstrap, "replay", "--topic", f"{topic_name}.dlq", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert accepted.stdout.splitlines()[-1] == (
        f"replayed 3 record(s) from {topic_name}.dlq; skipped 0")
    assert topic_size(kafka_bootstrap, topic_name) == 6


def test_a_group_names_its_declared_dead_letter_topic(kafka_bootstrap, platform_topics):
    unknown = run(kafka_bootstrap, "list", "no-such-group")
    assert unknown.exit_code == errors.USAGE and "no-such-group" in unknown.stderr

    neither = run(kafka_bootstrap, "list")
    assert neither.exit_code == errors.USAGE and "GROUP or a --topic" in neither.stderr

    offsets = run(kafka_bootstrap, "replay", "drafting", "--from-offset", "3")
    assert offsets.exit_code == errors.USAGE and "need --partition" in offsets.stderr

    declared = output(run(platform_topics, "list", "communication", json_mode=True))
    assert declared["topic"] == "policy.dlq.communication"


def test_an_unknown_dead_letter_topic_is_not_found(kafka_bootstrap):
    result = run(kafka_bootstrap, "list", "--topic", "policy.dlq.nobody")

    assert result.exit_code == errors.NOT_FOUND
    assert "policy.dlq.nobody does not exist" in result.stderr
