"""Fixtures for the instructor's side: people's clients, scripted workers, dashboards."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.admin.helpers import Dashboard, open_dashboard
from tests.conftest import Gateway, Person


@pytest.fixture
async def dashboard(gateway: Gateway, people: dict[str, Person]) -> AsyncIterator[Dashboard]:
    """The teacher's dashboard socket, past its snapshot."""
    dash = await open_dashboard(gateway, people["teacher"])
    yield dash
    await dash.socket.close()
