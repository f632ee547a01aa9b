"""One job's life on one ComfyUI: stage inputs, run the prompt, relay, report."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from comfy_multi.errors import LeaseLost, NotFound, TooLarge, Unauthorized
from comfy_multi.wire import ClaimedJob
from comfy_multi.worker.channel import Channel
from comfy_multi.worker.comfyui import ComfyUI
from comfy_multi.worker.errors import (
    ComfyUIFileMissing,
    ComfyUIRejected,
    ComfyUIUnavailable,
)
from comfy_multi.worker.inputs import StagedInput, job_folder, rewrite_prompt, stage_inputs
from comfy_multi.worker.outcome import (
    Cancelled,
    Dropped,
    Failed,
    Outcome,
    Released,
    Succeeded,
    reason,
)
from comfy_multi.worker.outputs import OutputMover
from comfy_multi.worker.relay import PREVIEW_INTERVAL, Relay
from comfy_multi.worker.saves import rewrite_saves
from comfy_multi.worker.socket import Event, Preview
from comfy_multi.worker.steps import STEP_MESSAGE, StepCounter
from comfy_multi.worker.stream import EventStream

logger = logging.getLogger(__name__)

RELAYED = frozenset(
    {
        "execution_start",
        "execution_cached",
        "executing",
        "progress",
        "progress_state",
        "progress_text",
        "executed",
        "execution_success",
        "execution_error",
        "execution_interrupted",
    }
)
POST_GRACE = 10.0  # how long a stop waits for a POST /prompt already under way
SOCKET_WAIT = 10.0  # how long a job waits for ComfyUI's websocket to (re)open


class JobRun:
    """Runs one claimed job; ``stop()`` may end it early from another task."""

    def __init__(
        self,
        job: ClaimedJob,
        channel: Channel,
        comfy: ComfyUI,
        stream: EventStream,
        *,
        timeout: float | None,
        preview_interval: float = PREVIEW_INTERVAL,
    ) -> None:
        self.job = job
        self.channel = channel
        self.comfy = comfy
        self.stream = stream
        self.timeout = timeout
        self.prompt_id: str | None = None
        self.staged: list[StagedInput] = []
        self.comfy_down = False  # the runner waits for ComfyUI before the next claim
        self.outputs: dict[str, Any] = {}
        self.meta: dict[str, Any] = {}
        self.timings: dict[str, float] = {"claimed": time.monotonic()}
        self.relay = Relay(
            channel,
            job,
            on_lease_lost=lambda why: self.stop(Dropped(why)),
            preview_interval=preview_interval,
        )
        self.mover = OutputMover(job, channel, comfy)
        self.steps = StepCounter(job.prompt)
        self._stop: Outcome | None = None
        self._stopped = asyncio.Event()
        self._posting = False  # a POST /prompt is under way
        self._posted = asyncio.Event()  # ... and has ended, one way or another
        self._prompt_ended = False

    @property
    def id(self) -> str:
        return self.job.job_id

    @property
    def folder(self) -> str:
        return job_folder(self.job)

    def stop(self, outcome: Outcome) -> None:
        """End the job early (cancel, lease lost, release); the first reason wins."""
        if self._stop is None:
            self._stop = outcome
            self._stopped.set()

    async def run(self) -> Outcome:
        """Run to the end and report it; returns what was reported."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.relay.run())
            try:
                outcome = await self._decide()
                self.timings["finished"] = time.monotonic()
                outcome = await self._report(outcome)
                self.timings["reported"] = time.monotonic()
            finally:
                self.relay.close()
        return outcome

    # --- deciding ------------------------------------------------------------

    async def _decide(self) -> Outcome:
        async with asyncio.TaskGroup() as tg:
            execute = tg.create_task(self._execute())
            stopped = tg.create_task(self._wait_stop())
            await asyncio.wait({execute, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if execute.done():
                stopped.cancel()
            else:
                await self._let_post_settle()
                execute.cancel()
        if execute.done() and not execute.cancelled():
            return execute.result()
        return stopped.result()

    async def _let_post_settle(self) -> None:
        """A POST /prompt under way is let finish, so its prompt_id is known and the
        prompt can be interrupted; cut off mid-way it could run unseen on ComfyUI."""
        if not self._posting:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(POST_GRACE):
                await self._posted.wait()

    async def _wait_stop(self) -> Outcome:
        try:
            async with asyncio.timeout(self.timeout):
                await self._stopped.wait()
        except TimeoutError:
            logger.warning("job %s: ran past its %g s limit; interrupting", self.id, self.timeout)
            return Failed(
                reason(
                    "timeout",
                    f"the job ran longer than its {self.timeout:g} s time limit, "
                    "so the worker interrupted ComfyUI",
                )
            )
        assert self._stop is not None
        return self._stop

    async def _execute(self) -> Outcome:
        try:
            return await self._stage_and_run()
        except LeaseLost as exc:
            return Dropped(exc.message)
        except ComfyUIUnavailable as exc:
            return await self._comfy_failure(exc)
        except NotFound as exc:
            return Failed(reason("input_missing", f"an input file of the job is missing: {exc}"))
        except ComfyUIFileMissing as exc:
            return Failed(reason("output_missing", str(exc)))
        except TooLarge as exc:
            return Failed(reason("output_too_large", f"an output was refused: {exc.message}"))
        except Unauthorized:
            raise
        except Exception as exc:
            logger.exception("job %s: the worker failed", self.id)
            return Failed(reason("worker_error", f"the worker failed: {exc!r}"))

    async def _stage_and_run(self) -> Outcome:
        try:
            self.staged = await stage_inputs(self.job, self.channel, self.comfy)
        except ComfyUIRejected as exc:
            error = exc.body.get("error")
            message = error.get("message") if isinstance(error, dict) else str(exc)
            return Failed(reason("input_rejected", f"ComfyUI refused an input file: {message}"))
        prompt = rewrite_saves(rewrite_prompt(self.job.prompt, self.staged), self.job.user)
        # subscribed before the websocket check: a drop from here on reaches the inbox
        with self.stream.subscribe(self._offer_preview) as subscription:
            await self.stream.wait_connected(SOCKET_WAIT)
            self._posting = True
            try:
                self.prompt_id = await self.comfy.queue_prompt(
                    prompt, client_id=self.stream.client_id, extra_data=dict(self.job.extra_data)
                )
            except ComfyUIRejected as exc:
                self._prompt_ended = True
                logger.info("job %s: ComfyUI refused the prompt: %s", self.id, exc)
                return Failed(exc.body)
            finally:
                self._posting = False
                self._posted.set()
            self.timings["posted"] = time.monotonic()
            logger.info("job %s: running as ComfyUI prompt %s", self.id, self.prompt_id)
            return await self._follow(subscription.inbox)

    async def _comfy_failure(self, exc: ComfyUIUnavailable) -> Failed:
        self.comfy_down = not await self.comfy.alive()
        if self.comfy_down:
            message = (
                f"ComfyUI at {self.comfy.url} went away while running the job "
                f"({exc.why}; /system_stats does not answer); the job goes back to the queue"
            )
        else:
            message = f"ComfyUI at {self.comfy.url} failed a request ({exc.why}); job requeued"
        logger.warning("job %s: %s", self.id, message)
        return Failed(reason("comfyui_unreachable", message), requeue=True)

    # --- following ComfyUI -----------------------------------------------------

    async def _follow(self, inbox: asyncio.Queue[Event | None]) -> Outcome:
        assert self.prompt_id is not None
        while True:
            while (event := await inbox.get()) is not None:
                outcome = await self._handle(event)
                if outcome is not None:
                    return outcome
            # the websocket dropped: ComfyUI died, or only the connection did
            if not await self.comfy.alive():
                raise ComfyUIUnavailable(self.comfy.url, "the websocket closed")
            logger.warning("job %s: websocket to ComfyUI closed; waiting for it to reopen", self.id)
            await self.stream.wait_connected(SOCKET_WAIT)
            entry = await self.comfy.history(self.prompt_id)
            if entry is not None:
                return await self._from_history(entry)
            if await self.comfy.in_queue(self.prompt_id) is False:
                return Failed(
                    reason(
                        "comfyui_restarted",
                        f"ComfyUI at {self.comfy.url} lost the prompt (it restarted); "
                        "the job goes back to the queue",
                    ),
                    requeue=True,
                )

    def _offer_preview(self, preview: Preview) -> None:
        prompt_id = preview.meta.get("prompt_id") if preview.meta is not None else None
        if prompt_id is None or prompt_id == self.prompt_id:
            self.relay.offer_preview(preview)

    async def _handle(self, event: Event) -> Outcome | None:
        kind, data = event.type, event.data
        if kind not in RELAYED or data.get("prompt_id", self.prompt_id) != self.prompt_id:
            return None
        if kind == "executing" and data.get("node") is None:
            return await self._ended_without_verdict()
        if kind == "executed":
            self.timings.setdefault("executed_seen", time.monotonic())
            data = await self._executed(data)
            self.timings.setdefault("executed_relayed", time.monotonic())
        self.relay.push(kind, data)
        step = self.steps.note(kind, data)
        if step is not None:
            self.relay.push(STEP_MESSAGE, step)
        if kind == "execution_success":
            self._prompt_ended = True
            return Succeeded(self.outputs, self.meta)
        if kind == "execution_error":
            self._prompt_ended = True
            return Failed(self._error_payload(data))
        if kind == "execution_interrupted":
            self._prompt_ended = True
            message = "ComfyUI interrupted the prompt (someone interrupted it on the GPU server)"
            return Failed({"message": message, **self._error_payload(data)})
        return None

    def _error_payload(self, data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "prompt_id": self.id} if "prompt_id" in data else dict(data)

    async def _executed(self, data: dict[str, Any]) -> dict[str, Any]:
        node = str(data.get("node"))
        output = data.get("output")
        rewritten = await self.mover.rewrite(output if isinstance(output, dict) else {})
        self.outputs[node] = rewritten
        self.meta[node] = {
            "node_id": node,
            "display_node": data.get("display_node", node),
            "parent_node": data.get("parent_node"),
            "real_node_id": data.get("real_node_id", node),
        }
        return {**data, "output": rewritten}

    async def _ended_without_verdict(self) -> Outcome:
        """``executing {node: null}`` came before success or error: ask the history."""
        assert self.prompt_id is not None
        entry = await self.comfy.history(self.prompt_id)
        if entry is not None:
            return await self._from_history(entry)
        self._prompt_ended = True
        return Failed(reason("comfyui_error", "ComfyUI ended the prompt without a result"))

    async def _from_history(self, entry: dict[str, Any]) -> Outcome:
        """Finish from ComfyUI's history entry (events were missed while reconnecting)."""
        self._prompt_ended = True
        history_meta = _dict(entry.get("meta"))
        outputs = _dict(entry.get("outputs"))
        for node, output in outputs.items():
            if node in self.outputs or not isinstance(output, dict):
                continue
            meta = history_meta.get(node) or {}
            data = {"node": node, "display_node": meta.get("display_node", node), "output": output}
            self.relay.push("executed", {**await self._executed(data), "prompt_id": self.id})
        status = _dict(entry.get("status"))
        for message in status.get("messages") or []:
            if isinstance(message, list) and len(message) == 2 and isinstance(message[1], dict):
                kind, data = message
                if kind in ("execution_error", "execution_interrupted"):
                    self.relay.push(kind, data)
                    return Failed(self._error_payload(data))
        if status.get("status_str", "success") == "success":
            self.relay.push("execution_success", {"prompt_id": self.id})
            return Succeeded(self.outputs, self.meta)
        return Failed(reason("comfyui_error", "ComfyUI recorded the prompt as failed"))

    # --- reporting ---------------------------------------------------------------

    async def _report(self, outcome: Outcome) -> Outcome:
        job = self.job
        try:
            match outcome:
                case Succeeded(outputs, meta):
                    await self.relay.flush()
                    await self.channel.complete(job, outputs, meta)
                    logger.info("job %s: done, %d output nodes", self.id, len(outputs))
                case Failed(error, requeue):
                    await self._abort()
                    await self.relay.flush()
                    await self.channel.fail(job, error, requeue=requeue)
                    logger.info(
                        "job %s: failed (%s)%s",
                        self.id,
                        error.get("message") or error.get("exception_message") or error,
                        ", requeued" if requeue else "",
                    )
                case Cancelled():
                    self.relay.discard()
                    await self._abort()
                    await self.channel.cancelled(job)
                    logger.info("job %s: cancelled; ComfyUI interrupted", self.id)
                case Released():
                    self.relay.discard()
                    await self._abort()
                    await self.channel.release(job)
                    logger.info("job %s: released back to the queue", self.id)
                case Dropped(why):
                    self.relay.discard()
                    await self._abort()
                    logger.warning("job %s: dropped, the lease is gone: %s", self.id, why)
        except LeaseLost as exc:
            self.relay.discard()
            logger.warning("job %s: dropped, the lease is gone: %s", self.id, exc.message)
            return Dropped(exc.message)
        return outcome

    async def _abort(self) -> None:
        """Take the prompt off ComfyUI, if it may still be there."""
        if self.prompt_id is None or self._prompt_ended or self.comfy_down:
            return
        try:
            await self.comfy.dequeue(self.prompt_id)
            await self.comfy.interrupt(self.prompt_id)
        except ComfyUIUnavailable as exc:
            logger.warning("job %s: could not interrupt ComfyUI: %s", self.id, exc)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
