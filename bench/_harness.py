"""Shared by the benchmarks: start a real platform in a scratch data dir, and a
lean HTTP/1.1 load client (keep-alive, one connection per simulated client) so
the client costs less CPU than the server it measures."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from comfy_multi.wire import Registration
from comfy_multi.worker.channel import Channel

OBJECT_INFO = {
    "EmptyImage": {
        "input": {"required": {"width": ["INT", {"default": 64, "min": 1, "max": 4096}]}},
        "output": ["IMAGE"],
        "output_node": False,
        "name": "EmptyImage",
    },
    "SaveImage": {
        "input": {"required": {"images": ["IMAGE"]}},
        "output": [],
        "output_node": True,
        "name": "SaveImage",
    },
}
PROMPT = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Platform:
    url: str
    port: int
    data_dir: Path
    admin: tuple[str, str]
    process: subprocess.Popen[bytes]

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "comfy_multi", *args, "--data-dir", str(self.data_dir)],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
        return kb / 1024


@contextmanager
def platform(*extra: str, **env: str) -> Iterator[Platform]:
    """`extra`: more arguments for `up` (`--workers 2`)."""
    with tempfile.TemporaryDirectory(prefix="cm-bench-") as tmp:
        data = Path(tmp) / "data"
        port = free_port()
        environ = {**os.environ, "COMFY_MULTI_LOG_LEVEL": "warning", **env}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "comfy_multi",
                "up",
                "--data-dir",
                str(data),
                "--port",
                str(port),
                *extra,
            ],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=(Path(tmp) / "gateway.log").open("wb"),
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the platform did not start")
                time.sleep(0.1)
            password = (data / "initial-admin-password").read_text().strip()
            yield Platform(url, port, data, ("admin", password), proc)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            log = (Path(tmp) / "gateway.log").read_text(errors="replace")
            if "Traceback" in log:
                print("gateway errors:\n" + log[-3000:], file=sys.stderr)


async def register_worker(url: str, token: str, worker_id: str) -> None:
    """Register as a GPU worker through the real worker channel client."""
    channel = Channel(url, token, worker_id)
    try:
        raw = orjson.dumps(OBJECT_INFO)
        digest = hashlib.sha256(raw).hexdigest()
        answer = await channel.register(
            Registration(worker_id=worker_id, object_info_digest=digest, nodes=list(OBJECT_INFO))
        )
        if answer.need_object_info:
            await channel.put_object_info(digest, raw)
    finally:
        await channel.aclose()


def register_fake_worker(p: Platform, worker_id: str = "bench-gpu") -> str:
    token = p.cli("worker-token", "create", worker_id).strip().splitlines()[-1]
    asyncio.run(register_worker(p.url, token, worker_id))
    return token


def add_users(p: Platform, count: int) -> list[tuple[str, str]]:
    people = []
    with httpx.Client(base_url=p.url, auth=p.admin, timeout=30) as c:
        c.put("/api/v1/queue/cap", json={"cap": 0}).raise_for_status()  # no cap while measuring
        for i in range(count):
            r = c.post("/api/v1/users", json={"name": f"user{i:03d}", "password": "bench-pw"})
            r.raise_for_status()
            people.append((f"user{i:03d}", "bench-pw"))
    return people


def basic(person: tuple[str, str]) -> str:
    """The Authorization header line of HTTP Basic credentials."""
    return "Authorization: Basic " + base64.b64encode(f"{person[0]}:{person[1]}".encode()).decode()


class Conn:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol,
    so the load generator costs less than what it measures. `credential` is a
    whole header line (Authorization or Cookie)."""

    def __init__(self, port: int, credential: str) -> None:
        self.port = port
        self.credential = credential
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        try:
            return await self._request(method, path, body, headers or {})
        except (asyncio.IncompleteReadError, ConnectionError):
            # the server closed an idle keep-alive connection: reconnect once
            await self.close()
            return await self._request(method, path, body, headers or {})

    async def post(
        self, path: str, body: Any, lease: tuple[str, str] | None = None
    ) -> tuple[int, bytes]:
        """`lease`: (lease token, worker id) for a job-scoped call."""
        headers = {"X-Lease-Token": lease[0], "X-Worker-Id": lease[1]} if lease else {}
        return await self.request("POST", path, orjson.dumps(body), headers)

    async def _request(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None
        assert self.writer is not None
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"{self.credential}\r\n{extra}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        await self.writer.drain()
        status = int((await self.reader.readuntil(b"\r\n")).split()[1])
        length = 0
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in samples_s)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"p50_ms": round(q[49], 2), "p95_ms": round(q[94], 2), "p99_ms": round(q[98], 2)}


def report(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    if not rows:
        return
    cols = list(rows[0])
    print("  " + "  ".join(f"{c:>14}" for c in cols))
    for row in rows:
        print("  " + "  ".join(f"{row[c]!s:>14}" for c in cols))
