"""The platform's Kafka clients against an authenticating listener: a broker of its own with a
SASL_PLAINTEXT listener (SCRAM-SHA-512) that authorizes by ACLs only, holding the ACLs of the
generated KafkaUsers (k8s/base/kafka/users.yaml) of the users logged in as, and every kind of
client connecting with the KAFKA_SECURITY_PROTOCOL / KAFKA_SASL_* settings: policykit's
producer, consumer, admin and topic reader, a Faust service (drafting), an aiokafka consumer
(evaluation's delivery reports), policyctl as a service and as policy-ops; then a wrong
password at a service's start, and what a password rotation does to a running client."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import uuid
from datetime import datetime, timezone

import grpc
import pytest
import yaml
from click.testing import CliRunner
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                         ResourcePattern, ResourcePatternFilter, ResourceType,
                         ScramMechanism, UserScramCredentialUpsertion)
from kafka.errors import TopicAuthorizationFailedError

from deploy.local.kafka_broker import KafkaBroker, ensure_jars, free_port
from policy.common.v1 import common_pb2
from policy.drafting.v1 import drafting_service_pb2_grpc as drafting_grpc
from policy.drafting.v1 import events_pb2 as drafting_events
from policykit.config import ConfigError
from policykit.envelope import Event, from_record, new_event, to_record
from policykit.kafka_io import EventConsumer, create_producer, publish
from policykit.kafka_security import KafkaSecurity
from policykit.runtime import check_login
from policykit.topic_reader import TopicReader
from policykit.topics import Declaration, TopicSpec, ensure_topics
from policyctl import errors
from policyctl.cli import cli
from services.drafting.tests.helpers import TITLE, register_request
from services.evaluation.tests.helpers import delivery
from tests.support import PYTHONPATH, REPO, eventually, own_database, read_topic, start_service

# Generated KafkaUsers the tests log in as.
USERS = ("policy-drafting", "policy-evaluation", "policy-ops")
# Users of the tests' own, for policykit's clients and a password rotation, with every right
# on topics and groups named auth-test.*.
TESTER, ROTATED = "auth-tester", "auth-rotated"
USERS_YAML = REPO / "k8s" / "base" / "kafka" / "users.yaml"
DELIVERY_REPORTS = "policy.delivery-reports.v1"
DELIVERY_GROUP = "evaluation.delivery-reports"
PATTERNS = {"literal": ACLResourcePatternType.LITERAL, "prefix": ACLResourcePatternType.PREFIXED}


def allow(principal: str, resource_type: str, name: str, pattern: str, operation: str) -> ACL:
    return ACL(f"User:{principal}", "*", ACLOperation[operation.upper()], ACLPermissionType.ALLOW,
               ResourcePattern(ResourceType[resource_type.upper()], name, PATTERNS[pattern]))


def generated_acls(users: list[str]) -> list[ACL]:
    """What Strimzi's user operator creates for these KafkaUsers of the committed manifests."""
    return [allow(user["metadata"]["name"], entry["resource"]["type"],
                  entry["resource"]["name"], entry["resource"]["patternType"], operation)
            for user in yaml.safe_load_all(USERS_YAML.read_text("utf-8"))
            if user["metadata"]["name"] in users
            for entry in user["spec"]["authorization"]["acls"]
            for operation in entry["operations"]]


@pytest.fixture(scope="module")
def passwords() -> dict[str, str]:
    # URL-safe characters: the storage tool's --add-scram syntax cannot carry , or ".
    return {name: secrets.token_urlsafe(18) for name in (*USERS, TESTER, ROTATED)}


@pytest.fixture(scope="module")
def broker(tmp_path_factory, passwords) -> KafkaBroker:
    """The platform's topics, created over the PLAINTEXT listener (its ANONYMOUS principal is
    a super user, like the topic operator), and the ACLs; the users log in on the SASL one."""
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka-sasl"), free_port(), free_port(),
                         ensure_jars(REPO / ".cache"), sasl_port=free_port(),
                         scram_users=passwords)
    broker.start()
    try:
        ensure_topics(broker.bootstrap_servers)
        acls = [*generated_acls(list(USERS)),
                *(allow(user, kind, "auth-test.", "prefix", "All")
                  for user in (TESTER, ROTATED) for kind in ("topic", "group"))]
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        try:
            assert admin.create_acls(acls)["failed"] == []
            everything = ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                   ResourcePatternFilter(ResourceType.ANY, None,
                                                         ACLResourcePatternType.ANY))
            # The broker's authorizer applies them from the metadata log, a moment later.
            eventually(lambda: len(admin.describe_acls(everything)[0]) == len(acls),
                       what="the ACLs in the broker's authorizer")
        finally:
            admin.close()
        yield broker
    finally:
        broker.stop()


def security(passwords: dict[str, str], user: str) -> KafkaSecurity:
    return KafkaSecurity.from_env({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                                   "KAFKA_SASL_USERNAME": user,
                                   "KAFKA_SASL_PASSWORD": passwords[user]})


