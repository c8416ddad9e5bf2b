"""What a service logs on SIGUSR1: where each task and thread waits."""

import asyncio
import logging
import re

from policykit.runtime import log_waits


async def publish_after(gate: asyncio.Event) -> None:
    await wait_for_kafka(gate)


async def wait_for_kafka(gate: asyncio.Event) -> None:
    await gate.wait()


async def test_each_task_is_logged_with_the_coroutines_it_waits_in(caplog):
    gate = asyncio.Event()
    relay = asyncio.create_task(publish_after(gate), name="relay")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="policykit.runtime"):
        log_waits()
    gate.set()
    await relay
    waits = [r.getMessage() for r in caplog.records if r.getMessage().startswith("task relay ")]
    assert len(waits) == 1
    assert re.search(r"^task relay waits in publish_after \([\w.]*test_runtime:\d+\)", waits[0])
    assert re.search(r" > wait_for_kafka \([\w.]*test_runtime:\d+\)", waits[0])
    assert " > wait (asyncio.locks:" in waits[0]  # the awaited asyncio.Event
    threads = [r.getMessage() for r in caplog.records if r.getMessage().startswith("thread ")]
    assert any(line.startswith("thread ") and "is in log_waits (policykit.runtime:" in line
               for line in threads)  # this thread, innermost frame first
