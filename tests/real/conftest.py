"""A real ComfyUI for this folder's tests, and a worker driving it for the room."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.comfy.procs import Proc, start_worker
from tests.conftest import Gateway
from tests.real.comfyui import RealComfyUI, real_comfyui


@pytest.fixture(scope="module")
def comfyui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealComfyUI]:
    with real_comfyui(tmp_path_factory.mktemp("comfyui")) as running:
        yield running


@pytest.fixture
def real_worker(
    gateway: Gateway, worker_token: str, comfyui: RealComfyUI, tmp_path: Path
) -> Iterator[Proc]:
    worker = start_worker(gateway.url, worker_token, comfyui.url, tmp_path / "worker.log")
    yield worker
    worker.stop()
