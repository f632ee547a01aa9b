"""The ComfyUI stand-in against ComfyUI 0.3.64's behaviour.

Tests taking ``server`` run on the stand-in (uvicorn on loopback) and on the
session's real ComfyUI (fixture ``comfyui_url``, marker ``comfyui``); those
marked ``standin_only`` need the stand-in's test nodes or its folders. Shared
tests use fresh names, colours and client ids, so a long-running real server's
files, cache and history do not get in the way.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import struct
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from PIL import Image, PngImagePlugin, WebPImagePlugin
from websockets.asyncio.client import ClientConnection, connect

from tests.comfyui_standin import RunningStandin, serve
from tests.comfyui_standin.paths import Dirs

ROOT = Path(__file__).resolve().parents[1]
EVENT_TIMEOUT_S = 30.0
STANDIN_UPLOAD_LIMIT_MB = 1.0
Message = tuple[str, Any]  # ("json", {"type", "data"}) or ("bin", bytes)

standin_only = pytest.mark.parametrize("server", ["standin"], indirect=True)


# --- fixtures and helpers --------------------------------------------------------------------


@dataclass
class Server:
    url: str
    running: RunningStandin | None = None  # None: the session's real ComfyUI

    @property
    def real(self) -> bool:
        return self.running is None

    @property
    def dirs(self) -> Dirs:
        assert self.running is not None, "only the stand-in's folders can be reached"
        return self.running.standin.dirs

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)


SERVERS = ["standin", pytest.param("comfyui", marks=pytest.mark.comfyui)]


@pytest.fixture(params=SERVERS)
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    if request.param == "comfyui":
        yield Server(request.getfixturevalue("comfyui_url"))
        return
    async with serve(
        tmp_path / "comfyui", speed=0.0, max_upload_mb=STANDIN_UPLOAD_LIMIT_MB
    ) as running:
        yield Server(running.url, running)


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=EVENT_TIMEOUT_S) as client:
        yield client


def fresh(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def color() -> int:
    """A random EmptyImage colour, so that a real server's cache never answers."""
    return random.randrange(1 << 24)


