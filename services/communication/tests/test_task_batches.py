"""The task engine applying events delivered together, against real PostgreSQL: one
transaction for the batch, all or none, each event exactly once however often delivered."""

from datetime import datetime, timedelta, timezone

import pytest

from policy.common.v1 import common_pb2
from policy.communication.v1 import task_pb2
from policy.consultation.v1 import events_pb2 as consultation
from policy.drafting.v1 import events_pb2 as drafting
from policykit import deferred, jsonlog
from policykit.envelope import new_event
from policykit.kafka_io import RejectedEvent
from policykit.reference import default as reference_data
from services.communication import playbook
from services.communication.__main__ import MIGRATIONS
from services.communication.handlers import TASKS_CREATED, TaskEngine


@pytest.fixture
async def engine(migrated_pool):
    pool = await migrated_pool(MIGRATIONS)
    reference = reference_data()
    return TaskEngine(pool, playbook.load(playbook.DEFAULT_PATH, reference), reference)


def registered(regulation_id: str, agency: str = "bnnmt"):
    payload = drafting.DraftRegistered(
        regulation_id=regulation_id, regulation_type=common_pb2.REGULATION_TYPE_LAW,
        title="Luật Thủy sản (sửa đổi)", lead_agency_id=agency,
        impact_level=common_pb2.IMPACT_LEVEL_HIGH, affected_groups=["ngu-dan"],
        affected_province_codes=["22", "tp-ha-noi"])
    payload.planned_consultation_start.FromDatetime(
        datetime.now(timezone.utc) + timedelta(days=30))
    return new_event(payload, "policy/test")


def opened(regulation_id: str):
    return new_event(consultation.ConsultationOpened(regulation_id=regulation_id,
                                                     consultation_id="c-1"), "policy/test")


async def counts(engine) -> dict[str, int]:
    async with engine.pool.acquire() as conn:
        return {table: await conn.fetchval(f"SELECT count(*) FROM {table}")
                for table in ("inbox", "regulations", "tasks", "outbox", "deferred_events")}


async def test_a_redelivered_batch_changes_nothing(engine):
    # The consultation opened before its registration arrived is deferred, then applied.
    early = opened("reg-b1")
    batch = [early, registered("reg-b1"), registered("reg-b2")]
    await engine.handle_batch(batch + [batch[2]])  # a copy within the batch counts once
    first = await counts(engine)
    assert first["inbox"] == 3 and first["regulations"] == 2 and first["deferred_events"] == 0
    assert first["tasks"] == first["outbox"] > 0

    await engine.handle_batch(batch)
    await engine.handle_batch(batch[1:])
    assert await counts(engine) == first


async def test_a_poison_event_fails_the_whole_batch_then_alone(engine):
    good, poison, after = registered("reg-p1"), registered("reg-p2", "no-such-agency"), \
        opened("reg-p1")
    with pytest.raises(RejectedEvent):
        await engine.handle_batch([good, poison, after])
    assert set((await counts(engine)).values()) == {0}, "a failed batch leaves nothing behind"

    # What policykit.faust_io does next: each alone, the poison one rejected.
    await engine.handle(good)
    with pytest.raises(RejectedEvent):
        await engine.handle(poison)
    await engine.handle(after)
    alone = await counts(engine)
    assert alone["inbox"] == 2 and alone["regulations"] == 1

    await engine.handle_batch([good, after])
    assert await counts(engine) == alone


def tasks_counted() -> float:
    return sum(sample.value for metric in TASKS_CREATED.collect() for sample in metric.samples
               if sample.name.endswith("_total"))


async def test_the_tasks_of_a_batch_that_rolls_back_are_counted_once(engine):
    before = tasks_counted()
    good, poison = registered("reg-m1"), registered("reg-m2", "no-such-agency")
    withdrawn = new_event(drafting.DraftWithdrawn(regulation_id="reg-m1", reason="Rút để sửa"),
                          "policy/test")
    # The withdrawal stores the tasks planned so far before cancelling them; the poison event
    # after it then rolls the whole batch back.
    with pytest.raises(RejectedEvent):
        await engine.handle_batch([good, withdrawn, poison])
    assert tasks_counted() == before

    await engine.handle(good)  # as policykit.faust_io goes on, event by event
    stored = (await counts(engine))["tasks"]
    assert stored > 0 and tasks_counted() == before + stored


