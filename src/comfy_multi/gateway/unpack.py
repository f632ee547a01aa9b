"""Gzip request bodies unpacked piece by piece within a byte budget, off the event loop.

A few kB of gzip can stand for gigabytes; unpacking it whole before checking
the size would stall every request and take the memory with it. Unpacking runs
on one dedicated thread (bodies that need it are rare: a worker's object_info),
so however many arrive at once, at most one budget's worth is held at a time.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from comfy_multi.errors import BadRequest, TooLarge

T = TypeVar("T")

STEP = 1024 * 1024  # unpacked bytes per step: the budget is checked this often
GZIP_WBITS = zlib.MAX_WBITS | 16

_unpacker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="unpack")


def gunzip(packed: bytes, budget: int, what: str = "the body") -> bytes:
    """The unpacked bytes of a gzip body (several members allowed), or
    ``TooLarge`` as soon as they pass ``budget``, or ``BadRequest``."""
    if not packed:
        raise BadRequest(f"{what} is empty")
    out: list[bytes] = []
    size = 0
    rest = packed
    try:
        while rest:
            inflater = zlib.decompressobj(GZIP_WBITS)
            while not inflater.eof:
                piece = inflater.decompress(rest, STEP)
                if not piece and inflater.unconsumed_tail == rest:
                    raise BadRequest(f"{what} is cut short: its gzip stream does not end")
                rest = inflater.unconsumed_tail
                size += len(piece)
                if size > budget:
                    raise TooLarge(f"{what} unpacks to more than the {budget:,} bytes allowed")
                out.append(piece)
            rest = inflater.unused_data
    except zlib.error:
        raise BadRequest(f"{what} is not valid gzip") from None
    return b"".join(out)


async def off_loop(work: Callable[[], T]) -> T:
    """Run CPU-heavy body work on the unpacking thread, one job at a time."""
    return await asyncio.get_running_loop().run_in_executor(_unpacker, work)
