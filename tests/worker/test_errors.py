"""ComfyUI's own errors reach the user as ComfyUI gave them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from comfy_multi.queue.jobs import JobQueue
from comfy_multi.settings import Settings
from tests.worker import prompts
from tests.worker.conftest import Room, StandIn, Workers


async def test_an_execution_error_fails_the_job_with_comfyuis_payload(
    room: Room, standin: StandIn, workers: Workers, dump_logs: Callable[[], str]
) -> None:
    workers.start(standin.url)
    await room.wait_workers(1)
    job_id = await room.submit(prompts.failing("the node went bang"))

    job = await room.wait_state(job_id)

    assert job["state"] == "failed"
    error = job["error"]
    assert error["exception_message"].strip() == "the node went bang"
    assert error["node_type"] == "StandinFail"
    assert error["node_id"] == "1"
    assert error["prompt_id"] == job_id


async def test_comfyuis_refusal_of_a_prompt_fails_the_job_with_its_body(
    room: Room,
    standin: StandIn,
    workers: Workers,
    aredis: Any,
    settings: Settings,
    dump_logs: Callable[[], str],
) -> None:
    """ComfyUI can disagree with the gateway's check (another ComfyUI version, a file
    gone); the job is queued past the door here so that ComfyUI's 400 decides."""
    workers.start(standin.url)
    await room.wait_workers(1)
    prompt = prompts.invert("ghost.png")
    job = await JobQueue(aredis, settings).submit(
        "alice", prompt, cls=5, needs=sorted({n["class_type"] for n in prompt.values()})
    )

    failed = await room.wait_state(job.id)

    assert failed["state"] == "failed", failed
    error = failed["error"]
    assert error["error"]["type"] == "prompt_outputs_failed_validation", error
    node_error = error["node_errors"]["1"]["errors"][0]
    assert node_error["type"] == "custom_validation_failed"
    assert "ghost.png" in node_error["details"]
    assert failed["attempts"] == 1


async def test_an_unreadable_input_fails_at_run_time_with_comfyuis_message(
    room: Room, standin: StandIn, workers: Workers, dump_logs: Callable[[], str]
) -> None:
    (room.user_dir("alice", "input") / "notes.png").write_bytes(b"not an image at all")
    workers.start(standin.url)
    await room.wait_workers(1)
    job_id = await room.submit(prompts.invert("notes.png"))

    job = await room.wait_state(job_id)

    assert job["state"] == "failed", job
    assert job["error"]["node_type"] == "LoadImage"
    assert "cannot identify image file" in job["error"]["exception_message"]
