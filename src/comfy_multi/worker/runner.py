"""The worker process: register, heartbeat, claim one job at a time, stop on signals."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from comfy_multi.errors import NotFound, Unauthorized
from comfy_multi.wire import ClaimedJob, HeartbeatAnswer, Registration
from comfy_multi.worker.capabilities import Capabilities
from comfy_multi.worker.channel import Channel
from comfy_multi.worker.comfyui import ComfyUI
from comfy_multi.worker.errors import (
    ComfyUIUnavailable,
    GatewayAnswerInvalid,
    GatewayRejected,
    GatewayUnavailable,
)
from comfy_multi.worker.extensions import read_web_extensions, set_digest
from comfy_multi.worker.janitor import Janitor, Leftovers
from comfy_multi.worker.job import JobRun
from comfy_multi.worker.outcome import Cancelled, Dropped, Outcome, Released
from comfy_multi.worker.relay import PREVIEW_INTERVAL
from comfy_multi.worker.retry import Backoff, until_set
from comfy_multi.worker.stream import EventStream

logger = logging.getLogger(__name__)

FATAL = (Unauthorized, GatewayRejected, GatewayAnswerInvalid)
RELEASE_GRACE = 15.0  # after a second signal, how long a job may take to give itself back
JANITOR_GRACE = 5.0


@dataclass(frozen=True)
class WorkerConfig:
    gateway_url: str
    token: str = field(repr=False)
    comfyui_url: str
    name: str
    job_timeout: float | None = None
    comfyui_input_dir: Path | None = None
    claim_wait: float = 25.0
    capabilities_every: float = 30.0
    preview_interval: float = PREVIEW_INTERVAL
    backoff: Backoff = field(default_factory=Backoff)


def make_worker_id(name: str | None) -> str:
    """``<name>-<4 hex>``: stable for this process, distinct across restarts. The host
    name stands in only until the token's name is known."""
    base = re.sub(r"[^A-Za-z0-9_.:-]", "-", name or socket.gethostname()).strip("-")
    return f"{base[:80] or 'worker'}-{secrets.token_hex(2)}"


