"""deploy/tools/replay_dead_letters.py against the real broker: dead letters made by
policykit's own consumer go back to the topic they came from, without their dlq_* headers,
filtered by reason and by offset, and not at all with --dry-run."""

from __future__ import annotations

import io
import re

import pytest

from deploy.tools import replay_dead_letters as tool
from deploy.tools.replay_dead_letters import Selection
from policy.drafting.v1 import events_pb2
from policykit.envelope import new_event
from policykit.kafka_io import EventConsumer, RejectedEvent, create_producer, publish
from tests.support import eventually, read_topic, topic_size


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
    is not an event; returns their values in the order they were produced."""
    producer = create_producer(kafka_bootstrap)
    publish(producer, topic_name, registered("reg-1", "Luật Đất đai")).get(timeout=30)
    publish(producer, topic_name, registered("reg-2", "Nghị định")).get(timeout=30)
    producer.send(topic_name, key=b"reg-3", value=b"not an event").get(timeout=30)
    producer.close()

    def reject(event):
        raise RejectedEvent(f"title: rejected {event.payload.title}")

    consumer = EventConsumer(kafka_bootstrap, f"replay-{topic_name}", [topic_name],
                             f"{topic_name}.dlq", reject)
    try:
        eventually(lambda: consumer.poll_once() >= 0
                   and topic_size(kafka_bootstrap, f"{topic_name}.dlq") >= 3,
                   what="three dead letters")
    finally:
        consumer.close()
    return read_topic(kafka_bootstrap, [f"{topic_name}.dlq"], lambda records: len(records) >= 3)


def test_replays_the_records_back_to_their_topic_without_dead_letter_headers(
        kafka_bootstrap, topic_name, dead_letters):
    out = io.StringIO()
    sent = tool.replay(kafka_bootstrap, f"{topic_name}.dlq", Selection(), dry_run=False, out=out)

    assert sent == 3, out.getvalue()
    records = read_topic(kafka_bootstrap, [topic_name], lambda records: len(records) >= 6)
    latest = replays(records)
    for dead in dead_letters:
        [original, again] = sorted((r for r in records if r.value == dead.value),
                                   key=lambda r: r.offset)
        assert again is latest[dead.value] and again.partition == original.partition
        assert again.key == dead.key
        assert again.headers == [h for h in dead.headers if not h[0].startswith("dlq_")]
    # The Vietnamese title travels byte for byte.
    assert any("Luật Đất đai".encode() in value for value in latest)


def test_dry_run_sends_nothing_and_says_what_it_would_replay(
        kafka_bootstrap, topic_name, dead_letters):
    out = io.StringIO()
    sent = tool.replay(kafka_bootstrap, f"{topic_name}.dlq", Selection(), dry_run=True, out=out)

    assert sent == 3
    assert topic_size(kafka_bootstrap, topic_name) == 3
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines[:-1]] == ["would"] * 3
    assert lines[-1].startswith("would replay 3 record(s)")


def test_filters_by_reason_and_by_offset(kafka_bootstrap, topic_name, dead_letters):
    rejected = Selection(reason=re.compile("^title: rejected"))
    assert tool.replay(kafka_bootstrap, f"{topic_name}.dlq", rejected, dry_run=True,
                       out=io.StringIO()) == 2

    first = dead_letters[0]
    one = Selection(partition=first.partition, from_offset=first.offset, to_offset=first.offset)
    out = io.StringIO()
    assert tool.replay(kafka_bootstrap, f"{topic_name}.dlq", one, dry_run=False, out=out) == 1
    records = read_topic(kafka_bootstrap, [topic_name], lambda records: len(records) >= 4)
    assert len(records) == 4
    again = replays(records)[first.value]
    assert again.key == first.key and again.offset > min(
        r.offset for r in records if r.value == first.value)
    assert f"@{first.offset} " in out.getvalue()


def test_a_record_without_a_source_topic_is_skipped_not_sent(kafka_bootstrap, topic_name):
    producer = create_producer(kafka_bootstrap)
    producer.send(f"{topic_name}.dlq", key=b"k", value=b"v",
                  headers=[("dlq_reason", b"made by hand")]).get(timeout=30)
    producer.close()
    out = io.StringIO()

    assert tool.replay(kafka_bootstrap, f"{topic_name}.dlq", Selection(), dry_run=False,
                       out=out) == 0
    assert "no dlq_source_topic header" in out.getvalue()


def test_the_command_line_names_the_group_s_declared_dead_letter_topic(capsys):
    with pytest.raises(SystemExit):
        tool.main(["--group", "no-such-group", "--bootstrap-servers", "127.0.0.1:1"])
    assert "no-such-group" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main(["--group", "drafting", "--from-offset", "3",
                   "--bootstrap-servers", "127.0.0.1:1"])
    assert "need --partition" in capsys.readouterr().err
