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

# the longest name or subfolder taken from a request, and the longest part of one
# (the file system's own limit): past them the file system answers with an OSError
MAX_PATH_CHARS = 1024
MAX_PART_BYTES = 255

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


def short_name(name: str, limit: int = 80) -> str:
    """A name as it may appear in a message or a log line."""
    return name if len(name) <= limit else f"{name[:limit]}… ({len(name):,} characters)"


def usable_path(path: str) -> bool:
    """Whether the file system can take this relative path: no NUL byte, no
    part longer than it allows, not absurdly long in all."""
    if "\0" in path or len(path) > MAX_PATH_CHARS:
        return False
    try:
        return all(len(part.encode()) <= MAX_PART_BYTES for part in path.split("/"))
    except UnicodeEncodeError:  # a lone surrogate from a %-escaped byte
        return False


def is_file(path: Path) -> bool:
    """Path.is_file that answers False, not OSError, for names the file system refuses."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


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
            raise BadRequest(f"bad file name {short_name(filename)!r}")
        for part, what in ((filename, "file name"), (subfolder, "subfolder")):
            if not usable_path(part):
                raise BadRequest(f"bad {what} {short_name(part)!r}")
        base = self.folder(user, kind).resolve()
        try:
            target = (base / subfolder / filename).resolve()
        except (OSError, ValueError):
            raise BadRequest(f"bad file name {short_name(filename)!r}") from None
        if not target.is_relative_to(base) or target == base:
            raise Forbidden("that path is outside your folder")
        return target

    def input_refs(
        self, user: str, prompt: dict[str, Any], upload_names: dict[str, set[str]]
    ) -> list[InputRef]:
        """Every input the prompt names a file with (the upload inputs of
        LoadImage, masks, videos, audio: `upload_names` by class) that is in
        the user's input folder. Other text is text, however it looks."""
        refs: dict[str, InputRef] = {}
        for node in prompt.values():
            if not isinstance(node, dict):
                continue
            inputs = node.get("inputs")
            names = upload_names.get(str(node.get("class_type")))
            if not isinstance(inputs, dict) or not names:
                continue
            for name in names:
                value = inputs.get(name)
                if isinstance(value, str) and value not in refs and self.has_input(user, value):
                    path = split_annotated(value)[0]
                    subfolder, _, filename = path.rpartition("/")
                    refs[value] = InputRef(filename=filename, subfolder=subfolder, ref=value)
        return list(refs.values())

    def has_input(self, user: str, ref: str) -> bool:
        """Whether a prompt's file reference names a file in the user's input folder."""
        name, kind = split_annotated(ref)
        if kind not in (None, "input") or not name.strip():
            return False
        try:
            return is_file(self.resolve(user, "input", "", name))
        except (BadRequest, Forbidden):
            return False

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
