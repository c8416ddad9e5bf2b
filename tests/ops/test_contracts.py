"""The event contracts (issue #7): docs/asyncapi.yaml matches topics.yaml and the protos, says
what every topic carries, with the envelope and keys the code really writes, and is valid for
the AsyncAPI CLI; buf breaking against the previous commit catches a breaking proto change."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict

from deploy.tools import asyncapi
from policy.drafting.v1 import events_pb2 as drafting
from policykit import envelope, kafka_io, topics

REPO = Path(__file__).resolve().parents[2]
ASYNCAPI_CLI = REPO / ".cache" / "npm" / "node_modules" / ".bin" / "asyncapi"
CLI_SETTINGS = REPO / ".cache" / "npm" / "asyncapi-analytics.json"
BUF = REPO / ".cache" / "bin" / "buf"
BUF_BREAKING = REPO / "deploy" / "tools" / "buf_breaking.sh"


@pytest.fixture(scope="module")
def declaration():
    return topics.load()


@pytest.fixture(scope="module")
def document(declaration):
    return asyncapi.document(declaration)


def validate(instance, schema: dict, document: dict) -> None:
    """Validates against a schema of the document, its #/components references resolved."""
    jsonschema.Draft7Validator({**schema, "components": document["components"]}).validate(instance)


def test_committed_document_matches_its_sources(capsys):
    assert asyncapi.main(["--check"]) == 0, capsys.readouterr().out


def test_check_reports_drift_with_a_diff(tmp_path, monkeypatch, capsys):
    committed = tmp_path / "docs" / "asyncapi.yaml"
    committed.parent.mkdir()
    committed.write_text("# Generated\nasyncapi: 3.0.0\ninfo: {title: old}\n")
    monkeypatch.setattr(asyncapi, "REPO", tmp_path)
    monkeypatch.setattr(asyncapi, "DOCUMENT", committed)
    monkeypatch.setattr(asyncapi, "document", lambda _: {"asyncapi": "3.0.0",
                                                         "info": {"title": "new"}})

    assert asyncapi.main(["--check"]) == 1
    captured = capsys.readouterr()
    assert "-info: {title: old}" in captured.out and "+info: {title: new}" in captured.out
    assert "drifted" in captured.err
    assert "title: old" in committed.read_text()


def test_every_topic_and_dead_letter_topic_is_a_channel(declaration, document):
    channels = {c["address"]: c for c in document["channels"].values()}
    assert set(channels) == set(declaration.topics)
    assert set(declaration.dead_letter_topics.values()) <= set(channels)
    open_data = channels["policy.open-data.v1"]["bindings"]["kafka"]
    assert open_data["partitions"] == 3
    assert open_data["topicConfiguration"]["cleanup.policy"] == ["compact"]


def test_every_consumer_group_receives_what_it_consumes_under_its_group_id(declaration,
                                                                           document):
    operations = document["operations"]
    for group, consumed in declaration.consumes.items():
        for topic in consumed:
            binding = operations[f"{group}.receive.{topic}"]["bindings"]["kafka"]
            assert binding["groupId"]["const"] == declaration.kafka_group_id(group, topic)
        dead_letters = operations[f"{group}.send.{declaration.dead_letter_topic(group)}"]
        assert dead_letters["action"] == "send"


def test_the_delivery_report_group_is_the_one_the_evaluation_service_uses(declaration):
    from services.evaluation import delivery

    assert declaration.kafka_group_id("evaluation", delivery.TOPIC) == delivery.GROUP
    assert declaration.kafka_group_id("evaluation", "policy.drafting.v1") == "evaluation"


def test_producers_and_consumers_are_the_declared_ones(declaration, document):
    expected = {f"{app}.send.{t.name}"
                for t in declaration.topics.values() for app in t.produced_by}
    expected |= {f"{app}.receive.{t.name}"
                 for t in declaration.topics.values() for app in t.consumed_by}
    assert set(document["operations"]) == expected
    channels = document["operations"]["downstream-channels.receive.policy.communication.v1"]
    assert channels["tags"] == [{"name": "external-system"}]
    assert channels["bindings"]["kafka"]["groupId"] == {"type": "string",
                                                        "pattern": "^downstream-channels"}


