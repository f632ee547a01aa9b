"""A room through each shipped TLS proxy: sign in over https, a worker joins
through the proxy, a Run is followed on the websocket and its output downloaded."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.comfy.procs import ROOT, Proc, clean_env, start_standin, wait_worker_online
from tests.conftest import Gateway, Person
from tests.deploy.proxies import Proxy, start_caddy, start_nginx
from tests.worker.prompts import empty_saved

pytestmark = pytest.mark.slow


@pytest.fixture(params=["nginx", "caddy"])
def proxy(request: pytest.FixtureRequest, tmp_path: Path, gateway: Gateway) -> Iterator[Proxy]:
    start = start_nginx if request.param == "nginx" else start_caddy
    running = start(tmp_path / request.param, gateway.server.port)
    yield running
    running.stop()


def start_worker_via(proxy: Proxy, token: str, comfyui_url: str, log: Path) -> Proc:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "comfy_multi",
                "worker",
                "--gateway",
                proxy.url,
                "--comfyui",
                comfyui_url,
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(COMFY_MULTI_WORKER_TOKEN=token, SSL_CERT_FILE=str(proxy.ca_file)),
        )
    return Proc(proc, log)


async def run_and_follow(proxy: Proxy, cookie: str, http: httpx.AsyncClient) -> dict[str, Any]:
    """Open the participant's socket over wss, Run, and read events to the end."""
    ws_url = proxy.url.replace("https://", "wss://") + "/u/alice/ws"
    headers = {"Cookie": cookie, "Origin": proxy.url}
    async with connect(ws_url, additional_headers=headers, ssl=proxy.ssl_context()) as ws:
        sid = json.loads(await ws.recv())["data"]["sid"]
        answer = await http.post(
            "/u/alice/api/prompt",
            json={"prompt": empty_saved(color=123, prefix="tls"), "client_id": sid},
            headers={"Origin": proxy.url},
        )
        assert answer.status_code == 200, answer.text
        prompt_id = answer.json()["prompt_id"]
        output: dict[str, Any] = {}
        async with asyncio.timeout(60):
            while True:
                frame = await ws.recv()
                if isinstance(frame, bytes):
                    continue
                event = json.loads(frame)
                data = event.get("data", {})
                if data.get("prompt_id") != prompt_id:
                    continue
                if event["type"] == "executed":
                    output = data["output"]
                if event["type"] == "executing" and data.get("node") is None:
                    return output


async def test_a_room_through_the_proxy(
    proxy: Proxy,
    gateway: Gateway,
    people: dict[str, Person],
    worker_token: str,
    tmp_path: Path,
) -> None:
    standin = start_standin(tmp_path / "standin", tmp_path / "standin.log")
    worker = start_worker_via(proxy, worker_token, standin.url, tmp_path / "worker.log")
    try:
        async with httpx.AsyncClient(
            base_url=proxy.url, verify=proxy.ssl_context(), timeout=30
        ) as http:
            signed_in = await http.post(
                "/api/v1/login",
                json={"name": "alice", "password": people["alice"].password},
                headers={"Origin": proxy.url},
            )
            assert signed_in.status_code == 200, signed_in.text
            assert "secure" in signed_in.headers["set-cookie"].lower()  # the gateway saw https
            assert "max-age=" in signed_in.headers["strict-transport-security"]
            cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
            await wait_worker_online(http, people["teacher"].auth)

            output = await run_and_follow(proxy, cookie, http)
            image = output["images"][0]
            view = await http.get("/u/alice/api/view", params={**image})
            assert view.status_code == 200
            assert view.content.startswith(b"\x89PNG")

        # plain http only ever redirects to https
        async with httpx.AsyncClient() as insecure:
            plain = await insecure.get(f"http://{proxy.host}:{proxy.http_port}/login")
        assert plain.status_code in (301, 302, 308)
        assert plain.headers["location"].startswith("https://")
    finally:
        worker.stop()
        standin.stop()
    assert worker_token not in worker.output()
