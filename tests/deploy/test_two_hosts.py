"""An app host and a GPU host in their own network namespaces: the worker
reaches the gateway only through nginx's https port; the link between the
hosts is cut for longer than the lease in the middle of a job, then restored.
The job finishes exactly once and the worker comes back by itself."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.comfy.procs import ROOT, Proc, clean_env
from tests.conftest import Person, free_port, wait_for
from tests.deploy.netns import TwoHosts, two_hosts
from tests.deploy.proxies import Proxy, start_nginx
from tests.worker.prompts import slow

pytestmark = pytest.mark.slow

LEASE_S = 3.0


def spawn(prefix: tuple[str, ...], argv: list[str], log: Path, **env: str) -> Proc:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*prefix, *argv],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(**env),
        )
    return Proc(proc, log)


def standin_url(proc: Proc, ready: Path) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in ready.read_text(errors="replace").splitlines():
            if line.startswith("STANDIN_READY "):
                return line.split(" ", 1)[1].strip()
        time.sleep(0.05)
    raise RuntimeError(f"the stand-in did not start:\n{proc.output()}")


def start_standin_on(prefix: tuple[str, ...], tmp_path: Path, ready: Path) -> Proc:
    with ready.open("wb") as out:
        proc = subprocess.Popen(
            [
                *prefix,
                sys.executable,
                "-m",
                "tests.comfyui_standin",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--data-dir",
                str(tmp_path / "standin"),
                "--speed",
                "0",
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.DEVNULL,
            env=clean_env(),
        )
    return Proc(proc, ready)


@pytest.fixture
def hosts() -> Iterator[TwoHosts]:
    with two_hosts() as made:
        yield made


@pytest.fixture
def app_host(hosts: TwoHosts, tmp_path: Path, redis_url: str) -> Iterator[tuple[Proxy, Proc]]:
    """`comfy-multi up` and nginx inside the app host's namespace."""
    port = free_port()
    gateway = spawn(
        hosts.on(hosts.app),
        [
            sys.executable,
            "-m",
            "comfy_multi",
            "up",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "app-data"),
        ],
        tmp_path / "gateway.log",
        REDIS_URL=redis_url,
        COMFY_MULTI_LEASE_SECONDS=str(LEASE_S),
        COMFY_MULTI_HEARTBEAT_SECONDS="0.5",
        COMFY_MULTI_SWEEP_SECONDS="0.2",
        COMFY_MULTI_SECRET_KEY="two-hosts",
    )
    proxy = start_nginx(
        tmp_path / "nginx",
        port,
        hosts.app_addr_for_client,
        also=(hosts.app_addr_for_gpu,),
        prefix=hosts.on(hosts.app),
    )
    yield proxy, gateway
    proxy.stop()
    gateway.stop()


async def test_a_link_cut_mid_job_loses_nothing_and_runs_it_once(
    hosts: TwoHosts,
    app_host: tuple[Proxy, Proc],
    people: dict[str, Person],
    worker_token: str,
    tmp_path: Path,
) -> None:
    proxy, gateway = app_host
    ready = tmp_path / "standin.stdout"
    standin = start_standin_on(hosts.on(hosts.gpu), tmp_path, ready)
    worker_url = proxy.url.replace(hosts.app_addr_for_client, hosts.app_addr_for_gpu)
    worker = spawn(
        hosts.on(hosts.gpu),
        [
            sys.executable,
            "-m",
            "comfy_multi",
            "worker",
            "--gateway",
            worker_url,
            "--comfyui",
            standin_url(standin, ready),
        ],
        tmp_path / "worker.log",
        COMFY_MULTI_WORKER_TOKEN=worker_token,
        SSL_CERT_FILE=str(proxy.ca_file),
    )
    admin, alice = people["teacher"].auth, people["alice"].auth
    try:
        async with httpx.AsyncClient(
            base_url=proxy.url, verify=proxy.ssl_context(), timeout=30
        ) as http:

            async def job(job_id: str) -> dict[str, Any]:
                answer = await http.get(f"/api/v1/jobs/{job_id}", auth=admin)
                return dict(answer.json())

            async def online() -> bool:
                answer = await http.get("/api/v1/workers", auth=admin)
                return answer.status_code == 200 and any(w["online"] for w in answer.json())

            await wait_for(online, timeout=60, interval=0.2)
            answer = await http.post(
                "/u/alice/api/prompt", json={"prompt": slow(seconds=6, color=77)}, auth=alice
            )
            assert answer.status_code == 200, answer.text
            job_id = answer.json()["prompt_id"]
            await wait_for(lambda: _state_is(job, job_id, "running"), timeout=30)

            hosts.cut()
            cut_at = time.monotonic()
            # the lease runs out while the link is down: back in the queue
            await wait_for(lambda: _state_is(job, job_id, "pending"), timeout=LEASE_S * 5)
            assert time.monotonic() - cut_at >= LEASE_S * 0.5
            assert not await online()
            hosts.restore()

            done = await wait_for(lambda: _state_is(job, job_id, "done"), timeout=90)
            assert done["attempts"] >= 2  # the lost run, then the one that finished
            images = [i for out in done["outputs"].values() for i in out.get("images", [])]
            assert len(images) == 1  # the first run's late outputs were refused
            history = (await http.get("/u/alice/api/history", auth=alice)).json()
            assert list(history) == [job_id]
            await wait_for(online, timeout=30)  # the worker came back by itself
    finally:
        worker.stop()
        standin.stop()
    assert worker_token not in worker.output()
    assert "Traceback" not in gateway.output()


async def _state_is(job: Any, job_id: str, state: str) -> dict[str, Any] | None:
    current = await job(job_id)
    return current if current["state"] == state else None
