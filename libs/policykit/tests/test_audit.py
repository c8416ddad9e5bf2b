"""The audit log against a real PostgreSQL server: a row per change, in its transaction, who
made it and through which request, append-only, and no personal data."""

import asyncio
import json
import uuid

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from policy.communication.v1 import events_pb2 as communication
from policy.communication.v1 import task_pb2
from policy.consultation.v1 import events_pb2 as consultation
from policy.drafting.v1 import events_pb2 as drafting
from policykit import audit, auth, db, jsonlog
from policykit.envelope import new_event
from policykit.grpc_server import REQUEST_ID, GrpcServer
from policykit.outbox import enqueue
from policykit.tests.test_outbox import pool  # noqa: F401 (a fixture: a migrated schema's pool)

AGENCY = auth.Principal("bnnmt", frozenset({"drafting-agency"}), "token")
REGISTER = "/policy.drafting.v1.DraftingService/RegisterDraft"


async def rows(pool) -> list[dict]:
    async with pool.acquire() as conn:
        return [dict(row) for row in await conn.fetch("SELECT * FROM audit_log ORDER BY id")]


def registered(regulation_id: str = "reg-1"):
    return new_event(drafting.DraftRegistered(
        regulation_id=regulation_id, title="Luật Đất đai (sửa đổi)", lead_agency_id="btnmt"),
        "policy/test")


async def test_a_change_is_recorded_in_its_transaction_or_not_at_all(pool, schema_name):
    rolled_back, committed = registered(), registered()
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, "policy.drafting.v1", rolled_back)
            raise RuntimeError("the state change failed")
    async with pool.acquire() as conn, conn.transaction():
        await enqueue(conn, "policy.drafting.v1", committed)

    [row] = await rows(pool)
    # Outside a call and an event: the service's own timer.
    assert (row["actor"], row["actor_roles"], row["via"], row["request"]) == (
        f"service:{schema_name}", [], "timer", None)
    assert (row["action"], row["subject"], row["event_ids"]) == (
        "policy.drafting.v1.DraftRegistered", "reg-1", [uuid.UUID(committed.id)])
    assert json.loads(row["detail"]) == {"lead_agency_id": "btnmt"}


async def test_recording_outside_a_transaction_is_refused(pool):
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="in the transaction"):
            await audit.record(conn, "TimerCancelled", "reg-1")


@pytest.mark.parametrize("statement", [
    "UPDATE audit_log SET actor = 'someone-else'",
    "UPDATE audit_log SET actor = 'x' WHERE false",
    "DELETE FROM audit_log",
    "TRUNCATE audit_log",
])
async def test_rows_are_never_changed_or_removed(pool, statement):
    async with pool.acquire() as conn, conn.transaction():
        await audit.record(conn, "TimerCancelled", "reg-1")
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError,
                           match=r"audit_log is append-only: (UPDATE|DELETE|TRUNCATE) refused"):
            await conn.execute(statement)
    assert len(await rows(pool)) == 1


async def test_a_grpc_caller_and_its_request_are_recorded(pool):
    call = auth.Call(REGISTER, "req-7f3a", "key-1")
    async with pool.acquire() as conn, conn.transaction():
        with auth.calling_as(AGENCY, call):
            await enqueue(conn, "policy.drafting.v1", registered())
        with auth.calling_as(auth.UNCHECKED, auth.Call(REGISTER, "req-2")):
            await audit.record(conn, "DraftRegistered", "reg-2")

    agency, unchecked = await rows(pool)
    assert {k: agency[k] for k in ("actor", "actor_roles", "authenticated_by", "via", "request",
                                   "request_id", "idempotency_key")} == {
        "actor": "bnnmt", "actor_roles": ["drafting-agency"], "authenticated_by": "token",
        "via": "grpc", "request": REGISTER, "request_id": "req-7f3a", "idempotency_key": "key-1"}
    assert (unchecked["actor"], unchecked["authenticated_by"], unchecked["idempotency_key"]) == (
        "anonymous", "none", None)
    # A row without detail or events (NULL, an empty array), and one with both.
    assert (unchecked["detail"], unchecked["event_ids"]) == (None, [])
    assert agency["detail"] is not None and len(agency["event_ids"]) == 1


async def test_an_event_handler_records_the_event_it_handles(pool, schema_name):
    task = new_event(communication.TaskCreated(regulation_id="reg-1", task=task_pb2.Task(
        task_id="task-1", regulation_id="reg-1", owner_org_id="vtv", title="Tọa đàm")),
        "policy/test")
    event_token = jsonlog.current_event_id.set("evt-1")
    type_token = jsonlog.current_event_type.set("policy.drafting.v1.DraftRegistered")
    try:
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, "policy.communication.v1", task)
    finally:
        jsonlog.current_event_id.reset(event_token)
        jsonlog.current_event_type.reset(type_token)

    [row] = await rows(pool)
    assert (row["actor"], row["via"], row["request"], row["request_id"]) == (
        f"service:{schema_name}", "event", "policy.drafting.v1.DraftRegistered", "evt-1")
    assert (row["action"], json.loads(row["detail"])) == (
        "policy.communication.v1.TaskCreated", {"task_id": "task-1", "owner_org_id": "vtv"})


