"""CPU-heavy work off the event loop, a few at a time.

Validating a large prompt, parsing a large JSON body or re-encoding an image
holds a CPU for a while; on the event loop it would stall every other person's
requests. Each kind of work runs in a worker thread behind its own small
capacity limiter, so a burst of heavy requests queues here instead of piling
up threads and memory.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar, TypeVarTuple

import anyio
import anyio.to_thread

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# how many of each kind may run at once in one gateway process
LIMITS = {
    # prompt validation, large JSON bodies: pure Python, so a second thread would
    # only wait for the GIL, holding another parsed body in memory meanwhile
    "cpu": 1,
    "image": 1,  # decoding and re-encoding images: bounded by memory more than by CPU
}

# limiters belong to an event loop; tests run several gateways, each with its own
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, anyio.CapacityLimiter]]
_limiters = weakref.WeakKeyDictionary()


def _limiter(kind: str) -> anyio.CapacityLimiter:
    per_loop = _limiters.setdefault(asyncio.get_running_loop(), {})
    if kind not in per_loop:
        per_loop[kind] = anyio.CapacityLimiter(LIMITS[kind])
    return per_loop[kind]


_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, list[Any]]]
_turns = weakref.WeakKeyDictionary()


@asynccontextmanager
async def turn(owner: str) -> AsyncIterator[None]:
    """One heavy request per person at a time: a person with ten tabs sending
    huge prompts waits for their own, and holds one parsed body, not ten,
    while everyone else's requests still find a free slot."""
    per_loop = _turns.setdefault(asyncio.get_running_loop(), {})
    entry = per_loop.setdefault(owner, [asyncio.Lock(), 0])
    entry[1] += 1
    try:
        async with entry[0]:
            yield
    finally:
        entry[1] -= 1
        if entry[1] == 0:
            del per_loop[owner]


async def run(kind: str, func: Callable[[*Ts], T], *args: *Ts) -> T:
    """`func(*args)` in a worker thread, waiting for a free slot of `kind`."""
    return await anyio.to_thread.run_sync(func, *args, limiter=_limiter(kind))
