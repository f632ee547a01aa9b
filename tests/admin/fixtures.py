"""Fixtures shared by the instructor's API tests and browser tests (registered
in tests/conftest.py): a signed-in client per person, and scripted workers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from tests.admin.helpers import ScriptedWorker
from tests.conftest import Gateway, Person


@pytest.fixture
async def clients(
    gateway: Gateway, people: dict[str, Person]
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """An HTTP client per person, signed in with HTTP Basic."""
    opened = {name: gateway.client(auth=p.auth) for name, p in people.items()}
    yield opened
    for client in opened.values():
        await client.aclose()


@pytest.fixture
async def workers(
    gateway: Gateway, worker_token: str
) -> AsyncIterator[Callable[[str], Awaitable[ScriptedWorker]]]:
    """Register scripted workers by id; all closed at the end."""
    started: list[ScriptedWorker] = []

    async def start(worker_id: str) -> ScriptedWorker:
        worker = ScriptedWorker(gateway, worker_token, worker_id)
        started.append(worker)
        await worker.register()
        return worker

    yield start
    for worker in started:
        await worker.aclose()
