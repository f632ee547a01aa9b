"""Each user's files on disk: input, output and temp folders and saved userdata.

Every path that comes from a request goes through `resolve`, which refuses
names that escape the user's folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio

from comfy_multi.errors import BadRequest, Forbidden, TooLarge
from comfy_multi.queue.models import InputRef

FILE_TYPES = ("input", "output", "temp")
_SAFE_CHARS = re.compile(r"[^A-Za-z0-9 ._()\-\[\]+=,@&]")
MAX_NAME = 200


def sanitize_name(name: str) -> str:
    """A safe single path component from a client-given file name."""
    name = os.path.basename(name.replace("\\", "/")).strip()
    name = _SAFE_CHARS.sub("_", name)[:MAX_NAME].lstrip(".")
    if not name:
        raise BadRequest("the file needs a name")
    return name


def split_annotated(value: str) -> tuple[str, str | None]:
    """ComfyUI's `name.png [input]` form: (name, type or None)."""
    for kind in FILE_TYPES:
        suffix = f" [{kind}]"
        if value.endswith(suffix):
            return value[: -len(suffix)], kind
    return value, None


class UserFiles:
    def __init__(self, users_dir: Path) -> None:
        self.users_dir = users_dir

    def root(self, user: str) -> Path:
        return self.users_dir / user

    def folder(self, user: str, kind: str) -> Path:
        if kind not in FILE_TYPES:
            raise BadRequest(f"unknown file type {kind!r}; use input, output or temp")
        path = self.root(user) / kind
        path.mkdir(parents=True, exist_ok=True)
        return path

    def resolve(self, user: str, kind: str, subfolder: str, filename: str) -> Path:
        """The path of a user's file; 400 for a bad name, 403 for an escape."""
        if not filename or filename.startswith("/") or ".." in filename:
            raise BadRequest(f"bad file name {filename!r}")
        base = self.folder(user, kind).resolve()
        target = (
            (base / subfolder / filename).resolve() if subfolder else (base / filename).resolve()
        )
        if not target.is_relative_to(base) or target == base:
            raise Forbidden("that path is outside your folder")
        return target

    def input_refs(self, user: str, prompt: dict[str, Any]) -> list[InputRef]:
        """Every string input in the prompt that names an existing file of the
        user's input folder (LoadImage, masks, videos, audio...)."""
        refs: dict[str, InputRef] = {}
        base = self.folder(user, "input")
        for node in prompt.values():
            inputs = node.get("inputs") if isinstance(node, dict) else None
            if not isinstance(inputs, dict):
                continue
            for value in inputs.values():
                if not isinstance(value, str) or value in refs or not value.strip():
                    continue
                name, kind = split_annotated(value)
                if kind not in (None, "input") or ".." in name or name.startswith("/"):
                    continue
                if (base / name).is_file():
                    subfolder, _, filename = name.rpartition("/")
                    refs[value] = InputRef(filename=filename, subfolder=subfolder, ref=value)
        return list(refs.values())

    async def write_stream(
        self,
        user: str,
        kind: str,
        subfolder: str,
        filename: str,
        chunks: AsyncIterator[bytes],
        *,
        max_bytes: int,
    ) -> tuple[str, str]:
        """Stream a body to a new file (never overwriting: `name_1.ext`...).
        Returns (filename, subfolder) as stored."""
        filename = sanitize_name(filename)
        target = self.unique(self.resolve(user, kind, subfolder, filename))
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        written = 0
        try:
            async with await anyio.open_file(partial, "wb") as out:
                async for chunk in chunks:
                    written += len(chunk)
                    if written > max_bytes:
                        raise TooLarge(f"the file is larger than the {max_bytes} bytes allowed")
                    await out.write(chunk)
            target = self.unique(target)
            partial.rename(target)
        finally:
            partial.unlink(missing_ok=True)
        return target.name, subfolder

    @staticmethod
    def unique(path: Path) -> Path:
        if not path.exists():
            return path
        stem, suffix = path.stem, path.suffix
        n = 1
        while True:
            candidate = path.with_name(f"{stem}_{n}{suffix}")
            if not candidate.exists():
                return candidate
            n += 1
