"""The open-data publisher against the real PostgreSQL: a change that commits while its
regulation's document is being read is not lost, however the two interleave."""

import asyncio
import json
from datetime import datetime, timezone

from policy.common.v1 import common_pb2
from policy.drafting.v1 import events_pb2 as drafting
from policy.publication.v1 import publication_service_pb2 as api
from services.publication import changes, open_data, storage
from services.publication.publishing import OPEN_DATA_TOPIC
from services.publication.settings import PublicationSettings

NOW = datetime(2026, 1, 5, tzinfo=timezone.utc)


async def a_promulgated_regulation(pool, regulation_id: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await storage.register(conn, drafting.DraftRegistered(
            regulation_id=regulation_id, regulation_type=common_pb2.REGULATION_TYPE_DECREE,
            title="Nghị định về đất trồng lúa", lead_agency_id="bnnmt"), NOW)
        await storage.set_status(conn, regulation_id, api.REGULATION_STATUS_ADOPTED, NOW)
        request = api.RecordPromulgationRequest(
            regulation_id=regulation_id, document_number="112/2026/NĐ-CP", signer="Trần Hồng Hà")
        request.signed_at.FromDatetime(NOW)
        await changes.promulgate(conn, request, PublicationSettings.from_env({}), NOW)


async def retitle(pool, regulation_id: str, title: str) -> None:
    """What a handler does with a DraftRevised: changes the view, marks the document."""
    async with pool.acquire() as conn, conn.transaction():
        await storage.revise(conn, drafting.DraftRevised(regulation_id=regulation_id,
                                                         title=title), NOW)
        await storage.mark_changed(conn, regulation_id)


async def blocked_or_done(pool, change: asyncio.Task) -> None:
    """Waits until the change has committed or is waiting for a lock."""
    async with pool.acquire() as conn:
        while not change.done() and not await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database() AND query LIKE '%open_data_pending%'"):
            await asyncio.sleep(0.01)


async def latest_title(pool, regulation_id: str) -> str:
    async with pool.acquire() as conn:
        value = await conn.fetchval(
            "SELECT value FROM outbox WHERE topic = $1 AND record_key = $2"
            " ORDER BY id DESC LIMIT 1", OPEN_DATA_TOPIC, regulation_id.encode())
    return json.loads(value)["title"]


async def test_a_change_made_while_its_document_is_read_is_published_by_the_next_pass(
        pool, monkeypatch):
    await a_promulgated_regulation(pool, "reg-1")
    read = open_data.published_document
    changing: list[asyncio.Task] = []

    async def read_while_a_handler_retitles(conn, regulation_id):
        document = await read(conn, regulation_id)
        changing.append(asyncio.create_task(retitle(pool, regulation_id, "Tên mới")))
        await asyncio.wait_for(blocked_or_done(pool, changing[0]), 30)
        return document

    monkeypatch.setattr(open_data, "published_document", read_while_a_handler_retitles)
    assert await open_data.publish_next(pool)
    await asyncio.wait_for(changing[0], 30)
    assert await latest_title(pool, "reg-1") == "Nghị định về đất trồng lúa"

    monkeypatch.setattr(open_data, "published_document", read)
    assert await open_data.publish_next(pool)
    assert await latest_title(pool, "reg-1") == "Tên mới"
    assert not await open_data.publish_next(pool)
