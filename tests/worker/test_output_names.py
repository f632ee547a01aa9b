"""Output names are counted per person on a shared ComfyUI: nobody's files
carry another person's counter, file name or folder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.worker import prompts
from tests.worker.conftest import Room, StandIns, Workers


async def run(room: Room, user: str, prompt: dict[str, Any]) -> list[dict[str, Any]]:
    job = await room.wait_state(await room.submit(prompt, user=user))
    assert job["state"] == "done", job
    return [image for out in job["outputs"].values() for image in out.get("images", [])]


def saved(room: Room, user: str) -> list[str]:
    folder = room.user_dir(user, "output")
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.png"))


async def test_each_person_counts_their_own_outputs_and_sees_only_their_own_names(
    room: Room, standins: StandIns, workers: Workers, dump_logs: Callable[[], str]
) -> None:
    gpu = standins.start()
    workers.start(gpu.url)
    await room.wait_workers(1)

    # bob saves first, twice; then alice with the same prefix starts at 1, not 3
    for color in (1, 2):
        await run(room, "bob", prompts.empty_saved(color=color, prefix="inverted"))
    alice_first = await run(room, "alice", prompts.empty_saved(color=3, prefix="inverted"))
    assert [(i["filename"], i["subfolder"]) for i in alice_first] == [("inverted_00001_.png", "")]
    await run(room, "alice", prompts.empty_saved(color=4, prefix="trip/day"))
    # a prefix that climbs out of its folder stays in alice's own
    await run(room, "alice", prompts.empty_saved(color=5, prefix="../bob/inverted"))

    assert saved(room, "bob") == ["inverted_00001_.png", "inverted_00002_.png"]
    assert saved(room, "alice") == [
        "bob/inverted_00001_.png",
        "inverted_00001_.png",
        "trip/day_00001_.png",
    ]
    # on the GPU host every person's saves sit in their own folder
    on_gpu = sorted(str(p.relative_to(gpu.output_dir)) for p in gpu.output_dir.rglob("*.png"))
    assert on_gpu == [
        "cm-people/alice/bob/inverted_00001_.png",
        "cm-people/alice/inverted_00001_.png",
        "cm-people/alice/trip/day_00001_.png",
        "cm-people/bob/inverted_00001_.png",
        "cm-people/bob/inverted_00002_.png",
    ]
