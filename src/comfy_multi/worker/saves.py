"""Each person's saves in their own folder on the GPU host, so that ComfyUI's
file counter is counted per person.

ComfyUI numbers a save by the highest counter already in the target folder
with the same prefix: on a shared ComfyUI, alice's first `inverted` image
would continue bob's count (`inverted_00006_.png`). The worker therefore
puts every `filename_prefix` under `cm-people/<user>/` before it queues the
prompt, and names the files back without that folder when it hands them to
the gateway, so nobody's outputs show another person's counter or name.
"""

from __future__ import annotations

import re
from typing import Any

PEOPLE_FOLDER = "cm-people"
PREFIX_INPUT = "filename_prefix"  # SaveImage, SaveAnimatedWEBP, SaveVideo, SaveAudio, ...


def person_folder(user: str) -> str:
    return f"{PEOPLE_FOLDER}/{user}"


def _within(prefix: str) -> str:
    """The prefix with no way out of its folder: no `..`, no leading slash."""
    parts = [p for p in re.split(r"[/\\]+", prefix) if p not in ("", ".", "..")]
    return "/".join(parts) or "ComfyUI"


def rewrite_saves(prompt: dict[str, Any], user: str) -> dict[str, Any]:
    """A copy of the prompt whose literal save prefixes sit in the user's folder."""
    folder = person_folder(user)
    out: dict[str, Any] = {}
    for node_id, node in prompt.items():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        value = inputs.get(PREFIX_INPUT) if isinstance(inputs, dict) else None
        if not isinstance(inputs, dict) or not isinstance(value, str):
            out[node_id] = node  # no save node, or a prefix wired from another node
            continue
        out[node_id] = {**node, "inputs": {**inputs, PREFIX_INPUT: f"{folder}/{_within(value)}"}}
    return out


def own_subfolder(subfolder: str, user: str) -> str:
    """The subfolder as the user named it: without their folder on the GPU host."""
    folder = person_folder(user)
    if subfolder == folder:
        return ""
    if subfolder.startswith(folder + "/"):
        return subfolder[len(folder) + 1 :]
    return subfolder
