"""Output files: streamed from ComfyUI's ``/view`` to the gateway, references rewritten."""

from __future__ import annotations

import logging
import time
from typing import Any

from comfy_multi.wire import ClaimedJob, StoredOutput
from comfy_multi.worker.channel import Channel
from comfy_multi.worker.comfyui import ComfyUI
from comfy_multi.worker.errors import ComfyUIFileMissing, GatewayUnavailable
from comfy_multi.worker.retry import retrying
from comfy_multi.worker.saves import own_subfolder

logger = logging.getLogger(__name__)

FILE_TYPES = ("output", "temp")
LOG_SIZE = 8 * 1024 * 1024  # larger transfers are logged with their speed


def _is_file(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("filename"), str)
        and item.get("type", "output") in FILE_TYPES
    )


class OutputMover:
    """Moves the files a job's ``executed`` outputs name; each file moves once."""

    def __init__(self, job: ClaimedJob, channel: Channel, comfy: ComfyUI) -> None:
        self._job = job
        self._channel = channel
        self._comfy = comfy
        self._moved: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.bytes_moved = 0

    async def rewrite(self, output: dict[str, Any]) -> dict[str, Any]:
        """A copy of one node's ui output with every file moved and renamed.

        Any list of ``{filename, subfolder, type}`` items counts (images, gifs,
        videos, audio, and what custom nodes add). A missing ``temp`` file is
        left out; a missing ``output`` file raises ``ComfyUIFileMissing``.
        """
        rewritten: dict[str, Any] = {}
        for key, value in output.items():
            if not isinstance(value, list) or not any(_is_file(v) for v in value):
                rewritten[key] = value
                continue
            items = []
            for item in value:
                if not _is_file(item):
                    items.append(item)
                    continue
                try:
                    stored = await self._move(item)
                except ComfyUIFileMissing as exc:
                    if exc.kind == "output":
                        raise
                    logger.warning("job %s: %s; left out", self._job.job_id, exc)
                    continue
                items.append({**item, **stored})
            rewritten[key] = items
        return rewritten

    async def _move(self, item: dict[str, Any]) -> dict[str, Any]:
        filename = str(item["filename"])
        subfolder = str(item.get("subfolder") or "")
        kind = str(item.get("type") or "output")
        key = (filename, subfolder, kind)
        if key in self._moved:
            return self._moved[key]

        async def transfer() -> StoredOutput:
            started = time.monotonic()
            async with self._comfy.view(filename, subfolder, kind) as response:
                size = None
                if not response.headers.get("content-encoding"):
                    length = response.headers.get("content-length")
                    size = int(length) if length and length.isdigit() else None
                answer = await self._channel.put_output(
                    self._job,
                    filename=filename,
                    subfolder=own_subfolder(subfolder, self._job.user),
                    kind=kind,
                    content=self._comfy.chunks(response),
                    size=size,
                )
                self.bytes_moved += size or 0
            self._log_transfer(filename, size, time.monotonic() - started)
            return answer

        answer = await retrying(
            transfer,
            backoff=self._channel.backoff,
            what=f"job {self._job.job_id}: upload output {filename!r}",
            retry_on=(GatewayUnavailable,),
        )
        stored = answer.model_dump()
        logger.debug("job %s: output %r stored as %r", self._job.job_id, filename, stored)
        self._moved[key] = stored
        return stored

    def _log_transfer(self, filename: str, size: int | None, seconds: float) -> None:
        mib = (size or 0) / 2**20
        log = logger.info if (size or 0) >= LOG_SIZE else logger.debug
        log(
            "job %s: output %r moved, %.1f MiB in %.2f s (%.0f MiB/s)",
            self._job.job_id,
            filename,
            mib,
            seconds,
            mib / seconds if seconds > 0 else 0.0,
        )
