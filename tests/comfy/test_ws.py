"""/u/<name>/ws: ComfyUI's handshake and messages, per participant and per socket."""

from __future__ import annotations

import json
import struct
from typing import Any

import httpx

from tests.comfy.conftest import ScriptedWorker, UserSocket, blur_prompt, png_bytes, user_socket
from tests.conftest import Gateway, Person


def of_type(kind: str, job_id: str | None = None) -> Any:
    def match(message: dict[str, Any]) -> bool:
        data = message.get("data") or {}
        return message["type"] == kind and (job_id is None or data.get("prompt_id") == job_id)

    return match


def finished(job_id: str) -> Any:
    def match(message: dict[str, Any]) -> bool:
        data = message.get("data") or {}
        return (
            message["type"] == "executing"
            and data.get("prompt_id") == job_id
            and data.get("node") is None
        )

    return match


def texts(frames: list[str | bytes]) -> list[dict[str, Any]]:
    return [json.loads(f) for f in frames if isinstance(f, str)]


async def submit(
    http: httpx.AsyncClient, user: str, client_id: str | None = None, sigma: float = 1.0
) -> str:
    body: dict[str, Any] = {"prompt": blur_prompt(sigma=sigma)}
    if client_id:
        body["client_id"] = client_id
    response = await http.post(f"/u/{user}/api/prompt", json=body)
    assert response.status_code == 200, response.text
    job_id: str = response.json()["prompt_id"]
    return job_id


async def quiet_until_own_status(sock: UserSocket, http: httpx.AsyncClient, user: str) -> None:
    """Proves a socket got nothing else: queue a job of its own user and the
    next frame must be that job's status (events reach a socket in order)."""
    await submit(http, user, sigma=9.0)
    frame = await sock.next()
    assert isinstance(frame, str)
    assert json.loads(frame) == {
        "type": "status",
        "data": {"status": {"exec_info": {"queue_remaining": 1}}},
    }


async def test_handshake_as_comfyui(gateway: Gateway, people: dict[str, Person]) -> None:
    async with user_socket(
        gateway, people["alice"], flags={"supports_preview_metadata": True}
    ) as sock:
        assert len(sock.sid) == 32
    async with user_socket(gateway, people["alice"], client_id="my-old-sid") as sock:
        assert sock.sid == "my-old-sid"


async def test_run_events_reach_only_the_submitting_socket(
    gateway: Gateway,
    people: dict[str, Person],
    worker: ScriptedWorker,
    clients: dict[str, httpx.AsyncClient],
) -> None:
    async with (
        user_socket(gateway, people["alice"], flags={"supports_preview_metadata": True}) as mine,
        user_socket(gateway, people["alice"]) as other_tab,
        user_socket(gateway, people["bob"]) as bob,
    ):
        job_id = await submit(clients["alice"], "alice", mine.sid)
        job = await worker.claim()
        saved = await worker.run(job)
        _, frames = await mine.until(finished(job_id))
        messages = texts(frames)
        run = [m["type"] for m in messages if m["type"] != "status"]
        assert run == [
            "execution_start",
            "execution_cached",
            "executing",
            "progress",
            "executed",
            "execution_success",
            "executing",  # node null: the end
        ]
        assert [m["type"] for m in messages[-2:]] == ["status", "executing"]
        assert [m["type"] for m in messages].count("status") == 3  # queued, started, finished
        assert messages[0]["data"]["status"]["exec_info"]["queue_remaining"] == 1
        assert messages[-2]["data"]["status"]["exec_info"]["queue_remaining"] == 0
        executed = next(m for m in messages if m["type"] == "executed")
        assert executed["data"]["output"] == saved
        assert executed["data"]["prompt_id"] == job_id
        # the other tab of alice sees the queue change, not the run
        _, tab = await other_tab.until(
            lambda m: (
                m["type"] == "status" and m["data"]["status"]["exec_info"]["queue_remaining"] == 0
            )
        )
        assert {m["type"] for m in texts(tab)} == {"status"}
        await quiet_until_own_status(bob, clients["bob"], "bob")


async def test_previews_in_the_format_each_socket_announced(
    gateway: Gateway,
    people: dict[str, Person],
    worker: ScriptedWorker,
    clients: dict[str, httpx.AsyncClient],
) -> None:
    async with (
        user_socket(gateway, people["alice"], flags={"supports_preview_metadata": True}) as modern,
        user_socket(gateway, people["alice"]) as legacy,
    ):
        job_id = await submit(clients["alice"], "alice")  # no client_id: every socket, as ComfyUI
        job = await worker.claim()
        await worker.events(job, ("executing", {"node": "2", "display_node": "2"}))
        image = png_bytes()
        await worker.preview(job, image)
        await worker.events(job, ("progress", {"value": 1, "max": 2, "node": "2"}))
        _, frames = await modern.until(of_type("progress", job_id))
        binary = [f for f in frames if isinstance(f, bytes)]
        assert len(binary) == 1
        kind, size = struct.unpack(">II", binary[0][:8])
        assert kind == 4
        meta = json.loads(binary[0][8 : 8 + size])
        assert meta["prompt_id"] == job_id
        assert meta["node_id"] == "2"
        assert meta["image_type"] == "image/png"
        assert binary[0][8 + size :] == image
        _, frames = await legacy.until(of_type("progress", job_id))
        binary = [f for f in frames if isinstance(f, bytes)]
        assert [struct.unpack(">II", b[:8]) for b in binary] == [(1, 2)]
        assert binary[0][8:] == image


