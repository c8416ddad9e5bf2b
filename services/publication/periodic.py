"""Background work that repeats: the timer worker and the open-data publisher."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

log = logging.getLogger(__name__)


async def every(interval_s: float, stop: asyncio.Event, work: Callable[[], Awaitable[None]],
                what: str) -> None:
    """Runs `work` every interval until `stop` is set; a failure is logged and retried at
    the next interval."""
    while not stop.is_set():
        try:
            await work()
        except Exception:
            log.exception("%s failed; retrying", what)
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except asyncio.TimeoutError:
            pass
