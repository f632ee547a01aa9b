"""The worst legal input of each kind, against one gateway on loopback: what it
costs the gateway, and what another person's requests feel meanwhile.

Starts its own room (`comfy-multi up` with its embedded Redis, in a scratch
data dir) with a fake worker's node definitions, an attacker and a bystander.
For each attack the attacker sends `--rounds` requests back to back from
`--tabs` connections at once, while the bystander reads /health and their
own queue (GET /u/<name>/api/queue) every 20 ms. Reported per attack: the
attacker's answers (status, size, time), the bystander's latency (p50, p99,
max) and the gateway's peak RSS above its idle figure (sampled every 10 ms).

    .venv/bin/python bench/bench_abuse.py [--rounds 3] [--tabs 2]

Loopback only; every input is bounded by the gateway's own limits (8 MiB JSON
bodies, the image pixel budget), which is what makes it "legal".
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import struct
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from _harness import Conn, Platform, add_users, basic, percentiles, platform, report
from PIL import Image

BODY_LIMIT = 8 * 1024 * 1024
PIXEL_BUDGET = 4096 * 3072  # COMFY_MULTI_MAX_IMAGE_PIXELS' default
MAX_ITEMS = 400_000  # values in one JSON body (comfy_multi.services.jsonbody.MAX_ITEMS)

NODES = {
    "EmptyImage": {
        "input": {"required": {"width": ["INT", {"default": 64, "min": 1, "max": 4096}]}},
        "output": ["IMAGE"],
        "output_node": False,
        "name": "EmptyImage",
    },
    "ImageInvert": {
        "input": {"required": {"image": ["IMAGE"]}},
        "output": ["IMAGE"],
        "output_node": False,
        "name": "ImageInvert",
    },
    "SaveImage": {
        "input": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {}]}},
        "output": [],
        "output_node": True,
        "name": "SaveImage",
    },
    "LoadImage": {
        "input": {"required": {"image": [[], {"image_upload": True}]}},
        "output": ["IMAGE", "MASK"],
        "output_node": False,
        "name": "LoadImage",
    },
}


def register_worker(p: Platform) -> None:
    token = p.cli("worker-token", "create", "abuse-gpu").strip().splitlines()[-1]
    body = orjson.dumps(NODES)
    digest = hashlib.sha256(body).hexdigest()
    with httpx.Client(base_url=p.url, headers={"Authorization": f"Bearer {token}"}) as c:
        c.post(
            "/worker/v1/register",
            json={"worker_id": "abuse-gpu", "object_info_digest": digest, "nodes": list(NODES)},
        ).raise_for_status()
        c.put(f"/worker/v1/object_info?digest={digest}", content=body).raise_for_status()


# the inputs ---------------------------------------------------------------------------


def fill(node: Callable[[int], tuple[str, Any]], budget: int = BODY_LIMIT - 64) -> bytes:
    """{"prompt": {...}} with as many nodes as the gateway takes: under the body
    limit and under the values limit of its JSON parser."""
    sample = orjson.dumps(dict([node(10**6)]))
    values = sample.count(b",") + sample.count(b"[") + sample.count(b"{")
    count = min(budget // (len(sample) + 1), (MAX_ITEMS - 100) // values)
    return orjson.dumps({"prompt": dict(node(i) for i in range(count))})


def invalid_outputs() -> bytes:
    """Every node an output whose input links to a node that is not there."""
    return fill(
        lambda i: (
            str(i),
            {"class_type": "SaveImage", "inputs": {"images": ["gone", 0], "filename_prefix": "x"}},
        )
    )


def broken_chain() -> bytes:
    """One long chain of ImageInvert ending in SaveImage, its head out of range:
    validation walks every link before refusing it."""

    def node(i: int) -> tuple[str, Any]:
        if i == 0:
            return "0", {"class_type": "EmptyImage", "inputs": {"width": -1}}
        return str(i), {"class_type": "ImageInvert", "inputs": {"image": [str(i - 1), 0]}}

    body = orjson.loads(fill(node, BODY_LIMIT - 200))  # the values limit binds first
    last = str(len(body["prompt"]) - 1)
    body["prompt"]["out"] = {
        "class_type": "SaveImage",
        "inputs": {"images": [last, 0], "filename_prefix": "x"},
    }
    return orjson.dumps(body)


def long_text() -> bytes:
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64}},
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": "fox " * 2_500},
        },
    }
    return orjson.dumps({"prompt": prompt})


def deep_json() -> bytes:
    return b'{"prompt": ' + b"[" * 1_000 + b"]" * 1_000 + b"}"


def png_bomb(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(b"\x00" * (width + 1)) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", idat + packer.flush())
        + chunk(b"IEND", b"")
    )


def image_at_budget() -> bytes:
    """An RGBA PNG of exactly the pixel budget (decoding it costs what any would)."""
    gradient = Image.linear_gradient("L").resize((4096, 3072))
    out = io.BytesIO()
    Image.merge("RGBA", (gradient, gradient, gradient, gradient)).save(out, format="PNG")
    return out.getvalue()


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "abuse-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


# the measurement ----------------------------------------------------------------------


@dataclass
class Watch:
    """The bystander's latencies and the gateway's RSS while an attack runs."""

    p: Platform
    bystander: tuple[str, str]
    latencies: list[float] = field(default_factory=list)
    failures: int = 0  # the bystander's answers other than 200
    peak_rss: float = 0.0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def requests(self) -> None:
        conn = Conn(self.p.port, basic(self.bystander))
        name = self.bystander[0]
        try:
            while not self.stop.is_set():
                for path in ("/health", f"/u/{name}/api/queue"):
                    start = time.perf_counter()
                    status, _ = await conn.request("GET", path)
                    self.latencies.append(time.perf_counter() - start)
                    self.failures += status != 200
                await asyncio.sleep(0.02)
        finally:
            await conn.close()

    async def memory(self) -> None:
        while not self.stop.is_set():
            self.peak_rss = max(self.peak_rss, self.p.rss_mb())
            await asyncio.sleep(0.01)


async def attack(
    p: Platform,
    attacker: tuple[str, str],
    bystander: tuple[str, str],
    send: Callable[[Conn], Awaitable[tuple[int, bytes]]],
    rounds: int,
    tabs: int,
    idle_rss: float,
    what: str,
) -> dict[str, Any]:
    watch = Watch(p, bystander)
    background = [asyncio.create_task(watch.requests()), asyncio.create_task(watch.memory())]
    await asyncio.sleep(0.2)  # a baseline of bystander requests first
    times: list[float] = []
    answers: list[tuple[int, int]] = []

    async def tab() -> None:
        conn = Conn(p.port, basic(attacker))
        try:
            for _ in range(rounds):
                start = time.perf_counter()
                status, body = await send(conn)
                times.append(time.perf_counter() - start)
                answers.append((status, len(body)))
        finally:
            await conn.close()

    await asyncio.gather(*(tab() for _ in range(tabs)))
    watch.stop.set()
    await asyncio.gather(*background)
    statuses = sorted({s for s, _ in answers})
    bystander_ms = percentiles(watch.latencies)
    return {
        "attack": what,
        "answers": "/".join(map(str, statuses)),
        "answer_kB": round(max(n for _, n in answers) / 1024, 1),
        "attack_s": round(max(times), 2),
        "other_p50_ms": bystander_ms["p50_ms"],
        "other_p99_ms": bystander_ms["p99_ms"],
        "other_max_ms": round(max(watch.latencies) * 1000, 1),
        "other_errors": watch.failures,
        "rss_over_MB": round(watch.peak_rss - idle_rss, 1),
    }


async def run(p: Platform, args: argparse.Namespace) -> list[dict[str, Any]]:
    attacker, bystander = add_users(p, 2)
    register_worker(p)
    prompt_path = f"/u/{attacker[0]}/api/prompt"
    outputs = Path(p.data_dir) / "users" / attacker[0] / "output"
    outputs.mkdir(parents=True, exist_ok=True)
    (outputs / "bomb.png").write_bytes(png_bomb(10_000, 10_000))
    (outputs / "budget.png").write_bytes(image_at_budget())
    bodies = {
        "invalid": invalid_outputs(),
        "chain": broken_chain(),
        "text": long_text(),
        "deep": deep_json(),
    }
    bomb_upload = multipart("bomb.png", png_bomb(10_000, 10_000))

    def post(body: bytes) -> Callable[[Conn], Awaitable[tuple[int, bytes]]]:
        return lambda conn: conn.request("POST", prompt_path, body)

    def get(path: str) -> Callable[[Conn], Awaitable[tuple[int, bytes]]]:
        return lambda conn: conn.request("GET", f"/u/{attacker[0]}/api/{path}")

    def upload(conn: Conn) -> Awaitable[tuple[int, bytes]]:
        body, content_type = bomb_upload
        return conn.request(
            "POST", f"/u/{attacker[0]}/api/upload/image", body, {"Content-Type": content_type}
        )

    n_invalid = len(orjson.loads(bodies["invalid"])["prompt"])
    n_chain = len(orjson.loads(bodies["chain"])["prompt"])
    attacks: list[tuple[str, Callable[[Conn], Awaitable[tuple[int, bytes]]]]] = [
        (f"{n_invalid:,} invalid outputs", post(bodies["invalid"])),
        ("8 MiB of [[],[],...]", post(b'{"prompt": {}, "x": [' + b"[]," * 2_700_000 + b"[]]}")),
        (f"{n_chain:,}-node chain, head invalid", post(bodies["chain"])),
        ("10,000-char text input", post(bodies["text"])),
        ("1,000-deep JSON", post(bodies["deep"])),
        ("upload 10k x 10k PNG (97 kB)", upload),
        ("10k x 10k PNG preview=webp;50", get("view?filename=bomb.png&preview=webp;50")),
        ("10k x 10k PNG channel=a", get("view?filename=bomb.png&channel=a")),
        ("4096 x 3072 RGBA preview=webp;50", get("view?filename=budget.png&preview=webp;50")),
        ("4096 x 3072 RGBA channel=a", get("view?filename=budget.png&channel=a")),
        ("4096 x 3072 RGBA channel=rgb", get("view?filename=budget.png&channel=rgb")),
    ]
    # warm up the bystander's and attacker's paths, then take the idle figure
    warm = Conn(p.port, basic(bystander))
    for _ in range(20):
        await warm.request("GET", f"/u/{bystander[0]}/api/queue")
    await warm.close()
    await asyncio.sleep(1)
    idle = p.rss_mb()
    print(f"gateway idle RSS: {idle:.0f} MB")
    rows = []
    for what, send in attacks:
        rows.append(await attack(p, attacker, bystander, send, args.rounds, args.tabs, idle, what))
        print(f"  done: {what}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="requests per tab and attack")
    parser.add_argument("--tabs", type=int, default=2, help="the attacker's parallel connections")
    args = parser.parse_args()
    with platform() as p:
        rows = asyncio.run(run(p, args))
    report("worst legal inputs (one attacker; 'other' is another person meanwhile)", rows)


if __name__ == "__main__":
    main()
