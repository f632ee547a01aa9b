from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gpuhost.model_server import ModelServer, start_model_server


@pytest.fixture
def model_server(tmp_path: Path) -> Iterator[ModelServer]:
    server, running = start_model_server(tmp_path / "model-server")
    yield server
    running.should_exit = True
