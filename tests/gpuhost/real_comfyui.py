"""Where the real ComfyUI comes from for the GPU host tests: its source archive
and the virtualenv `scripts/comfyui` builds once per machine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def comfyui_source() -> Path:
    given = os.environ.get("COMFYUI_SRC")
    if given:
        return Path(given)
    found = sorted((ROOT.parent / "shared" / "comfyui").glob("ComfyUI-*.tar.gz"))
    if not found:
        pytest.skip("no ComfyUI source archive: set COMFYUI_SRC to a ComfyUI source .tar.gz")
    return found[-1]


def built_comfyui_venv() -> Path:
    """The venv of the cached build (scripts/comfyui), with torch and ComfyUI's requirements."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "comfyui"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip("the real ComfyUI is not built: run scripts/comfyui (scripts/test does)")
    return Path(done.stdout.strip()).parent / "venv"