def service_env(broker: KafkaBroker, user: str, database_url: str, **extra: str) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": broker.sasl_bootstrap_servers,
            "DATABASE_URL": database_url, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": user,
            "OUTBOX_POLL_INTERVAL_MS": "20", **extra}


@pytest.fixture(scope="module")
def database(database_url) -> str:
    with own_database(database_url, "kafka_auth") as url:
        yield url


@pytest.fixture(scope="module")
def drafting(broker, passwords, database, tmp_path_factory):
    """The drafting service as policy-drafting, its password in a file as a mounted Secret."""
    folder = tmp_path_factory.mktemp("drafting-sasl")
    password_file = folder / "password"
    password_file.write_text(passwords["policy-drafting"])
    service = start_service("services.drafting", folder, service_env(
        broker, "policy-drafting", database, KAFKA_SASL_PASSWORD_FILE=str(password_file)))
    yield service
    assert service.terminate() == 0


def register_by_intake(broker: KafkaBroker, title: str) -> Event:
    """Produces a DraftRegistered to the intake topic, as a drafting system would."""
    event = new_event(drafting_events.DraftRegistered(
        regulation_id=f"auth-{uuid.uuid4().hex[:8]}", title=title, lead_agency_id="bnnmt",
        regulation_type=common_pb2.REGULATION_TYPE_DECREE,
        impact_level=common_pb2.IMPACT_LEVEL_LOW), "urn:vbpl:bnnmt")
    producer = create_producer(broker.bootstrap_servers)
    try:
        publish(producer, "policy.drafting-intake.v1", event).get(timeout=30)
    finally:
        producer.close()
    return event


def test_policykit_clients_work_with_the_right_credentials(broker, passwords):
    as_tester = security(passwords, TESTER)
    topic = TopicSpec(name=f"auth-test.{uuid.uuid4().hex[:8]}", partitions=2,
                      replication_factor=1, min_insync_replicas=1, retention_ms=-1,
                      cleanup_policy="delete", description="")
    nothing_declared = Declaration(topics={}, dead_letter_topics={}, consumes={})
    assert ensure_topics(broker.sasl_bootstrap_servers, nothing_declared, [topic],
                         security=as_tester) == [topic.name]

    event = new_event(drafting_events.DraftWithdrawn(regulation_id="auth-test", reason="x"),
                      "urn:test")
    producer = create_producer(broker.sasl_bootstrap_servers, as_tester)
    try:
        publish(producer, topic.name, event).get(timeout=30)
    finally:
        producer.close()

    handled = []
    consumer = EventConsumer(broker.sasl_bootstrap_servers, topic.name, [topic.name],
                             f"{topic.name}.dlq", handled.append, security=as_tester)
    try:
        eventually(lambda: consumer.poll_once() or handled, what="the event consumed")
    finally:
        consumer.close()
    assert [e.id for e in handled] == [event.id]

    with TopicReader(broker.sasl_bootstrap_servers, topic.name, security=as_tester) as reader:
        assert [r.value for r in reader.records()] == [event.payload.SerializeToString()]


def test_the_generated_acls_let_a_service_write_its_own_topics_only(broker, passwords):
    producer = create_producer(broker.sasl_bootstrap_servers,
                               security(passwords, "policy-drafting"))
    event = new_event(drafting_events.DraftWithdrawn(regulation_id="acl-test", reason="x"),
                      "urn:test")
    try:
        publish(producer, "policy.drafting.v1", event).get(timeout=30)
        with pytest.raises(TopicAuthorizationFailedError):
            publish(producer, "policy.consultation.v1", event).get(timeout=30)
    finally:
        producer.close()


def test_a_faust_service_serves_and_publishes_over_the_authenticated_listener(
        broker, drafting, passwords):
    with grpc.insecure_channel(drafting.grpc_target) as channel:
        draft = drafting_grpc.DraftingServiceStub(channel).RegisterDraft(
            register_request(), timeout=10).draft
    # Its Faust agent consumes the intake topic and republishes what it accepts.
    intake = register_by_intake(broker, TITLE)

    def published(records) -> set[bytes]:
        return {r.key for r in records} & {draft.regulation_id.encode(),
                                           intake.regulation_id.encode()}

    records = read_topic(broker.bootstrap_servers, ["policy.drafting.v1"],
                         lambda rs: len(published(rs)) == 2)
    [republished] = [from_record(r.key, r.value, r.headers) for r in records
                     if r.key == intake.regulation_id.encode()]
    assert republished.id == intake.id