class Worker:
    def __init__(
        self,
        config: WorkerConfig,
        *,
        on_job_done: Callable[[JobRun, Outcome | None], None] | None = None,
    ) -> None:
        self.config = config
        self.worker_id = make_worker_id(config.name)
        self.comfy = ComfyUI(config.comfyui_url)
        self.channel = Channel(
            config.gateway_url, config.token, self.worker_id, backoff=config.backoff
        )
        self.janitor = Janitor(self.comfy, config.comfyui_input_dir)
        self.stream = EventStream(self.comfy)
        self.current: JobRun | None = None
        self._on_job_done = on_job_done
        self._stopping = asyncio.Event()  # first signal: finish the job, claim no more
        self._hard_stop = asyncio.Event()  # second signal: give the job back
        self._undrained = asyncio.Event()
        self._undrained.set()
        self._comfy_down = False
        self._capabilities: Capabilities | None = None
        self._extensions_digest = ""
        self._comfyui_version = ""
        self._heartbeat_seconds = 2.0
        self._gateway_timeout: float | None = None

    # --- signals -------------------------------------------------------------

    def request_stop(self) -> None:
        """First call: finish the running job, then exit. Second: give it back and exit."""
        if not self._stopping.is_set():
            self._stopping.set()
            if self.current is not None:
                logger.info("stopping after job %s (signal again to give it back)", self.current.id)
            else:
                logger.info("stopping")
            return
        if not self._hard_stop.is_set():
            self._hard_stop.set()
            if self.current is not None:
                logger.info("job %s: giving it back to the queue", self.current.id)
                self.current.stop(Released())

    def _install_signals(self) -> list[signal.Signals]:
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.request_stop)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            installed.append(sig)
        return installed

    # --- life ----------------------------------------------------------------

    async def run(self) -> None:
        """Serve until a signal (or ``request_stop``); raises ``Unauthorized`` on a bad token."""
        installed = self._install_signals()
        logger.info(
            "worker %s: gateway %s, ComfyUI %s",
            self.worker_id,
            self.channel.url,
            self.comfy.url,
        )
        try:
            started, _ = await until_set(self._start(), self._stopping)
            if not started:
                return
            async with asyncio.TaskGroup() as tg:
                background = [
                    tg.create_task(self._heartbeats()),
                    tg.create_task(self.stream.run()),
                    tg.create_task(self._watch_capabilities()),
                    tg.create_task(self.janitor.run()),
                ]
                await self._claim_loop()
                await self.janitor.finish(JANITOR_GRACE)
                for task in background:
                    task.cancel()
        except BaseExceptionGroup as group:
            fatal = _first(group, FATAL)
            if fatal is not None:
                raise fatal from None
            raise
        finally:
            loop = asyncio.get_running_loop()
            for sig in installed:
                loop.remove_signal_handler(sig)
            await self.comfy.aclose()
            await self.channel.aclose()
            logger.info("worker %s: stopped", self.worker_id)

    async def _start(self) -> None:
        if not self.config.name:
            await self._take_token_name()
        await self._until_comfyui_known()

    async def _take_token_name(self) -> None:
        """Without --name the worker is called after its token ("gpu-1-3f2a"), the
        name the instructor gave it, rather than after an anonymous host."""
        name = await self.channel.token_name()
        if name:
            self.worker_id = self.channel.worker_id = make_worker_id(name)
            logger.info("worker %s: named after its token", self.worker_id)

    async def _until_comfyui_known(self) -> None:
        """Wait for ComfyUI, then register if its capabilities are new to the gateway."""
        while True:
            await self._wait_for_comfyui()
            try:
                await self._refresh_capabilities()
            except ComfyUIUnavailable as exc:
                logger.info("ComfyUI went away again: %s", exc)
                continue
            return

    async def _wait_for_comfyui(self) -> None:
        attempt = 0
        while True:
            try:
                stats = await self.comfy.system_stats()
                break
            except (ComfyUIUnavailable, ValueError) as exc:
                if attempt == 0:
                    logger.info("waiting for ComfyUI at %s (%s)", self.comfy.url, exc)
                await asyncio.sleep(min(self.config.backoff.delay(attempt), 2.0))
                attempt += 1
        system = stats.get("system") if isinstance(stats.get("system"), dict) else {}
        assert isinstance(system, dict)
        self._comfyui_version = str(system.get("comfyui_version") or "")
        logger.info("ComfyUI at %s is up (version %s)", self.comfy.url, self._comfyui_version)

    async def _read_capabilities(self) -> Capabilities:
        raw = await self.comfy.object_info()
        try:
            return await asyncio.to_thread(Capabilities.from_object_info, raw)
        except ValueError as exc:
            raise ComfyUIUnavailable(self.comfy.url, f"/object_info is not usable: {exc}") from exc

    async def _register(self, caps: Capabilities) -> None:
        answer = await self.channel.register(
            Registration(
                worker_id=self.worker_id,
                comfyui_url=self.comfy.url,
                comfyui_version=self._comfyui_version,
                object_info_digest=caps.digest,
                nodes=caps.nodes,
                models=caps.models,
            )
        )
        self._heartbeat_seconds = answer.heartbeat_seconds or 2.0
        self._gateway_timeout = answer.job_timeout_seconds or None
        if answer.need_object_info:
            await self.channel.put_object_info(caps.digest, caps.raw)
        self._capabilities = Capabilities(caps.digest, caps.nodes, caps.models)
        logger.info(
            "worker %s registered: %d nodes, %d model files, object_info %s",
            self.worker_id,
            len(caps.nodes),
            sum(len(files) for files in caps.models.values()),
            caps.digest[:12],
        )

    async def _refresh_capabilities(self) -> None:
        """Register again if ComfyUI's nodes or models changed; send its web
        extensions whenever they changed (or the worker registered afresh)."""
        caps = await self._read_capabilities()
        registered = False
        if self._capabilities is None or caps.digest != self._capabilities.digest:
            if self._capabilities is not None:
                logger.info("ComfyUI's nodes or models changed; registering again")
            await self._register(caps)
            registered = True
        files = await read_web_extensions(self.comfy)
        digest = set_digest(files)
        if registered or digest != self._extensions_digest:
            try:
                await self.channel.sync_extensions(files)
            except GatewayRejected as exc:  # pages lack some widgets; jobs still run
                logger.error("the gateway refused this worker's web extensions: %s", exc)
            else:
                logger.info("web extensions sent: %d files", len(files))
            self._extensions_digest = digest

    async def _reregister(self) -> None:
        """The gateway forgot this worker (its Redis was reset): register again."""
        logger.warning("the gateway does not know worker %s; registering again", self.worker_id)
        self._capabilities = None
        try:
            await self._refresh_capabilities()
        except ComfyUIUnavailable as exc:
            logger.warning("cannot register while ComfyUI is away: %s", exc)
            self._comfy_down = True

    async def _watch_capabilities(self) -> None:
        while True:
            await asyncio.sleep(self.config.capabilities_every)
            try:
                await self._refresh_capabilities()
            except ComfyUIUnavailable as exc:
                logger.debug("capabilities check skipped: %s", exc)

    # --- heartbeat --------------------------------------------------------------

    async def _heartbeats(self) -> None:
        unreachable = False
        while True:
            run = self.current
            try:
                answer = await self.channel.heartbeat([run.job] if run else [])
            except GatewayUnavailable as exc:
                if not unreachable:
                    logger.warning("heartbeat failed, will keep trying: %s", exc)
                unreachable = True
            except NotFound:
                await self._reregister()
            else:
                if unreachable:
                    logger.info("gateway reachable again")
                unreachable = False
                self._apply(answer, run)
            await asyncio.sleep(self._heartbeat_seconds)

    def _apply(self, answer: HeartbeatAnswer, run: JobRun | None) -> None:
        if run is not None:
            # a cancelled job's lease is gone too: the cancel is the reason to report
            if run.id in answer.cancel:
                logger.info("job %s: cancel requested", run.id)
                run.stop(Cancelled())
            elif run.id in answer.lease_lost:
                run.stop(Dropped("the gateway took the lease back"))
        draining = answer.drain
        if draining == self._undrained.is_set():
            logger.info("drain %s", "requested: no new jobs" if draining else "lifted")
            if draining:
                self._undrained.clear()
            else:
                self._undrained.set()

    # --- claiming ---------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            if not self._undrained.is_set():
                await until_set(self._undrained.wait(), self._stopping)
                continue
            if self._comfy_down or not (self.stream.connected or await self.comfy.alive()):
                back, _ = await until_set(self._comfy_back(), self._stopping)
                if not back:
                    return
            try:
                claimed, job = await until_set(
                    self.channel.claim(self.config.claim_wait), self._stopping
                )
            except NotFound:
                await self._reregister()
                continue
            if not claimed or job is None:
                continue
            await self._run_job(job)

    async def _comfy_back(self) -> None:
        logger.info("waiting for ComfyUI at %s to come back before claiming", self.comfy.url)
        await self._until_comfyui_known()
        self._comfy_down = False

    def _timeout_for(self, job: ClaimedJob) -> float | None:
        limits = [t for t in (job.timeout_seconds, self.config.job_timeout) if t]
        if not limits and self._gateway_timeout:
            limits.append(self._gateway_timeout)
        return min(limits) if limits else None

    async def _run_job(self, job: ClaimedJob) -> None:
        run = JobRun(
            job,
            self.channel,
            self.comfy,
            self.stream,
            timeout=self._timeout_for(job),
            preview_interval=self.config.preview_interval,
        )
        # a claim that lands just after a first signal is run like any held job
        logger.info("job %s: claimed (attempt %d, user %s)", job.job_id, job.attempt, job.user)
        self.current = run
        if self._hard_stop.is_set():  # both signals came while this claim was answered
            logger.info("job %s: giving it back to the queue", run.id)
            run.stop(Released())
        elif self._stopping.is_set():  # the first signal came while this claim was answered
            logger.info("stopping after job %s (signal again to give it back)", run.id)
        outcome: Outcome | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                task = tg.create_task(run.run())
                guard = tg.create_task(self._cut_short(run.id, task))
                await asyncio.wait({task})
                guard.cancel()
            outcome = None if task.cancelled() else task.result()
        except BaseExceptionGroup as group:
            fatal = _first(group, FATAL)
            if fatal is not None:
                raise fatal from None
            logger.error("job %s: the worker failed", job.job_id, exc_info=group)
        finally:
            self.current = None
        self._comfy_down = self._comfy_down or run.comfy_down
        self.janitor.add(Leftovers(run.id, run.prompt_id, run.folder, list(run.staged)))
        if self._on_job_done is not None:
            self._on_job_done(run, outcome)

    async def _cut_short(self, job_id: str, task: asyncio.Task[Outcome]) -> None:
        """After a second signal, a job still busy past the grace period is abandoned."""
        await self._hard_stop.wait()
        await asyncio.sleep(RELEASE_GRACE)
        if not task.done():
            logger.warning("job %s: abandoned at shutdown; its lease will expire", job_id)
            task.cancel()


def _first(
    group: BaseExceptionGroup[BaseException], kinds: tuple[type[BaseException], ...]
) -> BaseException | None:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found = _first(exc, kinds)
            if found is not None:
                return found
        elif isinstance(exc, kinds):
            return exc
    return None