async def test_platform_failure_and_cancel_end_the_run_as_comfyui_would(
    gateway: Gateway,
    people: dict[str, Person],
    worker: ScriptedWorker,
    clients: dict[str, httpx.AsyncClient],
) -> None:
    alice = clients["alice"]
    async with user_socket(gateway, people["alice"]) as sock:
        lost = await submit(alice, "alice", sock.sid)
        job = await worker.claim()
        await worker.events(job, ("execution_start", {}), ("executing", {"node": "2"}))
        await worker.fail(
            job, {"type": "comfyui_unreachable", "message": "ComfyUI stopped answering"}
        )
        _, frames = await sock.until(finished(lost))
        tail = texts(frames)[-3:]
        assert [m["type"] for m in tail] == ["execution_error", "status", "executing"]
        error = tail[0]["data"]
        assert error["prompt_id"] == lost
        assert error["exception_message"] == "ComfyUI stopped answering"
        assert error["exception_type"] == "comfyui_unreachable"

        reported = await submit(alice, "alice", sock.sid, sigma=2.0)
        job = await worker.claim()
        comfy_error = {
            "node_id": "2",
            "node_type": "ImageBlur",
            "exception_message": "boom",
            "exception_type": "E",
            "traceback": [],
        }
        await worker.events(job, ("execution_error", comfy_error))
        await worker.fail(job, comfy_error)
        _, frames = await sock.until(finished(reported))
        assert [m["type"] for m in texts(frames)].count(
            "execution_error"
        ) == 1  # ComfyUI's own, once

        cancelled = await submit(alice, "alice", sock.sid, sigma=3.0)
        job = await worker.claim()
        await worker.events(
            job, ("execution_start", {}), ("executing", {"node": "2", "display_node": "2"})
        )
        await sock.until(of_type("executing", cancelled))
        assert (await alice.post(f"/u/alice/api/jobs/{cancelled}/cancel")).json() == {
            "cancelled": True
        }
        _, frames = await sock.until(finished(cancelled))
        tail = texts(frames)[-3:]
        assert [m["type"] for m in tail] == ["execution_interrupted", "status", "executing"]
        assert tail[0]["data"]["node_id"] == "2"

        waiting = await submit(alice, "alice", sock.sid, sigma=4.0)
        await sock.until(of_type("status"))
        assert (
            await alice.post("/u/alice/api/queue", json={"delete": [waiting]})
        ).status_code == 200
        message, frames = await sock.until(of_type("status"))
        assert len(frames) == 1  # a job removed before it ran: only the queue changes
        assert message["data"]["status"]["exec_info"]["queue_remaining"] == 0


async def test_reconnecting_page_gets_executing_again(
    gateway: Gateway,
    people: dict[str, Person],
    worker: ScriptedWorker,
    clients: dict[str, httpx.AsyncClient],
) -> None:
    async with user_socket(gateway, people["alice"]) as first:
        sid = first.sid
        job_id = await submit(clients["alice"], "alice", sid)
        job = await worker.claim()
        await worker.events(
            job, ("execution_start", {}), ("executing", {"node": "2", "display_node": "2"})
        )
        await first.until(of_type("executing", job_id))
    async with user_socket(gateway, people["alice"], client_id=sid) as again:
        message = json.loads(await again.next())
        assert message == {
            "type": "executing",
            "data": {"node": "2", "display_node": "2", "prompt_id": job_id},
        }
        await worker.run(job)
        await again.until(finished(job_id))


async def test_place_in_queue_and_broadcasts_go_to_pages_that_asked(
    gateway: Gateway,
    people: dict[str, Person],
    worker: ScriptedWorker,
    clients: dict[str, httpx.AsyncClient],
) -> None:
    async with (
        user_socket(gateway, people["alice"], hello=True) as page,
        user_socket(gateway, people["alice"]) as plain,
    ):
        first, _ = await page.until(of_type("comfy_multi.queue"))
        assert first["data"]["pending"] == 0
        assert first["data"]["workers_known"] is True
        await submit(clients["bob"], "bob")
        await submit(clients["alice"], "alice")
        await submit(clients["alice"], "alice", sigma=2.0)

        def placed(message: dict[str, Any]) -> bool:
            return message["type"] == "comfy_multi.queue" and message["data"]["pending"] == 2

        place, _ = await page.until(placed)
        data = place["data"]
        assert data["position"] == 2  # bob's job runs first
        assert [j["position"] for j in data["jobs"]] == [2, 3]
        # a wait estimate only while a GPU is online (this fake one sends no heartbeats)
        if data["workers_online"]:
            assert data["eta_seconds"] > 0
        else:
            assert data["eta_seconds"] is None
        assert data["queue_length"] == 3
        sent = await clients["teacher"].post(
            "/api/v1/broadcast", json={"message": "Break until 11:00"}
        )
        assert sent.status_code == 204
        note, _ = await page.until(of_type("comfy_multi.broadcast"))
        assert note["data"] == {"message": "Break until 11:00"}
        # the page without the extension never sees the platform's own types
        _, frames = await plain.until(
            lambda m: (
                m["type"] == "status" and m["data"]["status"]["exec_info"]["queue_remaining"] == 2
            )
        )
        assert all(not m["type"].startswith("comfy_multi.") for m in texts(frames))
        await quiet_until_own_status_after(plain, clients["alice"])
    async with user_socket(gateway, people["alice"], hello=True) as late:
        await late.until(of_type("comfy_multi.queue"))
        standing, _ = await late.until(of_type("comfy_multi.broadcast"))
        assert standing["data"]["message"] == "Break until 11:00"


async def quiet_until_own_status_after(sock: UserSocket, http: httpx.AsyncClient) -> None:
    await submit(http, "alice", sigma=7.0)
    frame = await sock.next()
    assert isinstance(frame, str)
    assert json.loads(frame)["type"] == "status"
