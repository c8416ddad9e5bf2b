"""What a service logs on SIGUSR1, where each task and thread waits; and how late its event
loop runs what is due (policy_event_loop_lag_seconds)."""

import asyncio
import logging
import re
import time

from policykit import metrics
from policykit.runtime import log_waits, watch_event_loop


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


def samples_later_than(bound_s: float) -> float:
    """How many samples of the event loop's lag exceeded `bound_s`, one of its bucket bounds."""
    buckets = {float(sample.labels["le"]): sample.value
               for sample in metrics.EVENT_LOOP_LAG.collect()[0].samples
               if sample.name.endswith("_bucket")}
    return buckets[float("inf")] - buckets[bound_s]


async def test_a_loop_held_by_other_work_is_seen_late():
    stop = asyncio.Event()
    late_before = samples_later_than(0.1)
    watching = asyncio.create_task(watch_event_loop(stop, interval_s=0.05))
    await asyncio.sleep(0)  # the watcher starts and sleeps, due 0.05 s later
    time.sleep(0.3)  # work that keeps the loop from waking it for 0.3 s
    deadline = time.monotonic() + 10
    while samples_later_than(0.1) - late_before < 1:  # recorded once the loop is free again
        assert time.monotonic() < deadline, "no late wake-up was recorded"
        await asyncio.sleep(0.01)
    stop.set()
    await watching
    assert samples_later_than(0.1) - late_before >= 1  # woken ≥ 0.25 s late, past the 0.1 bound
