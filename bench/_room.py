"""A workshop room for bench_room.py and soak.py: participants with open
sockets pressing Run in bursts ("now press Run"), uploading an image now and
then, downloading their outputs; stand-in GPU workers that claim through the
real worker channel, take a realistic time per Run, relay progress, upload
an output and complete. Everything on loopback; every figure kept here."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from _harness import OBJECT_INFO, PROMPT, Conn, Platform, percentiles
from bench_participants import Participant, open_socket, sign_in
from PIL import Image
from redis import Redis


def png(seed: int, size: int = 64) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (seed % 256, seed * 7 % 256, seed * 13 % 256)).save(out, "PNG")
    return out.getvalue()


@dataclass
class Figures:
    """Samples since the last `take()`; errors are counted for the whole run."""

    submit: list[float] = field(default_factory=list)
    status: list[float] = field(default_factory=list)
    first_event: list[float] = field(default_factory=list)  # Run pressed -> first socket message
    fan_out: list[float] = field(default_factory=list)  # worker's POST -> participant's socket
    download: list[float] = field(default_factory=list)
    upload: list[float] = field(default_factory=list)
    runs_done: int = 0
    errors: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        if len(self.errors) < 50:
            self.errors.append(what)
        else:
            self.errors.append("…")

    def take(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("submit", "status", "first_event", "fan_out", "download", "upload"):
            samples: list[float] = getattr(self, name)
            if len(samples) >= 2:
                q = percentiles(samples)
                out[f"{name}_p50_ms"], out[f"{name}_p99_ms"] = q["p50_ms"], q["p99_ms"]
            else:
                out[f"{name}_p50_ms"] = out[f"{name}_p99_ms"] = ""
            out[f"{name}_n"] = len(samples)
            samples.clear()
        out["runs_done"], self.runs_done = self.runs_done, 0
        return out


@dataclass
class Person:
    who: Participant
    link: Conn
    pressed: dict[str, float] = field(default_factory=dict)  # job id -> when Run was pressed
    waiting_first: list[float] = field(default_factory=list)  # Runs not yet answered on the socket
    outputs: list[str] = field(default_factory=list)


class Room:
    def __init__(self, p: Platform, users: int, workers: int, run_seconds: float) -> None:
        self.p = p
        self.users = users
        self.worker_count = workers
        self.run_seconds = run_seconds
        self.figures = Figures()
        self.people: dict[str, Person] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.stopping = False
        sock = next(p.data_dir.glob("redis/redis.sock"), None)
        self.redis = Redis(unix_socket_path=str(sock)) if sock else None

    # -- setting up ---------------------------------------------------------
    async def open(self, people: list[tuple[str, str]]) -> None:
        for who in await sign_in(self.p, people):
            await open_socket(self.p, who)
            link = Conn(self.p.port, f"Cookie: cm_session={who.cookie}")
            self.people[who.name] = Person(who, link)
        for person in self.people.values():
            self.tasks.append(asyncio.create_task(self._listen(person)))
        token = self.p.cli("worker-token", "create", "room-gpus").strip().splitlines()[-1]
        body = orjson.dumps(OBJECT_INFO)
        digest = hashlib.sha256(body).hexdigest()
        async with httpx.AsyncClient(
            base_url=self.p.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as http:
            for i in range(self.worker_count):
                r = await http.post(
                    "/worker/v1/register",
                    json={
                        "worker_id": f"room-{i}",
                        "object_info_digest": digest,
                        "nodes": list(OBJECT_INFO),
                    },
                )
                r.raise_for_status()
                if r.json()["need_object_info"]:
                    put = await http.put(f"/worker/v1/object_info?digest={digest}", content=body)
                    put.raise_for_status()
        for i in range(self.worker_count):
            link = Conn(self.p.port, f"Authorization: Bearer {token}")
            self.tasks.append(asyncio.create_task(self._work(i, link)))

    async def close(self) -> None:
        self.stopping = True
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for person in self.people.values():
            if person.who.ws is not None:
                await person.who.ws.close()
            await person.link.close()

    # -- the participants ---------------------------------------------------
    async def _listen(self, person: Person) -> None:
        ws = person.who.ws
        assert ws is not None
        async for frame in ws:
            now = time.perf_counter()
            if isinstance(frame, bytes):
                continue
            message = orjson.loads(frame)
            data = message.get("data") or {}
            kind = message.get("type")
            if kind == "status" and person.waiting_first:
                self.figures.first_event.append(now - person.waiting_first.pop(0))
            elif kind == "progress" and "sent" in data:
                if data.get("user") != person.who.name:
                    self.figures.error(f"{person.who.name} got another person's progress")
                self.figures.fan_out.append(now - data["sent"])
            elif kind == "executed":
                for image in (data.get("output") or {}).get("images", []):
                    person.outputs.append(image["filename"])
            elif kind == "execution_error":
                self.figures.error(f"{person.who.name}: execution_error {data}")

    async def press_run(self, person: Person, upload: bool) -> None:
        name = person.who.name
        try:
            if upload:
                await self._upload(person)
            person.waiting_first.append(time.perf_counter())
            started = time.perf_counter()
            status, body = await person.link.post(
                f"/u/{name}/api/prompt", {"prompt": PROMPT, "client_id": person.who.sid}
            )
            self.figures.submit.append(time.perf_counter() - started)
            if status != 200:
                person.waiting_first.pop()
                self.figures.error(f"submit {status} {body[:200]!r}")
                return
            person.pressed[orjson.loads(body)["prompt_id"]] = started
        except (OSError, asyncio.IncompleteReadError) as e:
            self.figures.error(f"submit {type(e).__name__}: {e}")

    async def _upload(self, person: Person) -> None:
        boundary = uuid.uuid4().hex
        image = png(random.randrange(1 << 24), 128)
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
                f'filename="photo-{random.randrange(1000)}.png"\r\nContent-Type: image/png\r\n\r\n'
            ).encode()
            + image
            + f"\r\n--{boundary}--\r\n".encode()
        )
        started = time.perf_counter()
        status, answer = await person.link.request(
            "POST",
            f"/u/{person.who.name}/api/upload/image",
            body,
            {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        self.figures.upload.append(time.perf_counter() - started)
        if status != 200:
            self.figures.error(f"upload {status} {answer[:200]!r}")

    async def look(self, person: Person) -> None:
        """What a page does between Runs: read the queue; fetch a new output."""
        name = person.who.name
        try:
            started = time.perf_counter()
            status, body = await person.link.request("GET", f"/u/{name}/api/queue")
            self.figures.status.append(time.perf_counter() - started)
            if status != 200:
                self.figures.error(f"queue {status} {body[:200]!r}")
            if person.outputs:
                filename = person.outputs.pop(0)
                started = time.perf_counter()
                status, body = await person.link.request(
                    "GET", f"/u/{name}/api/view?filename={filename}&type=output&subfolder="
                )
                self.figures.download.append(time.perf_counter() - started)
                if status != 200 or not body.startswith(b"\x89PNG"):
                    self.figures.error(f"view {status} {body[:100]!r}")
        except (OSError, asyncio.IncompleteReadError) as e:
            self.figures.error(f"look {type(e).__name__}: {e}")

    async def burst(self, share: float, spread_s: float, upload_share: float) -> int:
        """The instructor says "now press Run": `share` of the room presses it
        within `spread_s` seconds; some upload a picture first."""
        chosen = [p for p in self.people.values() if random.random() < share]

        async def one(person: Person) -> None:
            await asyncio.sleep(random.uniform(0, spread_s))
            await self.press_run(person, upload=random.random() < upload_share)

        await asyncio.gather(*(one(p) for p in chosen))
        return len(chosen)

    async def browse(self, seconds: float, per_person_every_s: float = 5.0) -> None:
        """Between bursts every page looks at its queue every few seconds."""
        until = time.perf_counter() + seconds

        async def one(person: Person) -> None:
            await asyncio.sleep(random.uniform(0, per_person_every_s))
            while time.perf_counter() < until:
                await self.look(person)
                await asyncio.sleep(per_person_every_s * random.uniform(0.7, 1.3))

        await asyncio.gather(*(one(p) for p in self.people.values()))

    # -- the stand-in workers -----------------------------------------------
    async def _work(self, index: int, link: Conn) -> None:
        worker_id = f"room-{index}"
        while not self.stopping:
            try:
                await self._one_job(worker_id, link)
            except (OSError, asyncio.IncompleteReadError) as e:
                self.figures.error(f"worker {type(e).__name__}: {e}")
                await asyncio.sleep(1)

    async def _one_job(self, worker_id: str, link: Conn) -> None:
        status, raw = await link.post(
            "/worker/v1/claim", {"worker_id": worker_id, "wait_seconds": 5}
        )
        if status == 204:
            return
        if status != 200:
            self.figures.error(f"claim {status} {raw[:200]!r}")
            await asyncio.sleep(1)
            return
        job = orjson.loads(raw)
        job_id, user = job["job_id"], job["user"]
        lease = (str(job["lease_token"]), worker_id)
        base = f"/worker/v1/jobs/{job_id}"
        run_s = random.uniform(0.5, 1.5) * self.run_seconds
        steps = max(2, int(run_s / 0.25))
        await link.post(
            f"{base}/events",
            {"events": [{"type": "execution_start", "data": {"prompt_id": job_id}}]},
            lease,
        )
        for step in range(steps):
            await asyncio.sleep(run_s / steps)
            data = {"prompt_id": job_id, "node": "2", "value": step + 1, "max": steps}
            data.update(user=user, sent=time.perf_counter())
            status, raw = await link.post(
                f"{base}/events", {"events": [{"type": "progress", "data": data}]}, lease
            )
            if status != 204:
                self.figures.error(f"events {status} {raw[:200]!r}")
        status, raw = await link.request(
            "PUT",
            f"{base}/outputs?filename=room_00001_.png&subfolder=&type=output",
            png(len(job_id)),
            {"X-Lease-Token": lease[0], "X-Worker-Id": worker_id},
        )
        if status != 200:
            self.figures.error(f"output {status} {raw[:200]!r}")
            await link.post(
                f"{base}/fail", {"error": {"type": "disk", "message": "output refused"}}, lease
            )
            return
        stored = orjson.loads(raw)
        ui = {"images": [stored]}
        events = [
            {
                "type": "executed",
                "data": {"node": "2", "display_node": "2", "output": ui, "prompt_id": job_id},
            },
            {
                "type": "execution_success",
                "data": {"prompt_id": job_id, "timestamp": int(time.time() * 1000)},
            },
        ]
        await link.post(f"{base}/events", {"events": events}, lease)
        status, raw = await link.post(f"{base}/complete", {"outputs": {"2": ui}}, lease)
        if status != 204:
            self.figures.error(f"complete {status} {raw[:200]!r}")
        self.figures.runs_done += 1

    # -- what it costs ------------------------------------------------------
    def memory(self) -> dict[str, Any]:
        out: dict[str, Any] = {"gateway_rss_mb": round(tree_rss_mb(self.p.process.pid), 1)}
        if self.redis is not None:
            info = self.redis.info("memory")
            out["redis_used_mb"] = round(info["used_memory"] / 2**20, 2)
            out["redis_rss_mb"] = round(info["used_memory_rss"] / 2**20, 1)
            out["redis_keys"] = self.redis.dbsize()
        return out


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and its children (`up --workers N` forks N gateways),
    without the embedded Redis (measured on its own)."""
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            name = status.splitlines()[0].split()[-1]
            if "redis" in name:
                continue
            total += next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS"))
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (FileNotFoundError, StopIteration, ProcessLookupError):
            continue
        stack.extend(int(c) for c in children)
    return total / 1024


def load_average() -> float:
    return round(os.getloadavg()[0], 2)
