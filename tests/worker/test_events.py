"""What the participant's ComfyUI page sees: ComfyUI's events, in ComfyUI's order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.worker import prompts
from tests.worker.conftest import Room, StandIn, Workers, user_socket


def _at(events: list[dict[str, Any]], kind: str, node: str | None = "any") -> int:
    for index, event in enumerate(events):
        if event["type"] == kind and (node == "any" or event["data"].get("node") == node):
            return index
    raise AssertionError(f"no {kind} (node {node}) in {[e['type'] for e in events]}")


async def test_events_reach_the_user_in_comfyuis_order(
    room: Room, standin: StandIn, workers: Workers, dump_logs: Callable[[], str]
) -> None:
    workers.start(standin.url)
    await room.wait_workers(1)
    async with user_socket(room, "alice") as sock:
        job_id = await room.submit(prompts.slow(1.0, steps=4), client_id=sock.sid)
        events, previews = await sock.run_of(job_id)

    order = [
        _at(events, "execution_start"),
        _at(events, "execution_cached"),
        _at(events, "executing", "1"),
        _at(events, "executing", "2"),
        _at(events, "progress"),
        _at(events, "executing", "3"),
        _at(events, "executed", "3"),
        _at(events, "execution_success"),
        _at(events, "executing", None),
    ]
    assert order == sorted(order), [e["type"] for e in events]
    assert order[-1] == len(events) - 1
    steps = [e["data"]["value"] for e in events if e["type"] == "progress"]
    assert steps == sorted(steps)
    assert steps[-1] == 4
    assert all(e["data"]["prompt_id"] == job_id for e in events)
    assert previews >= 1

    executed = events[_at(events, "executed", "3")]["data"]["output"]["images"][0]
    stored = room.user_dir("alice", executed["type"]) / executed["subfolder"] / executed["filename"]
    assert stored.is_file()
