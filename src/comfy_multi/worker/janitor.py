"""ComfyUI-side cleanup after each job, off the path of the next one.

ComfyUI has no route that deletes a file. Once the prompt has left ComfyUI's
queue the janitor deletes its history entry, then either removes the job's
input folder (when the worker was told where ComfyUI's input folder is, i.e.
it shares ComfyUI's filesystem) or overwrites each uploaded file with a 1x1
PNG placeholder, which frees the space.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from comfy_multi.worker.comfyui import ComfyUI
from comfy_multi.worker.errors import ComfyUIRejected, ComfyUIUnavailable
from comfy_multi.worker.inputs import StagedInput

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
MAX_WAIT_SECONDS = 600.0  # a prompt interrupted mid-node may take a while to stop
_JOB_FOLDER = re.compile(r"^cm-[0-9A-Za-z-]+$")


def _placeholder_png() -> bytes:
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)  # 1x1, 8-bit greyscale
    pixels = zlib.compress(b"\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PLACEHOLDER_PNG = _placeholder_png()


@dataclass(frozen=True)
class Leftovers:
    job_id: str
    prompt_id: str | None
    folder: str
    files: list[StagedInput] = field(default_factory=list)


class Janitor:
    def __init__(self, comfy: ComfyUI, input_dir: Path | None = None) -> None:
        self._comfy = comfy
        self._input_dir = input_dir
        self._todo: asyncio.Queue[Leftovers] = asyncio.Queue()

    def add(self, leftovers: Leftovers) -> None:
        if leftovers.prompt_id is None and not leftovers.files:
            return
        self._todo.put_nowait(leftovers)

    async def run(self) -> None:
        while True:
            leftovers = await self._todo.get()
            try:
                await self._clean(leftovers)
            except ComfyUIUnavailable as exc:
                logger.info("job %s: cleanup on ComfyUI skipped: %s", leftovers.job_id, exc)
            finally:
                self._todo.task_done()

    async def finish(self, seconds: float) -> None:
        """Give the pending cleanups up to ``seconds`` (at shutdown)."""
        try:
            async with asyncio.timeout(seconds):
                await self._todo.join()
        except TimeoutError:
            logger.info("cleanup on ComfyUI left unfinished at shutdown")

    async def _clean(self, leftovers: Leftovers) -> None:
        if leftovers.prompt_id is not None:
            await self._wait_gone(leftovers.prompt_id)
            await self._comfy.forget_history(leftovers.prompt_id)
        if not leftovers.files:
            return
        if self._input_dir is not None and _JOB_FOLDER.match(leftovers.folder):
            folder = self._input_dir / leftovers.folder
            await asyncio.to_thread(shutil.rmtree, folder, True)
            logger.debug("job %s: removed %s", leftovers.job_id, folder)
            return
        for staged in leftovers.files:
            await self._blank(leftovers.job_id, staged)

    async def _wait_gone(self, prompt_id: str) -> None:
        """Until ComfyUI no longer runs or holds the prompt (its history is then written)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAX_WAIT_SECONDS
        while loop.time() < deadline:
            if not await self._comfy.in_queue(prompt_id):
                return
            await asyncio.sleep(POLL_SECONDS)

    async def _blank(self, job_id: str, staged: StagedInput) -> None:
        async def body() -> AsyncIterator[bytes]:
            yield PLACEHOLDER_PNG

        try:
            await self._comfy.upload_input(
                filename=staged.name,
                subfolder=staged.subfolder,
                content=body(),
                size=len(PLACEHOLDER_PNG),
                content_type="image/png",
            )
        except ComfyUIRejected as exc:
            logger.debug("job %s: could not blank %s: %s", job_id, staged.comfy_ref, exc)
