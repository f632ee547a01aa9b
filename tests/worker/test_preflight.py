"""`comfy-multi check` as the instructor runs it the evening before: a real gateway,
a worker beside the ComfyUI stand-in, and the workshop's workflows folder."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.comfy.procs import clean_env
from tests.conftest import Gateway
from tests.worker.conftest import ROOT, Room, StandIn, Workers


def ui_workflow(*nodes: tuple[str, list[Any]]) -> dict[str, Any]:
    """A workflow as ComfyUI's Export saves it: nodes with their widget values."""
    return {
        "last_node_id": len(nodes),
        "nodes": [
            {"id": i + 1, "type": kind, "mode": 0, "widgets_values": values}
            for i, (kind, values) in enumerate(nodes)
        ],
        "links": [],
        "version": 0.4,
    }


GOOD = ui_workflow(
    ("EmptyImage", [64, 64, 1, 0]), ("SaveImage", ["workshop"]), ("Note", ["read me"])
)
NEEDS_MORE = ui_workflow(
    ("CheckpointLoaderSimple", ["sdxl_base.safetensors"]),
    ("FancyUpscaler", []),
    (
        "FancySampler",
        [],
    ),
)


def check(gateway: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    settings = gateway.settings
    return subprocess.run(
        [sys.executable, "-m", "comfy_multi", "check", "--data-dir", str(settings.data_dir), *args],
        cwd=ROOT,
        env=clean_env(
            REDIS_URL=str(settings.redis_url),
            COMFY_MULTI_PUBLIC_URL=gateway.url,
            COLUMNS="80",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_check_is_red_until_the_room_is_ready(
    room: Room, gateway: Gateway, standin: StandIn, workers: Workers
) -> None:
    folder = gateway.settings.workflows_dir
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "1 Basics.json").write_text(json.dumps(GOOD))
    (folder / "2 Advanced.json").write_text(json.dumps(NEEDS_MORE))

    # no worker yet: red, and no test job can run
    red = check(gateway, "--job-timeout", "5")
    assert red.returncode == 1
    assert "✗ Workers: no GPU worker is online" in red.stdout
    assert "✗ Test job: not queued" in red.stdout
    assert "Traceback" not in red.stderr

    workers.start(standin.url)
    await room.wait_workers(1)
    red = check(gateway)
    assert red.returncode == 1, red.stdout
    lines = red.stdout.splitlines()
    assert lines[0].startswith("room: the Redis at")
    # loopback is fine for a rehearsal, and the instructor is told what the room needs
    assert any(line.startswith("! Public URL:") and "--host 0.0.0.0" in line for line in lines)
    worker_line = next(line for line in lines if line.startswith("✗ Worker gpu-1-"))
    lacks = (
        "lacks for 2 Advanced.json: nodes CheckpointLoaderSimple, FancySampler, FancyUpscaler; "
        "models sdxl_base.safetensors"
    )
    assert lacks in worker_line
    assert "✓ Workflow 1 Basics.json: 2 node types, 0 models; runs on 1 of 1 worker online" in lines
    assert any(line.startswith("✗ Workflow 2 Advanced.json: no online worker") for line in lines)
    test_job = next(line for line in lines if line.startswith("✓ Test job:"))
    assert "done in" in test_job
    assert "on gpu-1-" in test_job
    assert "2 checks failed" in red.stderr  # the worker and the workflow

    (folder / "2 Advanced.json").unlink()
    green = check(gateway)
    assert green.returncode == 0, green.stdout + green.stderr
    assert "✓ Worker gpu-1-" in green.stdout
    assert "runs all 1 workflow" in green.stdout
    assert green.stdout.rstrip().endswith("Ready: every check passed.")
    # the test job's output went to the instructor's own folder, not a participant's
    assert list((gateway.settings.users_dir / "teacher" / "output").rglob("*.png"))
