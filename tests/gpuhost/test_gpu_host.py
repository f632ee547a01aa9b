"""From a rented GPU to a worker online: `gpu-host setup` then `gpu-host up`,
with the real ComfyUI from its source archive, a custom node from git, and
models from a local HTTPS server (one breaks off and resumes, one is wrong)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.comfy.procs import clean_env
from tests.conftest import Gateway, Person, wait_for
from tests.gpuhost.model_server import ModelServer
from tests.gpuhost.real_comfyui import built_comfyui_venv, comfyui_source

pytestmark = [pytest.mark.slow, pytest.mark.comfyui]

NODE = """
class CmGpuHostProbe:
    CATEGORY = "testing"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",)}}

    def run(self, image):
        return (1.0 - image,)


NODE_CLASS_MAPPINGS = {"CmGpuHostProbe": CmGpuHostProbe}
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
        },
    ).stdout.strip()


def custom_node_repo(where: Path) -> tuple[str, str]:
    """A git repository holding a small custom node; its URL and pinned commit."""
    where.mkdir(parents=True)
    git(where, "init", "-q")
    (where / "__init__.py").write_text(NODE)
    git(where, "add", ".")
    git(where, "commit", "-qm", "probe node")
    pinned = git(where, "rev-parse", "HEAD")
    (where / "__init__.py").write_text("raise RuntimeError('a later, broken commit')\n")
    git(where, "commit", "-qam", "broken")
    return f"file://{where}", pinned


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "comfy_multi", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**clean_env(COLUMNS="200"), **(env or {})},
    )


def start_gpu_host(host: Path, gateway_url: str, token: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "comfy_multi",
            "gpu-host",
            "up",
            "--dir",
            str(host),
            "--gateway",
            gateway_url,
            "--comfyui-arg",
            "--cpu",
        ],
        env=clean_env(COMFY_MULTI_WORKER_TOKEN=token),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def test_setup_then_up_runs_a_job(
    tmp_path: Path,
    model_server: ModelServer,
    gateway: Gateway,
    people: dict[str, Person],
    worker_token: str,
) -> None:
    source, venv = comfyui_source(), built_comfyui_venv()
    node_url, pinned = custom_node_repo(tmp_path / "probe-node")
    weights = bytes(range(256)) * 8192
    good_sha = model_server.add("upscale.safetensors", weights)
    model_server.flaky.add("upscale.safetensors")
    model_server.add("vae.safetensors", b"corrupted on the mirror")
    manifest = tmp_path / "workshop.toml"
    model_lines = f'''
[[models]]
url = "{model_server.url}/upscale.safetensors"
file = "upscale.safetensors"
folder = "latent_upscale_models"
sha256 = "{good_sha}"
size = {len(weights)}
'''
    bad_model = f'''
[[models]]
url = "{model_server.url}/vae.safetensors"
file = "vae.safetensors"
folder = "vae"
sha256 = "{"1" * 64}"
'''
    head = f'''[comfyui]
version = "v0.3.64"

[[custom_nodes]]
git = "{node_url}"
rev = "{pinned}"
name = "probe-node"
'''
    manifest.write_text(head + model_lines + bad_model)
    host = tmp_path / "gpu-host"
    env = {"SSL_CERT_FILE": str(model_server.ca_file)}
    setup = [
        "gpu-host",
        "setup",
        "--manifest",
        str(manifest),
        "--dir",
        str(host),
        "--comfyui-source",
        str(source),
        "--venv",
        str(venv),
        "--gpus",
        "1",
    ]

    first = cli(*setup, env=env)
    assert first.returncode == 1, first.stdout + first.stderr
    comfy = host / "ComfyUI"
    assert (comfy / "main.py").is_file()
    assert git(comfy / "custom_nodes" / "probe-node", "rev-parse", "HEAD") == pinned
    assert not (comfy / "models/vae/vae.safetensors").exists()
    assert "Traceback" not in first.stderr

    manifest.write_text(head + model_lines)  # the operator drops the bad file
    second = cli(*setup, env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert (comfy / "models/latent_upscale_models/upscale.safetensors").read_bytes() == weights
    ranges = model_server.ranges_for("upscale.safetensors")
    assert ranges[0] is None  # broke off ...
    assert ranges[-1] is not None  # ... then resumed
    assert "unpacking" not in second.stdout  # nothing done twice
    units = sorted(p.name for p in (host / "systemd").iterdir())
    assert units == ["comfy-multi-comfyui-gpu0.service", "comfy-multi-worker-gpu0.service"]
    assert worker_token not in (host / "systemd/comfy-multi-worker-gpu0.service").read_text()

    up = start_gpu_host(host, gateway.url, worker_token)
    try:
        admin, alice = people["teacher"].auth, people["alice"].auth
        async with gateway.client() as http:

            async def probe_node_known() -> bool:
                info = (await http.get("/u/alice/api/object_info", auth=alice)).json()
                return "CmGpuHostProbe" in info

            await wait_for(probe_node_known, timeout=240, interval=1)
            prompt = {
                "1": {
                    "class_type": "EmptyImage",
                    "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 255},
                },
                "2": {"class_type": "CmGpuHostProbe", "inputs": {"image": ["1", 0]}},
                "3": {
                    "class_type": "SaveImage",
                    "inputs": {"images": ["2", 0], "filename_prefix": "gpu-host"},
                },
            }
            answer = await http.post("/u/alice/api/prompt", json={"prompt": prompt}, auth=alice)
            assert answer.status_code == 200, answer.text
            job_id = answer.json()["prompt_id"]

            async def finished() -> dict[str, object] | None:
                job = (await http.get(f"/api/v1/jobs/{job_id}", auth=admin)).json()
                return job if job["state"] in ("done", "failed", "cancelled") else None

            job = await wait_for(finished, timeout=120, interval=0.5)
            assert job["state"] == "done", job
    finally:
        up.send_signal(signal.SIGTERM)
        out, _ = up.communicate(timeout=120)
    assert up.returncode == 0, out.decode(errors="replace")[-3000:]
    assert worker_token.encode() not in out
