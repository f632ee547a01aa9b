"""A node's ui outputs as the participant sees them: which items the stock
frontend previews, and nothing of the GPU host's file system.

The previewable rule is the pinned frontend's (1.58.1, `resultItemUrl` and
`formatUtil`): an item counts by its file extension first, then by its output
key (`images`, `video`, `audio`) or a VHS-style `format` of `video/*` or
`audio/*`; 3D and text files count by extension. Keys `animated` and `text`
are not file lists.
"""

from __future__ import annotations

import re
from typing import Any

_IMAGE = frozenset({"png", "jpg", "jpeg", "gif", "webp", "bmp", "avif", "tif", "tiff", "svg"})
_VIDEO = frozenset({"mp4", "m4v", "webm", "mov", "avi", "mkv"})
_AUDIO = frozenset({"mp3", "wav", "ogg", "flac", "opus", "m4a"})
_THREE_D = frozenset({"obj", "fbx", "gltf", "glb", "stl", "usdz", "ply", "spz", "splat", "ksplat"})
_TEXT = frozenset({"txt", "md", "markdown", "json", "csv", "yaml", "yml", "xml", "log"})
NOT_FILE_LISTS = frozenset({"animated", "text"})
FILE_TYPES = ("input", "output", "temp")

# keys custom nodes use for where a file sits on their own disk (VHS: fullpath)
HOST_PATH_KEYS = frozenset({"fullpath", "full_path", "abspath", "filepath", "local_path"})
_ABSOLUTE = re.compile(r"^(/|[A-Za-z]:[\\/]|\\\\)")


def media_of_name(filename: str) -> str:
    """image, video, audio, 3D, text or other, by extension (frontend rule)."""
    ext = filename.rsplit(".", 1)[-1].lower() if filename else ""
    for kind, names in (
        ("image", _IMAGE),
        ("video", _VIDEO),
        ("audio", _AUDIO),
        ("3D", _THREE_D),
        ("text", _TEXT),
    ):
        if ext in names:
            return kind
    return "other"


def is_file_item(item: Any) -> bool:
    """The frontend's `isResultItem`: a dict with a string filename and, if
    present, a known type."""
    if not isinstance(item, dict) or not isinstance(item.get("filename"), str):
        return False
    kind = item.get("type")
    return kind is None or kind in FILE_TYPES


def is_previewable(media_type: str, item: dict[str, Any]) -> bool:
    """Whether the frontend shows this output item in the queue and assets panels."""
    by_name = media_of_name(str(item.get("filename", "")))
    fmt = item.get("format")
    fmt = fmt if isinstance(fmt, str) else ""
    if by_name in ("image", "video", "audio", "3D", "text"):
        return True
    # an unknown extension: the output key or a VHS format decides
    return media_type in ("images", "video", "audio", "text") or fmt.startswith(
        ("video/", "audio/")
    )


def file_items(outputs: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(node id, output key, item) for every file item, in order (`parseTaskOutput`)."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    for node_id, node_outputs in outputs.items():
        if not isinstance(node_outputs, dict):
            continue
        for media_type, items in node_outputs.items():
            if media_type in NOT_FILE_LISTS or not isinstance(items, list):
                continue
            found.extend((str(node_id), media_type, i) for i in items if is_file_item(i))
    return found


def _is_host_path(key: str, value: Any) -> bool:
    return key in HOST_PATH_KEYS or (isinstance(value, str) and bool(_ABSOLUTE.match(value)))


def scrub_item(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    return {k: v for k, v in item.items() if not _is_host_path(k, v)}


def scrub(output: Any) -> Any:
    """One node's ui output without host paths: file items lose `fullpath` and
    any absolute path a custom node put beside the name."""
    if not isinstance(output, dict):
        return output
    return {
        key: [scrub_item(i) for i in value] if isinstance(value, list) else value
        for key, value in output.items()
    }


def scrub_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    """A job's outputs ({node: ui output}) without host paths."""
    return {node: scrub(output) for node, output in outputs.items()}


def scrub_event(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """A relayed ComfyUI event without host paths in its output."""
    if kind == "executed" and isinstance(data.get("output"), dict):
        return {**data, "output": scrub(data["output"])}
    return data
