"""k8s/generate.py: the committed KafkaTopics, KafkaUsers and playbook copy match their
sources, the ACLs say exactly what topics.yaml says, and --check notices drift."""

from __future__ import annotations

import copy

import pytest
import yaml

from k8s import generate
from policykit import topics


def acls_of(users: list[dict], name: str) -> dict[tuple[str, str, str], list[str]]:
    [user] = [u for u in users if u["metadata"]["name"] == name]
    return {(a["resource"]["type"], a["resource"]["name"], a["resource"]["patternType"]):
            a["operations"] for a in user["spec"]["authorization"]["acls"]}


@pytest.fixture(scope="module")
def declared():
    return (yaml.safe_load(topics.DECLARATION.read_text("utf-8")), topics.load())


def test_committed_files_match_their_sources(capsys):
    assert generate.main(["--check"]) == 0, capsys.readouterr().out


def test_every_declared_topic_and_dead_letter_topic_is_a_kafka_topic(declared):
    _, declaration = declared
    resources = {t["metadata"]["name"]: t for t in generate.kafka_topics(declaration)}
    assert set(resources) == set(declaration.topics)
    dlq = resources["policy.dlq.communication"]["spec"]
    assert (dlq["partitions"], dlq["replicas"]) == (3, 3)
    assert dlq["config"]["min.insync.replicas"] == 2
    assert resources["policy.open-data.v1"]["spec"]["config"]["cleanup.policy"] == "compact"
    assert resources["policy.delivery-reports.v1"]["spec"]["partitions"] == 12


def test_a_service_may_read_what_it_consumes_and_write_what_it_produces(declared):
    users = generate.kafka_users(*declared)
    communication = acls_of(users, "policy-communication")

    for topic in ("policy.drafting.v1", "policy.consultation.v1", "policy.publication.v1",
                  "policy.evaluation.v1"):
        assert communication[("topic", topic, "literal")] == ["Read", "Describe"]
    assert communication[("group", "communication", "literal")] == ["Read"]
    assert communication[("topic", "policy.communication.v1", "literal")] == ["Write", "Describe"]
    assert communication[("topic", "policy.dlq.communication", "literal")] == ["Write", "Describe"]
    writes = {name for (kind, name, _), ops in communication.items() if "Write" in ops}
    assert writes == {"policy.communication.v1", "policy.dlq.communication"}


def test_outside_systems_get_only_their_topics_and_their_own_group_prefix(declared):
    users = generate.kafka_users(*declared)
    channels = acls_of(users, "policy-downstream-channels")

    assert channels == {
        ("topic", "policy.communication.v1", "literal"): ["Read", "Describe"],
        ("group", "downstream-channels", "prefix"): ["Read"],
        ("topic", "policy.delivery-reports.v1", "literal"): ["Write", "Describe"],
    }
    assert acls_of(users, "policy-drafting-systems") == {
        ("topic", "policy.drafting-intake.v1", "literal"): ["Write", "Describe"]}


def test_the_ops_user_reads_dead_letters_and_writes_only_consumed_topics(declared):
    ops = acls_of(generate.kafka_users(*declared), "policy-ops")

    assert ops[("topic", "policy.dlq.", "prefix")] == ["Read", "Describe"]
    written = {name for (_, name, _), ops_ in ops.items() if "Write" in ops_}
    assert "policy.open-data.v1" not in written  # nobody on the platform consumes it
    assert "policy.drafting-intake.v1" in written


def test_a_declaration_that_contradicts_itself_is_refused(declared):
    raw, declaration = declared
    raw = copy.deepcopy(raw)
    [drafting_topic] = [t for t in raw["topics"] if t["name"] == "policy.drafting.v1"]
    drafting_topic["consumed_by"].remove("publication")

    with pytest.raises(SystemExit, match="consumer group 'publication'"):
        generate.kafka_users(raw, declaration)


def test_check_reports_drift_with_a_diff(tmp_path, monkeypatch, capsys):
    committed = tmp_path / "topics.yaml"
    committed.write_text("partitions: 6\n")
    monkeypatch.setattr(generate, "REPO", tmp_path)
    monkeypatch.setattr(generate, "outputs", lambda: {committed: "partitions: 12\n"})

    assert generate.main(["--check"]) == 1
    captured = capsys.readouterr()
    assert "-partitions: 6" in captured.out and "+partitions: 12" in captured.out
    assert "drifted" in captured.err
    assert committed.read_text() == "partitions: 6\n"