class Socket:
    """A websocket client that keeps every frame it receives, in order."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.seen: list[Message] = []

    async def next(self) -> Message:
        frame = await asyncio.wait_for(self.conn.recv(), EVENT_TIMEOUT_S)
        message: Message = (
            ("bin", frame) if isinstance(frame, bytes) else ("json", json.loads(frame))
        )
        self.seen.append(message)
        return message

    async def until(self, event: str, **match: Any) -> dict[str, Any]:
        """Read up to the first `event` whose data has the given items; returns its data."""
        while True:
            kind, body = await self.next()
            if kind == "json" and body["type"] == event:
                data: dict[str, Any] = body["data"]
                if all(data.get(k) == v for k, v in match.items()):
                    return data

    async def finished(self, prompt_id: str) -> list[Message]:
        await self.until("executing", node=None, prompt_id=prompt_id)
        return self.seen

    def types(self) -> list[str]:
        return [
            body["type"] if kind == "json" else f"bin{_bin_type(body)}" for kind, body in self.seen
        ]

    def events(self, event: str) -> list[dict[str, Any]]:
        return [b["data"] for k, b in self.seen if k == "json" and b["type"] == event]

    def binary(self) -> list[bytes]:
        return [body for kind, body in self.seen if kind == "bin"]


def _bin_type(frame: bytes) -> int:
    return int(struct.unpack(">I", frame[:4])[0])


async def open_socket(
    server: Server, client_id: str | None = None, *, flags: bool = False, path: str = "/ws"
) -> tuple[ClientConnection, Socket]:
    url = server.ws_url + path
    if client_id:
        url += f"?clientId={client_id}"
    conn = await connect(url, max_size=None)
    sock = Socket(conn)
    await sock.until("status")
    if flags:
        await conn.send(
            json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
        )
        await sock.until("feature_flags")
    return conn, sock


async def post_prompt(
    http: httpx.AsyncClient, prompt: dict[str, Any], client_id: str | None = None, **extra: Any
) -> str:
    body: dict[str, Any] = {"prompt": prompt, **extra}
    if client_id is not None:
        body["client_id"] = client_id
    response = await http.post("/prompt", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["node_errors"] == {}
    return str(response.json()["prompt_id"])


def empty(color: int = 0, size: int = 16, batch: int = 1) -> dict[str, Any]:
    return {
        "class_type": "EmptyImage",
        "inputs": {"width": size, "height": size, "batch_size": batch, "color": color},
    }


def saved(source: list[Any], prefix: str = "x") -> dict[str, Any]:
    return {"class_type": "SaveImage", "inputs": {"images": source, "filename_prefix": prefix}}


def preview(source: list[Any]) -> dict[str, Any]:
    return {"class_type": "PreviewImage", "inputs": {"images": source}}


def trivial(color: int = 0, prefix: str = "ComfyUI") -> dict[str, Any]:
    return {"1": empty(color), "2": saved(["1", 0], prefix)}


def slow(seconds: float, steps: int, color: int = 0) -> dict[str, Any]:
    return {
        "1": empty(color, size=64),
        "2": {
            "class_type": "StandinSlow",
            "inputs": {"image": ["1", 0], "seconds": seconds, "steps": steps},
        },
        "3": preview(["2", 0]),
    }


def long_running(server: Server) -> tuple[dict[str, Any], str]:
    """A prompt that runs for seconds, and the node an interrupt is seen at."""
    if not server.real:
        return slow(30.0, 300, color()), "2"
    blur = {"image": ["1", 0], "blur_radius": 31, "sigma": round(random.uniform(5, 9), 2)}
    prompt = {
        "1": empty(color(), size=2048),
        "2": {"class_type": "ImageBlur", "inputs": blur},
        "3": preview(["2", 0]),
    }
    return prompt, "3"  # ComfyUI notices an interrupt only between nodes


def scale(source: list[Any], width: int, height: int, method: str = "bilinear") -> dict[str, Any]:
    inputs = {"image": source, "upscale_method": method, "width": width, "height": height}
    return {"class_type": "ImageScale", "inputs": {**inputs, "crop": "disabled"}}


def png_bytes(color: tuple[int, ...] = (200, 30, 60), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (8, 6), color).save(out, format="PNG")
    return out.getvalue()


async def upload(
    http: httpx.AsyncClient, name: str, content: bytes, route: str = "/upload/image", **fields: str
) -> httpx.Response:
    return await http.post(route, files={"image": (name, content, "image/png")}, data=fields)


async def run_to_end(http: httpx.AsyncClient, server: Server, prompt: dict[str, Any]) -> Socket:
    client_id = fresh("c")
    conn, sock = await open_socket(server, client_id)
    async with conn:
        await sock.finished(await post_prompt(http, prompt, client_id))
    assert "execution_success" in sock.types(), sock.events("execution_error")
    return sock


# --- serving -------------------------------------------------------------------------------


async def test_command_line_prints_one_ready_line_and_serves(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        *[
            sys.executable,
            "-m",
            "tests.comfyui_standin",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), EVENT_TIMEOUT_S)).decode()
        assert line.startswith("STANDIN_READY http://127.0.0.1:")
        async with httpx.AsyncClient() as client:
            stats = (await client.get(line.split()[1] + "/system_stats")).json()
        assert stats["system"]["comfyui_version"]
        assert (tmp_path / "input").is_dir()
        assert (tmp_path / "output").is_dir()
    finally:
        proc.terminate()
        rest = await asyncio.wait_for(proc.stdout.read(), EVENT_TIMEOUT_S)
        await proc.wait()
    assert rest == b""


@pytest.mark.parametrize(
    "path",
    ["/object_info", "/object_info/SaveImage", "/embeddings", "/extensions", "/system_stats",
     "/features", "/prompt", "/queue", "/history/none", "/models"],
)  # fmt: skip
async def test_routes_answer_with_and_without_api_prefix(
    http: httpx.AsyncClient, path: str
) -> None:
    plain, prefixed = await http.get(path), await http.get("/api" + path)
    assert plain.status_code == prefixed.status_code == 200
    assert plain.headers["content-type"].startswith("application/json")
    assert _steady(plain.json()) == _steady(prefixed.json())


def _steady(answer: Any) -> Any:
    """An answer without the free-memory figures, which change between two calls."""
    if isinstance(answer, dict):
        return {k: _steady(v) for k, v in answer.items() if not k.endswith("_free")}
    if isinstance(answer, list):
        return [_steady(v) for v in answer]
    return answer


async def test_object_info_has_comfyui_definitions(http: httpx.AsyncClient) -> None:
    info = (await http.get("/object_info")).json()
    assert {
        "EmptyImage", "LoadImage", "LoadImageMask", "ImageInvert", "ImageScale", "ImageBlur",
        "SolidMask", "SaveImage", "PreviewImage", "SaveImageWebsocket", "SaveAnimatedWEBP",
    } <= set(info)  # fmt: skip
    assert info["EmptyImage"]["input"]["required"]["width"] == [
        "INT",
        {"default": 512, "min": 1, "max": 16384, "step": 1},
    ]
    save = info["SaveImage"]
    assert save["output_node"] is True
    assert save["output"] == []
    assert save["category"] == "image"
    assert save["input"]["hidden"] == {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
    assert info["LoadImage"]["output"] == ["IMAGE", "MASK"]
    assert info["ImageBlur"]["python_module"] == "comfy_extras.nodes_post_processing"
    assert (await http.get("/object_info/Nope")).json() == {}


@standin_only
async def test_object_info_has_the_test_nodes(http: httpx.AsyncClient) -> None:
    info = (await http.get("/object_info")).json()
    assert info["StandinSlow"]["input"]["required"]["steps"][0] == "INT"
    assert info["StandinSlow"]["output"] == ["IMAGE"]
    assert info["StandinLargeOutput"]["output_node"] is True
    assert info["StandinFail"]["input"]["required"]["message"][0] == "STRING"


@standin_only
async def test_load_image_lists_image_files_of_the_input_folder(
    http: httpx.AsyncClient, server: Server
) -> None:
    inputs = Path(server.dirs.input)
    (inputs / "b.png").write_bytes(png_bytes())
    (inputs / "a.jpg").write_bytes(b"x")
    (inputs / "notes.txt").write_text("x")
    (inputs / "sub").mkdir()
    (inputs / "sub" / "c.png").write_bytes(png_bytes())
    info = (await http.get("/object_info/LoadImage")).json()["LoadImage"]
    assert info["input"]["required"]["image"] == [["a.jpg", "b.png"], {"image_upload": True}]
    mask = (await http.get("/object_info/LoadImageMask")).json()["LoadImageMask"]
    assert mask["input"]["required"]["image"][0] == ["a.jpg", "b.png", "notes.txt"]


async def test_uploaded_image_is_listed_by_load_image(
    http: httpx.AsyncClient, server: Server
) -> None:
    name, folder = fresh() + ".png", fresh()
    await upload(http, name, png_bytes())
    await upload(http, name, png_bytes(), subfolder=folder)
    info = (await http.get("/object_info/LoadImage")).json()["LoadImage"]
    listed = info["input"]["required"]["image"][0]
    assert name in listed
    assert f"{folder}/{name}" not in listed  # ComfyUI lists the top folder only


async def test_features_match_the_websocket_answer(http: httpx.AsyncClient, server: Server) -> None:
    features = (await http.get("/features")).json()
    assert features["supports_preview_metadata"] is True
    limit = 100 if server.real else STANDIN_UPLOAD_LIMIT_MB
    assert features["max_upload_size"] == int(limit * 1024 * 1024)
    conn, sock = await open_socket(server, flags=True)
    async with conn:
        assert sock.events("feature_flags") == [features]


# --- websocket events -------------------------------------------------------------------


async def test_trivial_job_events_in_comfyui_order(http: httpx.AsyncClient, server: Server) -> None:
    client_id, prefix = fresh("c"), fresh()
    conn, sock = await open_socket(server, client_id)
    async with conn:
        prompt_id = await post_prompt(http, trivial(color(), prefix), client_id)
        await sock.finished(prompt_id)
    assert sock.types() == [
        "status", "status", "status", "execution_start", "execution_cached", "progress_state",
        "executing", "progress_state", "progress_state", "executing", "executed",
        "progress_state", "execution_success", "status", "executing",
    ]  # fmt: skip
    statuses = [d["status"]["exec_info"]["queue_remaining"] for d in sock.events("status")]
    assert statuses == [0, 1, 1, 0]
    assert sock.events("status")[0]["sid"] == client_id
    assert sock.events("execution_cached")[0]["nodes"] == []
    executing = sock.events("executing")
    assert executing[0] == {"node": "1", "display_node": "1", "prompt_id": prompt_id}
    assert executing[-1] == {"node": None, "prompt_id": prompt_id}
    executed = sock.events("executed")[0]
    assert executed["node"] == "2"
    assert executed["display_node"] == "2"
    assert executed["output"] == {
        "images": [{"filename": f"{prefix}_00001_.png", "subfolder": "", "type": "output"}]
    }
    last_state = sock.events("progress_state")[-1]["nodes"]
    assert {k: (v["state"], v["value"], v["max"]) for k, v in last_state.items()} == {
        "1": ("finished", 1.0, 1.0),
        "2": ("finished", 1.0, 1.0),
    }
    assert isinstance(sock.events("execution_start")[0]["timestamp"], int)


async def test_events_go_only_to_the_prompts_client(
    http: httpx.AsyncClient, server: Server
) -> None:
    mine, me = await open_socket(server, fresh("c"))
    theirs, other = await open_socket(server, fresh("c"))
    async with mine, theirs:
        my_id = me.events("status")[0]["sid"]
        for _ in range(2):  # the second prompt's statuses come after all of the first's events
            prompt_id = await post_prompt(http, trivial(color(), fresh()), my_id)
            await me.finished(prompt_id)
        while len(other.seen) < 7:
            await other.next()
    assert other.types() == ["status"] * 7
    assert [d["status"]["exec_info"]["queue_remaining"] for d in other.events("status")] == [
        0, 1, 1, 0, 1, 1, 0,
    ]  # fmt: skip


async def test_api_ws_path_and_minted_sid(http: httpx.AsyncClient, server: Server) -> None:
    conn, sock = await open_socket(server, path="/api/ws")
    async with conn:
        sid = sock.events("status")[0]["sid"]
        assert len(sid) == 32
        prompt_id = await post_prompt(http, trivial(color(), fresh()), sid)
        await sock.finished(prompt_id)
    assert "execution_success" in sock.types()


async def test_identical_resubmit_is_cached(http: httpx.AsyncClient, server: Server) -> None:
    client_id, prompt = fresh("c"), trivial(color(), fresh())
    conn, sock = await open_socket(server, client_id)
    async with conn:
        first = await post_prompt(http, prompt, client_id)
        await sock.finished(first)
        sock.seen.clear()
        second = await post_prompt(http, prompt, client_id)
        await sock.finished(second)
    assert sock.types() == [
        "status", "status", "execution_start", "execution_cached", "executed", "progress_state",
        "execution_success", "status", "executing",
    ]  # fmt: skip
    assert sock.events("execution_cached")[0]["nodes"] == ["1", "2"]
    name = f"{prompt['2']['inputs']['filename_prefix']}_00001_.png"
    assert sock.events("executed")[0]["output"]["images"][0]["filename"] == name
    history = (await http.get(f"/history/{second}")).json()[second]
    assert history["outputs"]["2"]["images"][0]["filename"] == name


async def test_changed_downstream_reuses_cached_upstream(
    http: httpx.AsyncClient, server: Server
) -> None:
    client_id, prompt = fresh("c"), trivial(color(), fresh())
    conn, sock = await open_socket(server, client_id)
    async with conn:
        await sock.finished(await post_prompt(http, prompt, client_id))
        sock.seen.clear()
        prompt["3"] = {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}}
        prompt["4"] = preview(["3", 0])
        await sock.finished(await post_prompt(http, prompt, client_id))
    assert sock.events("execution_cached")[0]["nodes"] == ["1", "2"]
    assert [d["node"] for d in sock.events("executing")] == ["3", "4", None]
    assert [d["node"] for d in sock.events("executed")] == ["2", "4"]
    shown = sock.events("executed")[1]["output"]["images"][0]
    assert shown["type"] == "temp"
    assert shown["filename"].startswith("ComfyUI_temp_")


async def test_runtime_error_reports_execution_error(
    http: httpx.AsyncClient, server: Server
) -> None:
    name = fresh() + ".png"
    await upload(http, name, b"not an image")  # accepted: ComfyUI fails at run time
    client_id = fresh("c")
    prompt = {
        "1": empty(color()),
        "2": {"class_type": "LoadImage", "inputs": {"image": name}},
        "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
        "4": preview(["3", 0]),
        "5": saved(["1", 0], fresh()),
    }
    conn, sock = await open_socket(server, client_id)
    async with conn:
        prompt_id = await post_prompt(http, prompt, client_id)
        await sock.finished(prompt_id)
    assert sock.types()[-4:] == ["executing", "execution_error", "status", "executing"]
    error = sock.events("execution_error")[0]
    assert set(error) == {
        "prompt_id", "node_id", "node_type", "executed", "exception_message", "exception_type",
        "traceback", "current_inputs", "current_outputs", "timestamp",
    }  # fmt: skip
    assert error["node_id"] == "2"
    assert error["node_type"] == "LoadImage"
    assert error["exception_type"] == "PIL.UnidentifiedImageError"
    assert error["exception_message"].startswith("cannot identify image file")
    assert error["exception_message"].endswith("\n")
    assert error["current_inputs"] == {"image": [name]}
    assert sorted(error["current_outputs"]) == ["1", "2", "3", "4", "5"]
    assert error["traceback"]
    assert all(isinstance(line, str) for line in error["traceback"])
    entry = (await http.get(f"/history/{prompt_id}")).json()[prompt_id]
    assert entry["status"]["status_str"] == "error"
    assert entry["status"]["completed"] is False
    assert [m[0] for m in entry["status"]["messages"]] == [
        "execution_start",
        "execution_cached",
        "execution_error",
    ]


@standin_only
async def test_failing_test_node_reports_its_message(
    http: httpx.AsyncClient, server: Server
) -> None:
    prompt = {
        "1": empty(1),
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "StandinFail", "inputs": {"message": "boom", "image": ["2", 0]}},
    }
    conn, sock = await open_socket(server, "alice")
    async with conn:
        await sock.finished(await post_prompt(http, prompt, "alice"))
    error = sock.events("execution_error")[0]
    assert error["node_id"] == "3"
    assert error["node_type"] == "StandinFail"
    assert error["exception_message"] == "boom\n"
    assert error["exception_type"] == "RuntimeError"
    assert error["executed"] == ["1", "2"]
    assert error["current_inputs"]["message"] == ["boom"]


async def test_interrupt(http: httpx.AsyncClient, server: Server) -> None:
    client_id = fresh("c")
    prompt, seen_at = long_running(server)
    conn, sock = await open_socket(server, client_id)
    async with conn:
        prompt_id = await post_prompt(http, prompt, client_id)
        await sock.until("executing", node="2")
        response = await http.post("/interrupt")
        assert response.status_code == 200
        assert response.content == b""
        await sock.finished(prompt_id)
    assert sock.types()[-3:] == ["execution_interrupted", "status", "executing"]
    interrupted = sock.events("execution_interrupted")[0]
    assert interrupted["node_id"] == seen_at
    assert interrupted["node_type"] == prompt[seen_at]["class_type"]
    assert interrupted["prompt_id"] == prompt_id
    entry = (await http.get(f"/history/{prompt_id}")).json()[prompt_id]
    assert entry["status"]["status_str"] == "error"
    assert entry["status"]["completed"] is False
    assert entry["outputs"] == {}


@standin_only
async def test_interrupt_is_honoured_between_steps(http: httpx.AsyncClient, server: Server) -> None:
    conn, sock = await open_socket(server, "alice")
    async with conn:
        prompt_id = await post_prompt(http, slow(30.0, 300), "alice")
        await sock.until("progress", value=1)
        started = time.monotonic()
        await http.post("/interrupt", json={"prompt_id": prompt_id})
        await sock.finished(prompt_id)
        assert time.monotonic() - started < 5.0
    interrupted = sock.events("execution_interrupted")[0]
    assert interrupted["node_id"] == "2"
    assert interrupted["executed"] == ["1"]


@standin_only
async def test_interrupt_for_another_prompt_is_ignored(
    http: httpx.AsyncClient, server: Server
) -> None:
    conn, sock = await open_socket(server, "alice")
    async with conn:
        prompt_id = await post_prompt(http, slow(0.3, 3), "alice")
        await sock.until("progress", value=1)
        response = await http.post("/interrupt", json={"prompt_id": str(uuid.uuid4())})
        assert response.status_code == 200
        await sock.finished(prompt_id)
    assert "execution_success" in sock.types()
    assert "execution_interrupted" not in sock.types()


async def test_interrupt_with_nothing_running_does_not_stop_the_next_prompt(
    http: httpx.AsyncClient, server: Server
) -> None:
    assert (await http.post("/interrupt")).status_code == 200
    await run_to_end(http, server, trivial(color(), fresh()))


@standin_only
async def test_reconnecting_client_is_told_the_running_node(
    http: httpx.AsyncClient, server: Server
) -> None:
    first, sock = await open_socket(server, "alice")
    async with first:
        prompt_id = await post_prompt(http, slow(30.0, 300), "alice")
        await sock.until("progress", value=1)
    again, sock2 = await open_socket(server, "alice")
    async with again:
        assert await sock2.until("executing") == {"node": "2"}
        await http.post("/interrupt")
        await sock2.finished(prompt_id)


# --- previews and progress --------------------------------------------------------------


def websocket_image(batch: int) -> dict[str, Any]:
    return {
        "1": empty(color(), batch=batch),
        "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}},
    }


async def test_websocket_image_without_feature_flags_is_type_1_after_progress(
    http: httpx.AsyncClient, server: Server
) -> None:
    prompt = websocket_image(batch=2)
    prompt["1"]["inputs"]["color"] = 5
    sock = await run_to_end(http, server, prompt)
    types = sock.types()
    start = types.index("executing", types.index("execution_cached"))
    assert types[start:][:7] == [
        "executing", "progress_state", "progress_state", "executing", "progress_state",
        "progress", "bin1",
    ]  # fmt: skip
    assert "executed" not in types
    frames = sock.binary()
    assert len(frames) == 2
    assert struct.unpack(">II", frames[0][:8]) == (1, 2)  # PREVIEW_IMAGE, PNG
    with Image.open(io.BytesIO(frames[0][8:])) as img:
        assert img.size == (16, 16)
        assert img.getpixel((0, 0)) == (0, 0, 5)
    assert [(p["value"], p["max"]) for p in sock.events("progress")] == [(0, 2), (1, 2)]


async def test_websocket_image_with_metadata_is_type_4_before_progress(
    http: httpx.AsyncClient, server: Server
) -> None:
    client_id = fresh("c")
    conn, sock = await open_socket(server, client_id, flags=True)
    async with conn:
        prompt_id = await post_prompt(http, websocket_image(batch=1), client_id)
        await sock.finished(prompt_id)
    types = sock.types()
    first = types.index("bin4")
    assert types[first - 1 : first + 2] == ["progress_state", "bin4", "progress"]
    frame = sock.binary()[0]
    (length,) = struct.unpack(">I", frame[4:8])
    assert json.loads(frame[8 : 8 + length]) == {
        "node_id": "2",
        "prompt_id": prompt_id,
        "display_node_id": "2",
        "parent_node_id": None,
        "real_node_id": "2",
        "image_type": "image/png",
    }
    assert frame[8 + length : 8 + length + 4] == b"\x89PNG"


@standin_only
async def test_slow_node_previews_are_jpeg_per_step(
    http: httpx.AsyncClient, server: Server
) -> None:
    conn, sock = await open_socket(server, "alice", flags=True)
    async with conn:
        await sock.finished(await post_prompt(http, slow(0.05, 2), "alice"))
    frames = sock.binary()
    assert len(frames) == 2
    (length,) = struct.unpack(">I", frames[0][4:8])
    assert json.loads(frames[0][8 : 8 + length])["image_type"] == "image/jpeg"
    assert frames[0][8 + length : 8 + length + 2] == b"\xff\xd8"
    assert [(p["value"], p["max"], p["node"]) for p in sock.events("progress")] == [
        (1, 2, "2"),
        (2, 2, "2"),
    ]


async def test_prompt_without_client_broadcasts_only_progress(
    http: httpx.AsyncClient, server: Server
) -> None:
    conn, sock = await open_socket(server, fresh("c"))
    async with conn:
        await post_prompt(http, websocket_image(batch=1))
        await sock.until("status", status={"exec_info": {"queue_remaining": 0}})
    assert set(sock.types()) == {"status", "progress_state", "progress", "bin1"}


# --- queue ------------------------------------------------------------------------------


@standin_only
async def test_one_prompt_at_a_time_lowest_number_first(
    http: httpx.AsyncClient, server: Server
) -> None:
    conn, sock = await open_socket(server, "alice")
    async with conn:
        blocker = await post_prompt(http, slow(30.0, 300, color=1), "alice")
        await sock.until("execution_start", prompt_id=blocker)
        later = await post_prompt(http, slow(0.01, 1, color=2), "alice")
        deleted = await post_prompt(http, slow(0.01, 1, color=3), "alice")
        urgent = await post_prompt(http, slow(0.01, 1, color=4), "alice", front=True)
        queue = (await http.get("/queue")).json()
        assert [item[1] for item in queue["queue_running"]] == [blocker]
        assert [item[1] for item in queue["queue_pending"]] == [urgent, later, deleted]
        assert queue["queue_pending"][0][3] == {"client_id": "alice"}
        assert queue["queue_pending"][0][4] == ["3"]
        assert (await http.post("/queue", json={"delete": [deleted]})).status_code == 200
        await http.post("/interrupt", json={"prompt_id": blocker})
        await sock.finished(later)
    order = [d["prompt_id"] for d in sock.events("execution_start")]
    assert order == [blocker, urgent, later]
    ends = [d["prompt_id"] for d in sock.events("executing") if d["node"] is None]
    assert ends == order
    assert (await http.get(f"/history/{deleted}")).json() == {}


async def test_client_chosen_prompt_id_and_number(http: httpx.AsyncClient) -> None:
    prompt_id = str(uuid.uuid4())
    response = await http.post(
        "/prompt",
        json={
            "prompt": trivial(color(), fresh()),
            "prompt_id": prompt_id,
            "number": 5,
            "extra_data": {"extra_pnginfo": {"workflow": {"nodes": []}}, "api_key_comfy_org": "k"},
        },
    )
    assert response.json() == {"prompt_id": prompt_id, "number": 5.0, "node_errors": {}}
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    while (entry := (await http.get(f"/history/{prompt_id}")).json()) == {}:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    item = entry[prompt_id]["prompt"]
    assert item[:2] == [5.0, prompt_id]
    assert item[4] == ["2"]
    assert item[3] == {"extra_pnginfo": {"workflow": {"nodes": []}}}


async def test_history_entry(http: httpx.AsyncClient, server: Server) -> None:
    client_id = fresh("c")
    conn, sock = await open_socket(server, client_id)
    async with conn:
        prompt_id = await post_prompt(http, trivial(color(), fresh()), client_id)
        await sock.finished(prompt_id)
    entry = (await http.get(f"/history/{prompt_id}")).json()[prompt_id]
    assert set(entry) == {"prompt", "outputs", "status", "meta"}
    assert entry["status"]["status_str"] == "success"
    assert entry["status"]["completed"] is True
    assert entry["status"]["messages"][0] == ["execution_start", sock.events("execution_start")[0]]
    assert entry["outputs"]["2"] == sock.events("executed")[0]["output"]
    assert entry["meta"] == {
        "2": {"node_id": "2", "display_node": "2", "parent_node": None, "real_node_id": "2"}
    }
    assert prompt_id in (await http.get("/history", params={"max_items": 1})).json()
    assert (await http.get(f"/history/{uuid.uuid4()}")).json() == {}


@standin_only
async def test_history_listing_and_deletion(http: httpx.AsyncClient, server: Server) -> None:
    conn, sock = await open_socket(server, "alice")
    async with conn:
        ids = [await post_prompt(http, trivial(20 + i), "alice") for i in range(3)]
        await sock.finished(ids[-1])
    assert list((await http.get("/history", params={"max_items": 2})).json()) == ids[1:]
    listed = (await http.get("/history", params={"max_items": 1, "offset": 0})).json()
    assert list(listed) == ids[:1]
    await http.post("/history", json={"delete": [ids[1]]})
    assert list((await http.get("/history")).json()) == [ids[0], ids[2]]
    await http.post("/history", json={"clear": True})
    assert (await http.get("/history")).json() == {}


# --- validation -------------------------------------------------------------------------


INVALID: dict[str, tuple[dict[str, Any], str, str | None, str | None]] = {
    # prompt, top-level type, failing node, its first error type
    "unknown class": ({"1": {"class_type": "Nope", "inputs": {}}}, "invalid_prompt", None, None),
    "no class_type": ({"1": {"inputs": {}}}, "invalid_prompt", None, None),
    "no outputs": ({"1": empty()}, "prompt_no_outputs", None, None),
    "missing input": (
        {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "batch_size": 1, "color": 0}},
         "2": saved(["1", 0])},
        "prompt_outputs_failed_validation", "1", "required_input_missing",
    ),
    "mask into image": (
        {"1": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 8, "height": 8}},
         "2": saved(["1", 0])},
        "prompt_outputs_failed_validation", "2", "return_type_mismatch",
    ),
    "below min": ({"1": empty(size=0), "2": saved(["1", 0])},
                  "prompt_outputs_failed_validation", "1", "value_smaller_than_min"),
    "above max": ({"1": empty(size=99999), "2": saved(["1", 0])},
                  "prompt_outputs_failed_validation", "1", "value_bigger_than_max"),
    "not in list": (
        {"1": empty(), "2": scale(["1", 0], 8, 8, method="magic"), "3": preview(["2", 0])},
        "prompt_outputs_failed_validation", "2", "value_not_in_list",
    ),
    "text for int": (
        {"1": {"class_type": "EmptyImage", "inputs": {"width": "abc", "height": 8, "batch_size": 1,
                                                       "color": 0}},
         "2": saved(["1", 0])},
        "prompt_outputs_failed_validation", "1", "invalid_input_type",
    ),
    "missing file": (
        {"1": {"class_type": "LoadImage", "inputs": {"image": "nope-missing.png"}},
         "2": preview(["1", 0])},
        "prompt_outputs_failed_validation", "1", "custom_validation_failed",
    ),
    "link to absent node": ({"2": saved(["99", 0])}, "prompt_outputs_failed_validation", "2",
                            "exception_during_validation"),
    "bad link": ({"1": empty(), "2": saved(["1", 0, 3])}, "prompt_outputs_failed_validation", "2",
                 "bad_linked_input"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(INVALID))
async def test_invalid_prompts_get_comfyui_errors(http: httpx.AsyncClient, case: str) -> None:
    prompt, kind, node, node_error = INVALID[case]
    response = await http.post("/prompt", json={"prompt": prompt})
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error", "node_errors"}
    assert set(body["error"]) == {"type", "message", "details", "extra_info"}
    assert body["error"]["type"] == kind
    if node is None:
        assert body["node_errors"] == {}
        return
    assert list(body["node_errors"]) == [node]
    entry = body["node_errors"][node]
    assert entry["class_type"] == prompt[node]["class_type"]
    assert entry["errors"][0]["type"] == node_error
    assert set(entry["errors"][0]) == {"type", "message", "details", "extra_info"}
    assert entry["dependent_outputs"] == [max(prompt)]


async def test_validation_error_texts_match_comfyui(http: httpx.AsyncClient) -> None:
    unknown = await http.post(
        "/prompt", json={"prompt": {"1": {"class_type": "Nope", "inputs": {}}}}
    )
    assert unknown.json()["error"] == {
        "type": "invalid_prompt",
        "message": "Cannot execute because node Nope does not exist.",
        "details": "Node ID '#1'",
        "extra_info": {},
    }
    low = await http.post("/prompt", json={"prompt": {"1": empty(size=0), "2": saved(["1", 0])}})
    # both width and height are too small; ComfyUI lists them in no fixed order
    errors = {e["details"]: e for e in low.json()["node_errors"]["1"]["errors"]}
    assert errors["width"] == {
        "type": "value_smaller_than_min",
        "message": "Value 0 smaller than min of 1",
        "details": "width",
        "extra_info": {
            "input_name": "width",
            "input_config": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
            "received_value": 0,
        },
    }
    assert set(errors) == {"width", "height"}
    mismatch = {
        "1": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 8, "height": 8}},
        "2": saved(["1", 0]),
    }
    body = (await http.post("/prompt", json={"prompt": mismatch})).json()
    assert body["error"]["details"] == (
        "Return type mismatch between linked nodes: images, "
        "received_type(MASK) mismatch input_type(IMAGE)"
    )
    missing = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "nope-missing.png"}},
        "2": preview(["1", 0]),
    }
    body = (await http.post("/prompt", json={"prompt": missing})).json()
    assert body["node_errors"]["1"]["errors"][0]["details"] == (
        "image - Invalid image file: nope-missing.png"
    )
    absent = (await http.post("/prompt", json={"prompt": {"2": saved(["99", 0])}})).json()
    assert absent["error"]["details"] == "Exception when validating node: '99'"
    assert absent["node_errors"]["2"]["errors"][0]["extra_info"]["exception_type"] == "KeyError"


async def test_one_bad_output_among_good_ones_still_queues(http: httpx.AsyncClient) -> None:
    prompt = {
        "1": empty(color()),
        "2": saved(["1", 0], fresh()),
        "3": {"class_type": "SaveImage", "inputs": {}},
    }
    response = await http.post("/prompt", json={"prompt": prompt})
    assert response.status_code == 200
    assert list(response.json()["node_errors"]) == ["3"]


@standin_only
@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b""])
async def test_non_json_prompt_body_is_400(http: httpx.AsyncClient, body: bytes) -> None:
    # ComfyUI itself answers 500 here
    response = await http.post(
        "/prompt", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_prompt"


async def test_missing_prompt_is_no_prompt(http: httpx.AsyncClient) -> None:
    response = await http.post("/prompt", json={"client_id": "x"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "no_prompt"


# --- files ------------------------------------------------------------------------------


async def test_upload_renames_reuses_and_overwrites(http: httpx.AsyncClient) -> None:
    stem = fresh()
    first = await upload(http, f"{stem}.png", b"one")
    assert first.json() == {"name": f"{stem}.png", "subfolder": "", "type": "input"}
    assert (await upload(http, f"{stem}.png", b"one")).json()["name"] == f"{stem}.png"
    assert (await upload(http, f"{stem}.png", b"two")).json()["name"] == f"{stem} (1).png"
    assert (await upload(http, f"{stem}.png", b"three")).json()["name"] == f"{stem} (2).png"
    again = await upload(http, f"{stem}.png", b"new", overwrite="true")
    assert again.json()["name"] == f"{stem}.png"
    view = await http.get("/view", params={"filename": f"{stem}.png", "type": "input"})
    assert view.content == b"new"
    view = await http.get("/view", params={"filename": f"{stem} (1).png", "type": "input"})
    assert view.content == b"two"


async def test_upload_into_subfolders_and_folder_types(http: httpx.AsyncClient) -> None:
    folder = f"{fresh()}/a"
    reply = await upload(http, "s.png", b"x", subfolder=folder)
    assert reply.json() == {"name": "s.png", "subfolder": folder, "type": "input"}
    view = await http.get(
        "/view", params={"filename": "s.png", "subfolder": folder, "type": "input"}
    )
    assert view.content == b"x"
    name = fresh() + ".png"
    assert (await upload(http, name, b"t", type="temp")).json()["type"] == "temp"
    assert (await http.get("/view", params={"filename": name, "type": "temp"})).content == b"t"


@pytest.mark.parametrize(
    ("name", "fields"),
    [("e.png", {"subfolder": "../.."}), ("../e.png", {}), ("e.png", {"subfolder": "/etc"})],
)
async def test_upload_rejects_path_escapes(
    http: httpx.AsyncClient, name: str, fields: dict[str, str]
) -> None:
    assert (await upload(http, name, b"x", **fields)).status_code == 400


@standin_only
@pytest.mark.parametrize(("name", "fields"), [("", {}), ("e.png", {"type": "bogus"})])
async def test_upload_rejects_bad_fields(
    http: httpx.AsyncClient, name: str, fields: dict[str, str]
) -> None:
    # ComfyUI itself answers 500 here
    assert (await upload(http, name, b"x", **fields)).status_code == 400


async def test_upload_without_an_image_part_is_400(http: httpx.AsyncClient) -> None:
    response = await http.post("/upload/image", files={"other": ("a.png", b"x", "image/png")})
    assert response.status_code == 400


@standin_only
async def test_upload_over_the_limit_is_413(http: httpx.AsyncClient, server: Server) -> None:
    big = b"\0" * (1024 * 1024 + 1)
    assert (await upload(http, "big.png", big)).status_code == 413

    async def chunked() -> AsyncIterator[bytes]:
        boundary = b"--b\r\n"
        yield boundary + b'Content-Disposition: form-data; name="image"; filename="c.png"\r\n\r\n'
        for _ in range(3):
            yield b"\0" * 512 * 1024
        yield b"\r\n--b--\r\n"

    response = await http.post(
        "/upload/image",
        content=chunked(),
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 413
    assert not (Path(server.dirs.input) / "c.png").exists()


async def test_upload_mask_keeps_the_original_with_the_masks_alpha(
    http: httpx.AsyncClient,
) -> None:
    folder = fresh()
    await upload(http, "photo.png", png_bytes((10, 20, 30)), subfolder=folder)
    ref = json.dumps({"filename": "photo.png", "subfolder": folder, "type": "input"})
    mask = png_bytes((0, 0, 0, 77), "RGBA")
    reply = await upload(http, "mask.png", mask, "/upload/mask", original_ref=ref, subfolder=folder)
    assert reply.json() == {"name": "mask.png", "subfolder": folder, "type": "input"}
    view = await http.get(
        "/view", params={"filename": "mask.png", "subfolder": folder, "type": "input"}
    )
    with Image.open(io.BytesIO(view.content)) as img:
        assert img.mode == "RGBA"
        assert img.getpixel((0, 0)) == (10, 20, 30, 77)


VIEW_RULES = [
    ("filename={v}&type=input", 200), ("filename={v} [input]", 200), ("filename={v}", 404),
    ("filename=s.png&subfolder={sub}&type=input", 200), ("filename=../{v}&type=input", 400),
    ("filename=/etc/passwd&type=input", 400), ("filename=a..b.png&type=input", 400),
    ("filename=&type=input", 400), ("filename={v}&type=bogus", 400),
    ("filename=s.png&subfolder=../..&type=input", 403),
    ("filename=x.png&subfolder=/etc&type=input", 403), ("filename=nope-{v}&type=input", 404),
    ("type=input", 404),
]  # fmt: skip


@pytest.mark.parametrize(("query", "status"), VIEW_RULES)
async def test_view_path_rules(http: httpx.AsyncClient, query: str, status: int) -> None:
    name, folder = fresh() + ".png", fresh()
    await upload(http, name, png_bytes())
    await upload(http, "s.png", b"sub", subfolder=folder)
    response = await http.get("/view?" + query.format(v=name, sub=folder))
    assert response.status_code == status
    if status == 200:
        shown = "s.png" if "s.png" in query else name
        assert response.headers["content-disposition"] == f'filename="{shown}"'
        assert response.headers["content-type"] == "image/png"


async def test_view_forces_download_of_html_and_converts_previews(
    http: httpx.AsyncClient,
) -> None:
    page = fresh() + ".html"
    await upload(http, page, b"<script>")
    shown = await http.get("/view", params={"filename": page, "type": "input"})
    assert shown.headers["content-type"] == "application/octet-stream"
    name = fresh() + ".png"
    await upload(http, name, png_bytes())
    converted = await http.get(
        "/view", params={"filename": name, "type": "input", "preview": "jpeg;50"}
    )
    assert converted.headers["content-type"] == "image/jpeg"
    assert converted.content[:2] == b"\xff\xd8"


# --- nodes and outputs ----------------------------------------------------------------


async def test_save_image_writes_pngs_with_prefix_subfolders_and_counters(
    http: httpx.AsyncClient, server: Server
) -> None:
    folder = fresh()
    prompt = trivial(0x102030, prefix=f"{folder}/run")
    prompt["1"]["inputs"]["batch_size"] = 2
    sock = await run_to_end(http, server, prompt)
    images = sock.events("executed")[0]["output"]["images"]
    assert images == [
        {"filename": "run_00001_.png", "subfolder": folder, "type": "output"},
        {"filename": "run_00002_.png", "subfolder": folder, "type": "output"},
    ]
    view = await http.get("/view", params={"filename": "run_00002_.png", "subfolder": folder})
    with Image.open(io.BytesIO(view.content)) as img:
        assert isinstance(img, PngImagePlugin.PngImageFile)
        assert img.getpixel((0, 0)) == (0x10, 0x20, 0x30)
        assert json.loads(img.text["prompt"])["2"]["inputs"]["filename_prefix"] == f"{folder}/run"
    again = await run_to_end(http, server, trivial(color(), prefix=f"{folder}/run"))
    assert again.events("executed")[0]["output"]["images"][0]["filename"] == "run_00003_.png"


async def test_load_transform_and_preview_an_uploaded_image(
    http: httpx.AsyncClient, server: Server
) -> None:
    folder = fresh()
    await upload(http, "in.png", png_bytes((10, 200, 30)), subfolder=folder)
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": f"{folder}/in.png"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": scale(["2", 0], 16, 0),
        "4": {
            "class_type": "ImageBlur",
            "inputs": {"image": ["3", 0], "blur_radius": 1, "sigma": 0.5},
        },
        "5": preview(["4", 0]),
    }
    sock = await run_to_end(http, server, prompt)
    shown = sock.events("executed")[0]["output"]["images"][0]
    assert shown["type"] == "temp"
    assert shown["subfolder"] == ""
    view = await http.get("/view", params={"filename": shown["filename"], "type": "temp"})
    with Image.open(io.BytesIO(view.content)) as img:
        assert img.size == (16, 12)
        pixel = img.getpixel((8, 6))
        assert isinstance(pixel, tuple)
        assert all(abs(a - b) <= 1 for a, b in zip(pixel, (245, 55, 225), strict=True))


async def test_masks_load_and_solid_masks_run(http: httpx.AsyncClient, server: Server) -> None:
    name = fresh() + ".png"
    await upload(http, name, png_bytes((0, 0, 0, 0), "RGBA"))
    prompt = {
        "1": {"class_type": "LoadImageMask", "inputs": {"image": name, "channel": "alpha"}},
        "2": {"class_type": "SolidMask", "inputs": {"value": 0.5, "width": 8, "height": 8}},
        "3": {"class_type": "LoadImage", "inputs": {"image": name}},
        "4": preview(["3", 0]),
    }
    sock = await run_to_end(http, server, prompt)
    assert [d["node"] for d in sock.events("executing")] == ["3", "4", None]


async def test_animated_webp_from_a_multi_frame_upload(
    http: httpx.AsyncClient, server: Server
) -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    name, prefix = fresh() + ".gif", fresh()
    await upload(http, name, gif.getvalue())
    webp = {"filename_prefix": prefix, "fps": 10.0, "lossless": True, "quality": 80}
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "2": {
            "class_type": "SaveAnimatedWEBP",
            "inputs": {"images": ["1", 0], **webp, "method": "default"},
        },
    }
    sock = await run_to_end(http, server, prompt)
    output = sock.events("executed")[0]["output"]
    assert output == {
        "images": [{"filename": f"{prefix}_00001_.webp", "subfolder": "", "type": "output"}],
        "animated": [True],
    }
    view = await http.get("/view", params={"filename": f"{prefix}_00001_.webp"})
    assert view.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(view.content)) as img:
        assert isinstance(img, WebPImagePlugin.WebPImageFile)
        assert img.n_frames == 3


def large(size_mb: int, prefix: str) -> dict[str, Any]:
    inputs = {"size_mb": size_mb, "filename_prefix": prefix}
    return {"1": {"class_type": "StandinLargeOutput", "inputs": inputs}}


@standin_only
async def test_large_output_is_reported_like_a_video_and_streamed(
    http: httpx.AsyncClient, server: Server
) -> None:
    sock = await run_to_end(http, server, large(3, "video/big"))
    output = sock.events("executed")[0]["output"]
    assert output == {
        "images": [{"filename": "big_00001_.mp4", "subfolder": "video", "type": "output"}],
        "animated": [True],
    }
    path = Path(server.dirs.output) / "video" / "big_00001_.mp4"
    assert path.stat().st_size == 3 * 1024 * 1024
    params = {"filename": "big_00001_.mp4", "subfolder": "video"}
    async with http.stream("GET", "/view", params=params) as response:
        assert response.headers["content-type"] == "video/mp4"
        body = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert len(body) == 3 * 1024 * 1024
    for block in range(3):
        start = block * 1024 * 1024
        assert struct.unpack(">Q", body[start : start + 8]) == (block,)
        assert body[start + 8 : start + 16] == bytes(range(8, 16))


@standin_only
async def test_hundreds_of_megabytes_stream_without_filling_memory(
    http: httpx.AsyncClient, server: Server
) -> None:
    await run_to_end(http, server, large(300, "huge"))
    process = psutil.Process(os.getpid())
    before = peak = process.memory_info().rss
    received = 0
    async with http.stream("GET", "/view", params={"filename": "huge_00001_.mp4"}) as response:
        async for chunk in response.aiter_bytes():
            if received // (32 << 20) != (received + len(chunk)) // (32 << 20):
                peak = max(peak, process.memory_info().rss)
            received += len(chunk)
    assert received == 300 * 1024 * 1024
    assert peak - before < 100 * 1024 * 1024