async def test_each_event_of_a_batch_is_named_while_it_is_applied(engine, monkeypatch):
    seen = []
    apply = engine.apply

    async def spy(conn, event, emissions):
        seen.append((jsonlog.current_event_id.get(), jsonlog.current_regulation_id.get()))
        await apply(conn, event, emissions)

    monkeypatch.setattr(engine, "apply", spy)
    batch = [registered("reg-c1"), registered("reg-c2")]
    await engine.handle_batch(batch)
    assert seen == [(e.id, e.regulation_id) for e in batch]
    assert jsonlog.current_event_id.get() is None


async def test_a_batch_writes_each_events_tasks_in_order_as_its_own_caller(engine):
    # The withdrawal cancels the tasks its registration created earlier in the same batch.
    first, second = registered("reg-o1"), registered("reg-o2")
    withdrawn = new_event(drafting.DraftWithdrawn(regulation_id="reg-o1", reason="Chưa đủ"),
                          "policy/test")
    await engine.handle_batch([first, second, withdrawn])
    async with engine.pool.acquire() as conn:
        tasks = await conn.fetch("SELECT regulation_id, status, trigger_event_id FROM tasks")
        outbox = await conn.fetchval("SELECT count(*) FROM outbox")
        audited = await conn.fetch("SELECT request_id, action FROM audit_log ORDER BY id")
        withdrawn_flags = dict(await conn.fetch(
            "SELECT regulation_id, withdrawn FROM regulations ORDER BY regulation_id"))
    # Registered and withdrawn in one batch: the row saved with the tasks, then marked.
    assert withdrawn_flags == {"reg-o1": True, "reg-o2": False}
    assert {(t["regulation_id"], t["status"]) for t in tasks} == {
        ("reg-o1", task_pb2.TASK_STATUS_CANCELLED), ("reg-o2", task_pb2.TASK_STATUS_CREATED)}
    cancelled = sum(t["regulation_id"] == "reg-o1" for t in tasks)
    created_by = [t["trigger_event_id"] for t in tasks]
    expected = ([("TaskCreated", first.id)] * created_by.count(first.id)
                + [("TaskCreated", second.id)] * created_by.count(second.id)
                + [("TaskCancelled", withdrawn.id)] * cancelled)
    assert [(row["action"].rpartition(".")[2], row["request_id"]) for row in audited] == expected
    assert outbox == len(expected)


async def test_events_another_replica_defers_during_a_batch_are_applied(engine, monkeypatch):
    registration, early = registered("reg-r1"), opened("reg-r1")
    apply = engine.apply

    async def deferred_meanwhile(conn, event, pending):
        if event.id == registration.id:  # committed by another connection, mid-batch
            async with engine.pool.acquire() as other, other.transaction():
                await deferred.defer(other, early)
        await apply(conn, event, pending)

    monkeypatch.setattr(engine, "apply", deferred_meanwhile)
    await engine.handle_batch([registration])
    async with engine.pool.acquire() as conn:
        triggers = {row["trigger_event_id"] for row in await conn.fetch(
            "SELECT DISTINCT trigger_event_id FROM tasks")}
    assert triggers == {registration.id, early.id}
    assert (await counts(engine))["deferred_events"] == 0


async def test_tasks_planned_again_are_neither_stored_nor_announced_twice(engine):
    # The inbox keeps a redelivery from being applied; were it applied (its inbox row gone),
    # the tasks it plans exist already: one task each, one TaskCreated each.
    stored, fresh = registered("reg-t1"), registered("reg-t2")
    await engine.handle_batch([stored])
    first = await counts(engine)
    async with engine.pool.acquire() as conn:
        await conn.execute("DELETE FROM inbox WHERE event_id = $1", stored.id)
    await engine.handle_batch([stored, fresh])
    after = await counts(engine)
    assert after["tasks"] == after["outbox"] == 2 * first["tasks"] > 0
    async with engine.pool.acquire() as conn:
        announced = await conn.fetch("SELECT value FROM outbox")
    assert len({row["value"] for row in announced}) == after["outbox"]


async def test_a_revision_replaces_what_is_known_of_its_regulation(engine):
    await engine.handle_batch([registered("reg-r1")])
    revised = new_event(drafting.DraftRevised(regulation_id="reg-r1",
                                              title="Luật Thủy sản (sửa đổi lần hai)"),
                        "policy/test")
    await engine.handle_batch([revised])
    async with engine.pool.acquire() as conn:
        title = await conn.fetchval("SELECT title FROM regulations WHERE regulation_id = $1",
                                    "reg-r1")
    assert title == "Luật Thủy sản (sửa đổi lần hai)"