def test_aiokafka_consumes_delivery_reports_as_the_evaluation_user(
        broker, passwords, database, tmp_path):
    service = start_service("services.evaluation", tmp_path, service_env(
        broker, "policy-evaluation", database,
        KAFKA_SASL_PASSWORD=passwords["policy-evaluation"],
        EVALUATION_DASHBOARD_PORT=str(free_port())))
    try:
        report = new_event(delivery("auth-delivery", "cao-bang", common_pb2.CHANNEL_SMS, 3,
                                    datetime.now(timezone.utc)), "urn:sms")
        key, value, headers = to_record(report)
        producer = create_producer(broker.bootstrap_servers)
        try:
            sent = producer.send(DELIVERY_REPORTS, key=key, value=value,
                                 headers=headers).get(timeout=30)
        finally:
            producer.close()
        partition = TopicPartition(DELIVERY_REPORTS, sent.partition)
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        try:
            def committed() -> bool:
                offsets = admin.list_group_offsets({DELIVERY_GROUP: [partition]})
                found = offsets[DELIVERY_GROUP].get(partition)
                return found is not None and found.offset > sent.offset

            eventually(committed, what="the report's offset committed by the aiokafka consumer")
        finally:
            admin.close()
    finally:
        assert service.terminate() == 0


def test_a_wrong_password_stops_a_service_at_start(broker, database, tmp_path):
    log = tmp_path / "drafting.log"
    env = service_env(broker, "policy-drafting", database, KAFKA_SASL_PASSWORD="wrong")
    with log.open("wb") as out:
        process = subprocess.run([sys.executable, "-m", "services.drafting"], cwd=REPO,
                                 stdout=out, stderr=subprocess.STDOUT, timeout=180,
                                 env={**os.environ, "AUTH_MODE": "none", **env,
                                      "PYTHONPATH": PYTHONPATH})
    output = log.read_text()
    assert process.returncode == 2, output
    assert output.startswith("drafting: configuration error: KAFKA_SASL_USERNAME/"
                             "KAFKA_SASL_PASSWORD: Kafka at "), output
    assert "refused policy-drafting (SCRAM-SHA-512)" in output, output


def login_as(monkeypatch, broker: KafkaBroker, user: str, **password: str) -> None:
    """The variables a service's pod has, for policyctl: KAFKA_SASL_PASSWORD or _FILE."""
    for name, value in {"KAFKA_BOOTSTRAP_SERVERS": broker.sasl_bootstrap_servers,
                        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                        "KAFKA_SASL_USERNAME": user, **password}.items():
        monkeypatch.setenv(name, value)


def policyctl(*arguments: str):
    return CliRunner().invoke(cli, ["--json", *arguments])


def test_policyctl_tails_topics_as_the_user_of_its_environment(broker, drafting, passwords,
                                                               monkeypatch):
    login_as(monkeypatch, broker, "policy-evaluation",
             KAFKA_SASL_PASSWORD=passwords["policy-evaluation"])
    result = policyctl("events", "tail", "policy.drafting.v1", "--from-beginning", "--no-follow")
    assert result.exit_code == 0, result.output
    assert "policy.drafting.v1.DraftRegistered" in result.stdout
    # The evaluation user may not read the intake topic: refused, and said so.
    result = policyctl("events", "tail", "policy.drafting-intake.v1", "--from-beginning",
                       "--no-follow")
    assert result.exit_code == errors.DENIED, result.output
    assert "PERMISSION_DENIED" in result.stderr


def test_policyctl_lists_dead_letters_as_policy_ops(broker, drafting, passwords, monkeypatch,
                                                    tmp_path):
    # The drafting service parks an invalid intake event, with its own user's rights.
    rejected = register_by_intake(broker, title="")
    password_file = tmp_path / "password"
    password_file.write_text(passwords["policy-ops"] + "\n")
    login_as(monkeypatch, broker, "policy-ops", KAFKA_SASL_PASSWORD_FILE=str(password_file))

    def parked() -> list[dict]:
        result = policyctl("dead-letters", "list", "drafting")
        assert result.exit_code == 0, result.output
        return [letter for letter in json.loads(result.stdout)["dead_letters"]
                if letter["ce_id"] == rejected.id]

    [letter] = eventually(parked, what="the rejected event among the dead letters")
    assert letter["reason"] == "title: must not be empty"


def test_a_rotated_password_refuses_new_logins_not_open_connections(broker, passwords):
    """What docs/runbook.md says of a rotation: Kafka checks a password when a connection
    logs in, so a running client keeps its connections and only new logins are refused."""
    topic = f"auth-test.rotation-{uuid.uuid4().hex[:8]}"
    old = security(passwords, ROTATED)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    producer = create_producer(broker.sasl_bootstrap_servers, old)
    try:
        admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}},
                            wait_for_metadata=True)
        event = new_event(drafting_events.DraftWithdrawn(regulation_id="rotation", reason="x"),
                          "urn:test")
        publish(producer, topic, event).get(timeout=30)
        assert admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
            ROTATED, ScramMechanism.SCRAM_SHA_512, secrets.token_urlsafe(18))]) == {ROTATED: None}

        def refused() -> bool:
            try:
                asyncio.run(check_login(broker.sasl_bootstrap_servers, old))
            except ConfigError:
                return True
            return False

        eventually(refused, what="the old password refused")
        publish(producer, topic, event).get(timeout=30)  # on the connection opened before
    finally:
        producer.close()
        admin.close()