def test_every_event_type_is_carried_by_a_topic(declaration, document):
    carried = {name for spec in declaration.topics.values() for name in asyncapi.carried(spec)}
    assert set(envelope.EVENT_TYPES) <= carried
    messages = {c["address"]: set(c["messages"]) for c in document["channels"].values()}
    assert messages["policy.delivery-reports.v1"] == {"policy.communication.v1.DeliveryReported"}
    assert messages["policy.listening.v1"] == {"policy.evaluation.v1.SurveyResultRecorded",
                                               "policy.evaluation.v1.MisinformationSignalObserved"}
    assert messages["policy.open-data.v1"] == {"open-data"}
    # A dead-letter topic holds what its group reads, and what it could not even decode.
    assert messages["policy.dlq.drafting"] == messages["policy.drafting-intake.v1"] | {
        asyncapi.UNDECODABLE}


def test_carries_names_only_event_types():
    with pytest.raises(SystemExit, match="policy.drafting.v1.Draft' is not a lifecycle event"):
        asyncapi.carried_types("policy.drafting.v1.Draft")
    with pytest.raises(SystemExit, match="matches no event type"):
        asyncapi.carried_types("policy.common.v1.*")


def test_headers_and_key_are_the_ones_the_envelope_writes(document):
    payload = drafting.DraftRegistered(regulation_id="luat-dat-dai-sua-doi", title="Luật Đất đai")
    event = envelope.new_event(payload, "policy/drafting")
    key, _, headers = envelope.to_record(event)
    messages = document["components"]["messages"]
    registered = messages["policy.drafting.v1.DraftRegistered"]

    validate({name: value.decode() for name, value in headers}, registered["headers"], document)
    validate(key.decode(), registered["bindings"]["kafka"]["key"], document)
    with pytest.raises(jsonschema.ValidationError, match="ce_type|DraftRevised"):
        validate({name: value.decode() for name, value in headers},
                 messages["policy.drafting.v1.DraftRevised"]["headers"], document)

    dead = kafka_io.dead_letter_headers(headers, "title: must not be empty",
                                        "policy.drafting-intake.v1", 0, 12, "drafting")
    dead_letter = messages["policy.drafting.v1.DraftRegistered" + asyncapi.DEAD_LETTER_SUFFIX]
    validate({name: value.decode() for name, value in dead}, dead_letter["headers"], document)
    with pytest.raises(jsonschema.ValidationError, match="dlq_reason"):
        validate({name: value.decode() for name, value in headers}, dead_letter["headers"],
                 document)


SAMPLES = {FieldDescriptor.CPPTYPE_STRING: "Điều 12", FieldDescriptor.CPPTYPE_BOOL: True,
           FieldDescriptor.CPPTYPE_INT32: 7, FieldDescriptor.CPPTYPE_UINT32: 7,
           FieldDescriptor.CPPTYPE_INT64: 2**40, FieldDescriptor.CPPTYPE_UINT64: 2**40,
           FieldDescriptor.CPPTYPE_DOUBLE: 0.5, FieldDescriptor.CPPTYPE_FLOAT: 0.5}


def filled(message):
    """Sets every field of the message, and of the messages in it, to a value that is not the
    default, so that each appears in the JSON mapping."""
    for field in message.DESCRIPTOR.fields:
        if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            value = getattr(message, field.name)
            child = value.add() if field.is_repeated else value
            if field.message_type.full_name == asyncapi.TIMESTAMP:
                child.FromSeconds(1_767_225_600)
            else:
                filled(child)
            continue
        if field.enum_type:
            value = field.enum_type.values[-1].number
        elif field.type == FieldDescriptor.TYPE_BYTES:
            value = b"\x00\xff"
        else:
            value = SAMPLES[field.cpp_type]
        if field.is_repeated:
            getattr(message, field.name).append(value)
        else:
            setattr(message, field.name, value)
    return message


@pytest.mark.parametrize("type_name", sorted(envelope.EVENT_TYPES))
def test_payload_schema_describes_every_field_in_the_json_mapping(document, type_name):
    closed = copy.deepcopy(document)
    for name, schema in closed["components"]["schemas"].items():
        if schema.get("type") == "object" and name.startswith("policy."):
            schema["additionalProperties"] = False  # a field the schema lacks fails
    message = filled(envelope.EVENT_TYPES[type_name]())

    validate(MessageToDict(message, preserving_proto_field_name=True),
             closed["components"]["messages"][type_name]["payload"], closed)


