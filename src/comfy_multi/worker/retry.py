"""Retry with capped exponential backoff and jitter, and waiting on a stop event."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from comfy_multi.worker.errors import GatewayUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Delays of ``first * 2**n`` capped at ``cap``, each drawn from its upper half."""

    first: float = 0.2
    cap: float = 5.0

    def delay(self, attempt: int) -> float:
        ceiling = min(self.cap, self.first * 2.0 ** min(attempt, 30))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    backoff: Backoff,
    what: str,
    retry_on: tuple[type[BaseException], ...] = (GatewayUnavailable,),
) -> T:
    """Await ``call()`` until it stops raising one of ``retry_on``; ``what`` names it in logs."""
    attempt = 0
    while True:
        try:
            return await call()
        except retry_on as exc:
            delay = backoff.delay(attempt)
            attempt += 1
            log = logger.warning if attempt in (1, 5) or attempt % 20 == 0 else logger.debug
            log("%s failed (%s); retry %d in %.1f s", what, exc, attempt, delay)
            await asyncio.sleep(delay)


async def until_set(work: Awaitable[T], stop: asyncio.Event) -> tuple[bool, T | None]:
    """Run ``work`` until it finishes or ``stop`` is set.

    Returns ``(True, result)`` when it finished, ``(False, None)`` when it was
    cancelled because ``stop`` was set first.
    """
    if stop.is_set():
        if asyncio.iscoroutine(work):
            work.close()
        return False, None
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(_awaited(work))
        stopped = tg.create_task(stop.wait())
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            stopped.cancel()
        else:
            task.cancel()
    if task.cancelled():
        return False, None
    return True, task.result()


async def _awaited(work: Awaitable[T]) -> T:
    return await work
