"""A comfy-multi GPU worker inside a Modal function.

    pip install modal && modal setup
    modal secret create comfy-multi COMFY_MULTI_GATEWAY_URL=https://workshop.example.org \\
        COMFY_MULTI_WORKER_TOKEN=cmw_...
    MANIFEST=workshops/ltx2-video.toml modal run deploy/modal_worker.py

The image holds the manifest's ComfyUI and custom nodes; models live on a Modal
Volume and are synced on the first start. The function runs ComfyUI and the
worker until its timeout, then stops them (the worker hands back its job).
Run it again (or with `modal deploy` and a schedule) for longer workshops.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import modal

REPO = Path(__file__).resolve().parents[1]
MANIFEST = os.environ.get("MANIFEST", "workshops/starter-images.toml")
GPU = os.environ.get("MODAL_GPU", "H100")
HOURS = float(os.environ.get("WORKSHOP_HOURS", "8"))

image = (
    modal.Image.from_registry("nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04", add_python="3.11")
    .apt_install("git", "ffmpeg", "libgl1", "libglib2.0-0", "build-essential")
    .add_local_dir(REPO / "src", "/opt/comfy-multi/src", copy=True)
    .add_local_file(REPO / "pyproject.toml", "/opt/comfy-multi/pyproject.toml", copy=True)
    .add_local_file(REPO / "README.md", "/opt/comfy-multi/README.md", copy=True)
    .add_local_file(REPO / MANIFEST, "/opt/gpu-host/manifest.toml", copy=True)
    .run_commands(
        "pip install /opt/comfy-multi",
        "comfy-multi gpu-host setup --manifest /opt/gpu-host/manifest.toml --dir /opt/gpu-host"
        " --models-dir /models --skip-models --gpus 1",
    )
)
models = modal.Volume.from_name("comfy-multi-models", create_if_missing=True)
app = modal.App("comfy-multi-worker", image=image)


@app.function(
    gpu=GPU,
    volumes={"/models": models},
    secrets=[modal.Secret.from_name("comfy-multi")],
    timeout=int(HOURS * 3600),
)
def worker() -> None:
    subprocess.run(
        ["comfy-multi", "gpu-host", "setup", "--manifest", "/opt/gpu-host/manifest.toml",
         "--dir", "/opt/gpu-host", "--models-dir", "/models", "--gpus", "1"],
        check=True,
    )
    models.commit()
    subprocess.run(["comfy-multi", "gpu-host", "up", "--dir", "/opt/gpu-host"], check=True)


@app.local_entrypoint()
def main() -> None:
    worker.remote()