async def test_a_batch_takes_a_row_per_caller_naming_its_events(pool):
    portal = audit.Caller("grpc", "vpcp.portal", ("portal",), "token", "/SubmitComments", "req-1")
    other = audit.Caller("grpc", "hcm.portal", ("portal",), "token", "/SubmitComment", "req-2")
    comments = [uuid.uuid4() for _ in range(3)]
    async with pool.acquire() as conn, conn.transaction():
        await audit.record_events(conn, "CommentReceived", "reg-1", comments,
                                  callers=[portal, other, portal],
                                  detail={"consultation_id": "cons-1"})
    recorded = await rows(pool)
    assert [(r["event_ids"], r["actor"], r["request_id"]) for r in recorded] == [
        ([comments[0], comments[2]], "vpcp.portal", "req-1"),
        ([comments[1]], "hcm.portal", "req-2")]
    assert {json.loads(r["detail"])["consultation_id"] for r in recorded} == {"cons-1"}


async def test_a_detail_reads_back_as_it_was_given(pool):
    details = [{"task_id": 'chữ "Đ" \\ \u2028', "owner_org_id": "vtv"},  # texts: the escaper
               {"count": 3, "ids": ["a", "b"], "nested": {"x": None}},  # anything else
               {1: "a number as a name"}]
    async with pool.acquire() as conn, conn.transaction():
        for detail in details:
            await audit.record(conn, "Checked", "reg-1", detail=detail)
    assert [json.loads(row["detail"]) for row in await rows(pool)] == [
        details[0], details[1], {"1": "a number as a name"}]


async def test_no_personal_data_is_recorded(pool):
    secrets = ("Phùng Thị Riêng Tư", "rieng.tu@example.vn", "0987654329", "bảo mật giúp tôi")
    received = new_event(consultation.CommentReceived(
        regulation_id="reg-1", consultation_id="cons-1", comment_id="c-1",
        commenter_pseudonym="5f0c" * 8, article_ref=f"Điều 9 — {secrets[3]}"), "policy/test")
    answered = new_event(consultation.CommentAnswered(
        regulation_id="reg-1", consultation_id="cons-1", comment_ids=["c-1"], answer_id="a-1",
        explanation=" ".join(secrets)), "policy/test")
    async with pool.acquire() as conn, conn.transaction():
        with auth.calling_as(AGENCY, auth.Call(REGISTER, "req-1")):
            for event in (received, answered):
                await enqueue(conn, "policy.consultation.v1", event)

    everything = json.dumps(await rows(pool), default=str, ensure_ascii=False)
    assert [json.loads(r["detail"]) for r in await rows(pool)] == [
        {"consultation_id": "cons-1", "comment_id": "c-1"},
        {"consultation_id": "cons-1", "answer_id": "a-1"}]
    for secret in (*secrets, "5f0c" * 8, "Điều 9"):
        assert secret not in everything


async def test_the_server_returns_the_clients_request_id_or_one_it_made():
    server = GrpcServer(0, [], [], host="127.0.0.1")
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)

            async def request_id(metadata=()):
                call = health.Check(health_pb2.HealthCheckRequest(), metadata=metadata)
                await call
                return dict(await call.trailing_metadata())[REQUEST_ID]

            assert await request_id([(REQUEST_ID, "req-from-client")]) == "req-from-client"
            made = {await request_id(), await request_id([(REQUEST_ID, "with space")]),
                    await request_id([(REQUEST_ID, "x" * 201)])}
            assert len(made) == 3 and all(len(made_id) == 32 for made_id in made)
    finally:
        await server.stop(0)


def test_the_command_prints_the_rows_as_json_lines(database_url, schema_name, capsys):
    async def write():
        await db.migrate(database_url, schema_name, [])
        conn = await asyncpg.connect(database_url, server_settings={"search_path": schema_name})
        try:
            async with conn.transaction():
                with auth.calling_as(AGENCY, auth.Call(REGISTER, "req-1")):
                    await audit.record(conn, "DraftRegistered", "reg-a")
                    await audit.record(conn, "DraftRegistered", "reg-b", {"task_id": "t-1"})
        finally:
            await conn.close()
    asyncio.run(write())

    audit.main(["--database-url", database_url, "--schema", schema_name, "--subject", "reg-b",
                "--actor", "bnnmt", "--since", "2020-01-01T00:00:00+00:00"])
    [line] = capsys.readouterr().out.splitlines()
    row = json.loads(line)
    assert (row["service"], row["subject"], row["actor"], row["request_id"], row["detail"]) == (
        schema_name, "reg-b", "bnnmt", "req-1", {"task_id": "t-1"})
