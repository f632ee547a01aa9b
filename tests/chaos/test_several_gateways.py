"""`comfy-multi up --workers 2`: two gateway processes on one port and one
Redis serve one room; a socket on either process sees the events of Runs
submitted through whichever process took the POST."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import httpx
import psutil
import pytest
from websockets.asyncio.client import connect

from tests.chaos.room import cli, env_for_tests, start_up, worker_token
from tests.comfy.procs import start_standin, start_worker
from tests.conftest import wait_for
from tests.worker.prompts import empty_saved

pytestmark = pytest.mark.slow

SOCKETS = 6


async def run_on_socket(url: str, auth: tuple[str, str], n: int) -> str:
    basic = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    ws_url = url.replace("http://", "ws://") + f"/u/{auth[0]}/ws"
    async with connect(ws_url, additional_headers={"Authorization": f"Basic {basic}"}) as ws:
        sid = json.loads(await ws.recv())["data"]["sid"]
        async with httpx.AsyncClient(base_url=url, auth=auth, timeout=30) as http:
            answer = await http.post(
                f"/u/{auth[0]}/api/prompt",
                json={"prompt": empty_saved(color=n, size=8, prefix="multi"), "client_id": sid},
            )
        assert answer.status_code == 200, answer.text
        prompt_id = answer.json()["prompt_id"]
        async with asyncio.timeout(60):
            while True:
                frame = await ws.recv()
                if isinstance(frame, bytes):
                    continue
                event = json.loads(frame)
                data = event.get("data", {})
                if (
                    event["type"] == "executing"
                    and data.get("prompt_id") == prompt_id
                    and data.get("node") is None
                ):
                    return prompt_id


async def test_two_processes_one_room(tmp_path: Path) -> None:
    data = tmp_path / "data"
    up = start_up(data, "--workers", "2", env=env_for_tests())
    cli(data, "user", "add", "alice", "--password", "alice-pw")
    standin = start_standin(tmp_path / "standin", tmp_path / "standin.log")
    worker = start_worker(up.url, worker_token(data, "gpu-1"), standin.url, tmp_path / "w.log")
    try:
        gateways = [
            p
            for p in psutil.Process(up.proc.pid).children(recursive=True)
            if "redis-server" not in p.name()
        ]
        assert len(gateways) >= 2, [p.cmdline() for p in gateways]
        async with httpx.AsyncClient(base_url=up.url, auth=up.admin) as http:

            async def online() -> bool:
                return any(w["online"] for w in (await http.get("/api/v1/workers")).json())

            await wait_for(online, timeout=30)
        alice = ("alice", "alice-pw")
        done = await asyncio.gather(*(run_on_socket(up.url, alice, n) for n in range(SOCKETS)))
        assert len(set(done)) == SOCKETS
    finally:
        worker.stop()
        standin.stop()
        assert up.stop() == 0, up.output()