@pytest.mark.skipif(not (ASYNCAPI_CLI.exists() and CLI_SETTINGS.exists()),
                    reason="the AsyncAPI CLI is not in .cache/npm: deploy/tools/"
                           "validate_contracts.sh (make lint) installs it")
def test_asyncapi_cli_accepts_the_document_and_rejects_a_broken_copy(tmp_path):
    env = {**os.environ, "ASYNCAPI_METRICS_CONFIG_PATH": str(CLI_SETTINGS),
           "NODE_CONFIG_ENV": "development", "SUPPRESS_NO_CONFIG_WARNING": "1"}
    # A copy with what it references (the open-data schema) at the same relative place.
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    schema = "services/publication/open-data.schema.json"
    (tmp_path / schema).parent.mkdir(parents=True)
    shutil.copy(REPO / schema, tmp_path / schema)
    copied = tmp_path / "docs" / "asyncapi.yaml"

    def cli() -> subprocess.CompletedProcess:
        return subprocess.run([str(ASYNCAPI_CLI), "validate", str(copied), "--fail-severity",
                               "warn"], env=env, capture_output=True, text=True, timeout=120)

    valid = cli()
    assert valid.returncode == 0, valid.stdout + valid.stderr

    text = copied.read_text()
    copied.write_text(text.replace("messages/policy.drafting.v1.DraftRegistered'",
                                   "messages/policy.drafting.v1.DraftRegisterd'", 1))
    broken = cli()
    assert broken.returncode != 0
    assert "policy.drafting.v1.DraftRegisterd' does not exist" in broken.stdout + broken.stderr


needs_buf = pytest.mark.skipif(not BUF.exists(),
                               reason="buf is not in .cache/bin: `make lint` builds it")
EVENTS = Path("protos/policy/drafting/v1/events.proto")


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=contracts", "-c", "user.email=contracts@example.org",
                    "-c", "commit.gpgsign=false", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture
def protos_repo(tmp_path) -> Path:
    """A git repository whose first commit is a copy of protos/."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "protos", repo / "protos")
    git(repo, "init", "-q")
    git(repo, "add", "protos")
    git(repo, "commit", "-q", "-m", "protos as they are")
    return repo


def change(repo: Path, old: str, new: str) -> None:
    path = repo / EVENTS
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))
    git(repo, "commit", "-q", "-am", f"{old.strip()} -> {new.strip()}")


def buf_breaking(repo: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(BUF_BREAKING)], cwd=repo,
                          env={**os.environ, "BUF": str(BUF)}, capture_output=True, text=True,
                          timeout=120)


@needs_buf
@pytest.mark.parametrize("old, new, named", [
    ("  string summary = 4;\n", "", 'field "4" with name "summary" on message "DraftRegistered"'),
    ("  string title = 3;\n", "  string title = 13;\n",
     'field "3" with name "title" on message "DraftRegistered"'),
])
def test_buf_breaking_fails_on_a_removed_or_renumbered_field(protos_repo, old, new, named):
    change(protos_repo, old, new)

    result = buf_breaking(protos_repo)
    assert result.returncode == 1, result.stdout + result.stderr
    assert named in result.stdout
    assert "breaks compatibility with" in result.stderr


@needs_buf
def test_buf_breaking_passes_an_added_field(protos_repo):
    change(protos_repo, "  int32 version = 12;\n", "  int32 version = 12;\n  string note = 13;\n")

    result = buf_breaking(protos_repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no breaking change against" in result.stdout


@needs_buf
def test_buf_breaking_says_it_skipped_without_a_previous_commit(protos_repo, tmp_path):
    first = buf_breaking(protos_repo)
    assert first.returncode == 0
    assert "SKIPPED buf breaking: HEAD is the first commit" in first.stderr

    change(protos_repo, "  string summary = 4;\n", "")
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{protos_repo}", str(shallow)],
                   check=True, capture_output=True)
    result = buf_breaking(shallow)
    assert result.returncode == 0
    assert "SKIPPED buf breaking: this shallow clone lacks HEAD's parent commit" in result.stderr
