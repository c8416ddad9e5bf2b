"""Durable timers against the real PostgreSQL, driven by a fake clock: never early, once,
whichever worker or process gets to them, and not after their regulation is repealed."""

import asyncio
from datetime import datetime, timedelta, timezone

from prometheus_client import REGISTRY

from policy.common.v1 import common_pb2
from policy.drafting.v1 import events_pb2 as drafting
from policy.publication.v1 import events_pb2 as publication
from policy.publication.v1 import publication_service_pb2 as api
from policykit import db
from services.publication import storage, timers

EFFECTIVE_AT = datetime(2026, 3, 1, tzinfo=timezone.utc)
SCHEDULED_AT = EFFECTIVE_AT - timedelta(days=45)


async def schedule_effective(pool, regulation_id: str, fire_at: datetime = EFFECTIVE_AT,
                             scheduled_at: datetime = SCHEDULED_AT) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await storage.register(conn, drafting.DraftRegistered(
            regulation_id=regulation_id, regulation_type=common_pb2.REGULATION_TYPE_DECREE,
            title="Nghị định về đất trồng lúa", lead_agency_id="bnnmt"), SCHEDULED_AT)
        effective = publication.RegulationEffective(regulation_id=regulation_id)
        effective.effective_at.FromDatetime(fire_at)
        await timers.schedule(conn, regulation_id, timers.EFFECTIVE, fire_at, effective,
                              scheduled_at)


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0


async def emitted(pool, event_type: str = "RegulationEffective") -> list:
    async with pool.acquire() as conn:
        return await conn.fetch(
            "SELECT o.event_id, t.regulation_id, t.occurred_at FROM outbox o"
            " JOIN timeline_entries t ON t.event_id = o.event_id::text"
            " WHERE t.event_type = $1", f"policy.publication.v1.{event_type}")


async def test_a_timer_never_fires_before_its_time_and_fires_once(pool):
    await schedule_effective(pool, "reg-1")
    assert await timers.fire_due(pool, EFFECTIVE_AT - timedelta(microseconds=1)) == 0
    assert await emitted(pool) == []

    lateness = "policy_publication_timer_lateness_seconds_sum"
    late_before = sample(lateness, kind=timers.EFFECTIVE)
    assert await timers.fire_due(pool, EFFECTIVE_AT + timedelta(seconds=90)) == 1
    assert await timers.fire_due(pool, EFFECTIVE_AT + timedelta(days=1)) == 0

    [row] = await emitted(pool)
    # The event happened at the timer's time, however late it fired.
    assert (row["regulation_id"], row["occurred_at"]) == ("reg-1", EFFECTIVE_AT)
    assert sample(lateness, kind=timers.EFFECTIVE) - late_before == 90
    async with pool.acquire() as conn:
        regulation = await storage.get_regulation(conn, "reg-1")
        fired_at = await conn.fetchval("SELECT fired_at FROM timers WHERE regulation_id = 'reg-1'")
    assert regulation.status == api.REGULATION_STATUS_EFFECTIVE
    assert fired_at == EFFECTIVE_AT + timedelta(seconds=90)


async def test_a_timer_scheduled_when_already_due_is_late_only_from_then(pool):
    lateness = "policy_publication_timer_lateness_seconds_sum"
    late_before = sample(lateness, kind=timers.EFFECTIVE)
    recorded_at = EFFECTIVE_AT + timedelta(days=3)  # promulgation recorded after the date
    await schedule_effective(pool, "reg-late", scheduled_at=recorded_at)
    assert await timers.fire_due(pool, recorded_at + timedelta(seconds=2)) == 1
    assert sample(lateness, kind=timers.EFFECTIVE) - late_before == 2
    [row] = await emitted(pool)
    assert row["occurred_at"] == EFFECTIVE_AT


async def test_a_fired_timer_stays_fired_for_a_restarted_worker(pool, database_url, schema_name):
    await schedule_effective(pool, "reg-2")
    assert await timers.fire_due(pool, EFFECTIVE_AT) == 1
    await pool.close()
    restarted = await db.create_pool(database_url, schema_name)
    try:
        assert await timers.fire_due(restarted, EFFECTIVE_AT + timedelta(days=30)) == 0
        assert len(await emitted(restarted)) == 1
    finally:
        await restarted.close()


async def test_concurrent_workers_fire_each_timer_once(pool):
    for n in range(40):
        await schedule_effective(pool, f"reg-c{n}", EFFECTIVE_AT + timedelta(seconds=n))
    now = EFFECTIVE_AT + timedelta(hours=1)

    async def worker() -> int:
        fired = 0
        while batch := await timers.fire_due(pool, now, batch_size=3):
            fired += batch
        return fired

    assert sum(await asyncio.gather(*(worker() for _ in range(4)))) == 40
    rows = await emitted(pool)
    assert sorted(r["regulation_id"] for r in rows) == sorted(f"reg-c{n}" for n in range(40))


async def test_cancelled_timers_do_not_fire_and_the_gauges_count_what_waits(pool):
    await schedule_effective(pool, "reg-3")
    await schedule_effective(pool, "reg-4", EFFECTIVE_AT + timedelta(days=10))
    await timers.refresh_gauges(pool, EFFECTIVE_AT + timedelta(minutes=5))
    assert sample("policy_publication_timers_pending") == 2
    assert sample("policy_publication_timers_oldest_due_seconds") == 300

    async with pool.acquire() as conn, conn.transaction():
        assert await timers.cancel(conn, "reg-3", EFFECTIVE_AT) == 1
    assert await timers.fire_due(pool, EFFECTIVE_AT + timedelta(days=30)) == 1
    assert [r["regulation_id"] for r in await emitted(pool)] == ["reg-4"]
    await timers.refresh_gauges(pool, EFFECTIVE_AT + timedelta(days=30))
    assert sample("policy_publication_timers_pending") == 0
    assert sample("policy_publication_timers_oldest_due_seconds") == 0
