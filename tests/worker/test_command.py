"""`comfy-multi worker` start-up errors are one readable line, and the token stays secret."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from tests.comfy.procs import clean_env
from tests.worker import prompts
from tests.worker.conftest import ROOT, Room, StandIn, Workers


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "comfy_multi.worker", *args],
        cwd=ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_no_token_is_a_clear_error() -> None:
    result = _run("--gateway", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert "no worker token" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_settings_are_a_clear_error() -> None:
    result = _run("--token", "t", "--comfyui", "localhost:8188")
    assert result.returncode == 2
    assert "--comfyui must be an http:// or https:// URL" in result.stderr
    result = _run("--token", "t", COMFY_MULTI_JOB_TIMEOUT_SECONDS="soon")
    assert result.returncode == 2
    assert "COMFY_MULTI_JOB_TIMEOUT_SECONDS" in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_refused_token_is_a_clear_error(room: Room, standin: StandIn) -> None:
    secret = "not-a-real-token-5f2c"
    result = _run("--gateway", room.gateway.url, "--comfyui", standin.url, "--token", secret)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert "refused the worker token (401)" in lines[0]
    assert "Traceback" not in result.stderr
    assert secret not in result.stderr + result.stdout


async def test_the_token_never_reaches_the_log(
    room: Room, standin: StandIn, workers: Workers, dump_logs: Callable[[], str]
) -> None:
    worker = workers.start(standin.url)
    await room.wait_workers(1)
    job_id = await room.submit(prompts.empty_saved(color=9))
    assert (await room.wait_state(job_id))["state"] == "done"
    assert workers.token not in worker.output()


async def test_a_worker_is_named_after_its_token_unless_named(
    room: Room, standin: StandIn, workers: Workers
) -> None:
    """The instructor created the token `gpu-test`; that, not the host's name, is what
    the dashboard lists. --name still wins."""
    workers.start(standin.url, named=False)
    workers.start(standin.url, name="studio-a")
    await room.wait_workers(2)
    ids = sorted(w["worker_id"] for w in await room.workers())
    assert ids[0].startswith("gpu-test-"), ids
    assert ids[1].startswith("studio-a-"), ids
