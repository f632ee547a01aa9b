"""The node definitions one participant sees: the workers' merged object_info
with every upload-capable file list (LoadImage's `image`, LoadVideo's `file`,
LoadAudio's `audio` ...) replaced by that participant's own input files.

A worker's ComfyUI lists files in *its* input folder, which belong to nobody
in the room; a participant must see exactly the files they uploaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from comfy_multi.services import media

# option flags ComfyUI puts on a COMBO input that takes uploads, and which files it lists
UPLOAD_FLAGS = {
    "image_upload": media.IMAGE,
    "animated_image_upload": media.IMAGE,
    "video_upload": media.VIDEO,
    "audio_upload": media.AUDIO,
}
CATEGORIES = ("required", "optional")

Upload = tuple[str, str, str]  # (category, input name, media kind)


def upload_kind(spec: Any) -> str | None:
    """The media kind an input accepts uploads of, or None."""
    if not isinstance(spec, list) or len(spec) < 2 or not isinstance(spec[1], dict):
        return None
    for flag, kind in UPLOAD_FLAGS.items():
        if spec[1].get(flag):
            return kind
    return None


def upload_inputs(definition: Any) -> list[Upload]:
    found: list[Upload] = []
    inputs = definition.get("input") if isinstance(definition, dict) else None
    if not isinstance(inputs, dict):
        return found
    for category in CATEGORIES:
        specs = inputs.get(category)
        if not isinstance(specs, dict):
            continue
        for name, spec in specs.items():
            kind = upload_kind(spec)
            if kind is not None:
                found.append((category, name, kind))
    return found


def with_files(spec: list[Any], names: list[str]) -> list[Any]:
    """The spec with its choices replaced: `[[names], opts]` or V3 `["COMBO", {options}]`."""
    if spec and spec[0] == "COMBO":
        return ["COMBO", {**spec[1], "options": names}, *spec[2:]]
    return [names, *spec[1:]]


def input_files(folder: Path) -> dict[str, list[str]]:
    """Top-level files of an input folder by media kind, sorted (as ComfyUI lists them)."""
    by_kind: dict[str, list[str]] = {media.IMAGE: [], media.VIDEO: [], media.AUDIO: []}
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                kind = media.kind_of_name(path.name)
                if kind is not None:
                    by_kind[kind].append(path.name)
    return by_kind


class ObjectInfoView:
    """Caches which nodes take uploads for the current merged object_info."""

    def __init__(self) -> None:
        # (source, its uploads) in one attribute: threads read it while one replaces it
        self._cache: tuple[dict[str, Any] | None, dict[str, list[Upload]]] = (None, {})

    def uploads(self, merged: dict[str, Any]) -> dict[str, list[Upload]]:
        source, uploads = self._cache
        if merged is not source:
            uploads = {
                cls: found
                for cls, definition in merged.items()
                if (found := upload_inputs(definition))
            }
            self._cache = (merged, uploads)
        return uploads

    def for_user(self, merged: dict[str, Any], folder: Path) -> dict[str, Any]:
        """A shallow copy of `merged` with this user's files in the upload inputs."""
        uploads = self.uploads(merged)
        if not uploads:
            return merged
        files = input_files(folder)
        out = dict(merged)
        for cls, found in uploads.items():
            definition = dict(merged[cls])
            inputs = dict(definition["input"])
            for category, name, kind in found:
                specs = dict(inputs[category])
                specs[name] = with_files(specs[name], files[kind])
                inputs[category] = specs
            definition["input"] = inputs
            out[cls] = definition
        return out


_view = ObjectInfoView()


def for_user(merged: dict[str, Any], folder: Path) -> dict[str, Any]:
    """`merged` as the owner of input folder `folder` sees it."""
    return _view.for_user(merged, folder)
