"""After a regulation's whole lifecycle (the demo, `make demo`, run against this test's own
services) plus comments carrying contact details — and personal data written into the comment
text itself — no topic holds a phone number, an e-mail address or an ID-card number: contact
details stay in the consultation database, topics carry pseudonyms (issue #9, DESIGN.md). The
services authenticate callers as `make up` does (AUTH_MODE=tokens, deploy/local/tokens.yaml),
so the demo also shows that each of its steps is taken by an organisation allowed to."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import grpc
import pytest
from kafka import KafkaConsumer, TopicPartition

from policy.common.v1 import common_pb2
from policy.consultation.v1 import consultation_service_pb2 as consultation_api
from policy.consultation.v1 import consultation_service_pb2_grpc as consultation_grpc
from policy_sdk import DraftingClient
from deploy.local.demo import dev_tokens
from policykit.topics import load as load_topics
from tests.support import (PYTHONPATH, REPO, eventually, own_broker, own_database,
                           running_platform)

PORTAL = [("authorization", f"Bearer {dev_tokens()['vpcp.portal']}")]
PHONE = "0912345678"
EMAIL = "tran.thi.b@example.vn"
ID_CARD = "001203004567"  # a 12-digit citizen identity card number (CCCD)
# A number stands on its own: not inside a UUID, a hex digest or a longer number.
ALONE_BEFORE, ALONE_AFTER = rb"(?<![0-9A-Za-z-])", rb"(?![0-9A-Za-z-])"
PATTERNS = {
    "e-mail address": re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    # Vietnamese mobile and landline numbers, national or +84 form.
    "phone number": re.compile(ALONE_BEFORE + rb"(?:\+84|0)(?:[35789][0-9]{8}|2[0-9]{9})"
                               + ALONE_AFTER),
    # CCCD (12 digits) and the older CMND (9 digits).
    "ID-card number": re.compile(ALONE_BEFORE + rb"(?:[0-9]{12}|[0-9]{9})" + ALONE_AFTER),
}


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory) -> str:
    """A broker of this test's own: the scan reads every topic whole."""
    with own_broker(tmp_path_factory.mktemp("privacy-kafka")) as servers:
        yield servers


@pytest.fixture(scope="module")
def platform(bootstrap, database_url, tmp_path_factory):
    with own_database(database_url, "privacy") as url, running_platform(
            bootstrap, url, tmp_path_factory.mktemp("privacy"),
            extra_env={"AUTH_MODE": "tokens"}) as services:
        yield services


def run_demo(platform, bootstrap: str) -> str:
    env = {**os.environ, "PYTHONPATH": PYTHONPATH, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           **{f"POLICYCTL_{name.upper()}_TARGET": s.grpc_target for name, s in platform.items()}}
    done = subprocess.run([sys.executable, "-m", "deploy.local.demo"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return re.search(r"regulation_id\s+(\S+)", done.stdout).group(1)


def comment_with_personal_data(target: str, regulation_id: str) -> None:
    with grpc.insecure_channel(target) as channel:
        stub = consultation_grpc.ConsultationServiceStub(channel)
        for n, contact in enumerate([
                consultation_api.ContactDetails(name="Trần Thị B", email=EMAIL, phone=PHONE),
                consultation_api.ContactDetails(phone="+84987654321",
                                                organisation="Hợp tác xã Nông nghiệp Đồng Tâm")]):
            stub.SubmitComment(consultation_api.SubmitCommentRequest(
                comment=consultation_api.Comment(
                    idempotency_key=f"privacy-{regulation_id}-{n}", regulation_id=regulation_id,
                    stakeholder_type=common_pb2.STAKEHOLDER_TYPE_CITIZEN, province_code="02",
                    text=f"Tôi là Trần Thị B, CCCD {ID_CARD}, điện thoại {PHONE}, email {EMAIL}: "
                         "đề nghị bổ sung hỗ trợ tái định cư.",
                    contact=contact)), metadata=PORTAL, timeout=10)


def every_record(bootstrap: str, topics: list[str]) -> list:
    """Every record of the topics, read to their current ends."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(t, p) for t in topics
                      for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records = []
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def second_draft_in_consultation(platform) -> str:
    """The demo adopted its draft, closing the consultation: comments go to another one."""
    with DraftingClient(platform["drafting"].grpc_target, token=dev_tokens()["bnnmt"]) as drafts:
        draft = drafts.register_draft(
            regulation_type="REGULATION_TYPE_DECREE", title="Nghị định về hỗ trợ tái định cư",
            lead_agency_id="bnnmt", impact_level="IMPACT_LEVEL_MEDIUM",
            affected_province_codes=["02"])
        drafts.submit_for_consultation(draft.regulation_id)
    with grpc.insecure_channel(platform["consultation"].grpc_target) as channel:
        stub = consultation_grpc.ConsultationServiceStub(channel)

        def opened():
            try:
                return stub.GetConsultation(consultation_api.GetConsultationRequest(
                    regulation_id=draft.regulation_id), metadata=PORTAL, timeout=5).consultation
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    raise
        eventually(opened, what="the second consultation to open")
    return draft.regulation_id


def test_no_topic_carries_personal_data(platform, bootstrap):
    demo_regulation = run_demo(platform, bootstrap)
    regulation_id = second_draft_in_consultation(platform)
    comment_with_personal_data(platform["consultation"].grpc_target, regulation_id)
    declaration = load_topics()
    topics = [*declaration.topics, *declaration.dead_letter_topics.values()]

    def received() -> list:
        records = every_record(bootstrap, topics)
        ours = [r for r in records if r.key == regulation_id.encode()
                and dict(r.headers).get("ce_type") == b"policy.consultation.v1.CommentReceived"]
        return records if len(ours) == 2 else []
    records = eventually(received, what="the two comments' CommentReceived events")
    assert any(r.key == demo_regulation.encode() for r in records)

    found = []
    for record in records:
        for where, raw in [("key", record.key or b""), ("value", record.value or b""),
                           *((f"header {name}", value or b"") for name, value in record.headers)]:
            for kind, pattern in PATTERNS.items():
                for match in pattern.finditer(raw):
                    found.append(f"{record.topic}[{record.partition}]@{record.offset} {where}: "
                                 f"{kind} {match.group().decode(errors='replace')!r}")
    assert not found, "\n".join(found[:20])
    print(f"scanned {len(records)} records on {len(topics)} topics: no personal data")


def test_the_scan_finds_what_it_looks_for():
    text = f"CCCD {ID_CARD}, điện thoại {PHONE} / +84987654321, email {EMAIL}".encode()
    assert {kind for kind, pattern in PATTERNS.items() if pattern.search(text)} == set(PATTERNS)
    assert not any(p.search(b"ce_id 3207386-98a1-4f00-9e1b-400692412345") for p in PATTERNS.values())
