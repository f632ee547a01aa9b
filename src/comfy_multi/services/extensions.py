"""Custom nodes' web extensions, as the workers' ComfyUI serves them, for every
participant's page: validated manifests and a content-addressed file store.

ComfyUI serves each custom node's WEB_DIRECTORY under `/extensions/<node>/`
and lists its `.js` files at `/extensions`; the frontend imports each listed
file from `api_base + path`. A worker sends the set with its node
definitions; files are stored once per content hash, so an unchanged set
costs one small request.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import orjson

from comfy_multi.errors import BadRequest, NotFound, TooLarge

MAX_FILE_BYTES = 4 * 1024 * 1024  # one file; custom nodes ship bundles of a few hundred KB
MAX_SET_BYTES = 32 * 1024 * 1024  # one worker's whole set
MAX_FILES = 2000
PREFIX = "/extensions/"
OWN = "/extensions/comfy_multi/"  # the platform's own extension: never a worker's
_SAFE_PATH = re.compile(r"^/extensions/[A-Za-z0-9_.@+%\- ]+(/[A-Za-z0-9_.@+%\- ]+)+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def manifest_digest(manifest: dict[str, str]) -> str:
    """The id of a set: sha256 of its canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS)).hexdigest()


def check_path(path: str) -> str:
    if (
        not _SAFE_PATH.match(path)
        or path.startswith((OWN, "/extensions/core/"))
        or any(part in (".", "..") for part in path.split("/"))
    ):
        raise BadRequest(f"{path[:200]!r} is not an extension file path ComfyUI would serve")
    return path


def check_manifest(files: object) -> dict[str, tuple[str, int]]:
    """`{path: {sha256, size}}` from a worker, checked: {path: (sha256, size)}."""
    if not isinstance(files, dict):
        raise BadRequest("files must be an object of url path -> {sha256, size}")
    if len(files) > MAX_FILES:
        raise TooLarge(f"more than {MAX_FILES} extension files")
    out: dict[str, tuple[str, int]] = {}
    total = 0
    for path, entry in files.items():
        check_path(str(path))
        if not isinstance(entry, dict):
            raise BadRequest(f"{path!r}: expected {{sha256, size}}")
        sha, size = entry.get("sha256"), entry.get("size")
        if not isinstance(sha, str) or not _SHA256.match(sha):
            raise BadRequest(f"{path!r}: sha256 must be 64 lowercase hex digits")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_FILE_BYTES:
            raise TooLarge(f"{path!r}: files may be up to {MAX_FILE_BYTES} bytes")
        total += size
        out[str(path)] = (sha, size)
    if total > MAX_SET_BYTES:
        raise TooLarge(f"the extension files add up to more than {MAX_SET_BYTES} bytes")
    return out


class ExtensionFiles:
    """Extension files on disk under the data dir, named by their sha256."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, sha: str) -> Path:
        if not _SHA256.match(sha):
            raise BadRequest("not a sha256")
        return self.folder / sha[:2] / sha

    def missing(self, hashes: set[str]) -> list[str]:
        return sorted(h for h in hashes if not self.path(h).is_file())

    async def write(self, sha: str, chunks: AsyncIterator[bytes]) -> None:
        """Store one file if its content has this hash; 400 otherwise."""
        target = self.path(sha)
        if target.is_file():
            return
        await anyio.Path(target.parent).mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{sha}.{id(chunks)}.part")
        digest = hashlib.sha256()
        size = 0
        try:
            async with await anyio.open_file(partial, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > MAX_FILE_BYTES:
                        raise TooLarge(f"extension files may be up to {MAX_FILE_BYTES} bytes")
                    digest.update(chunk)
                    await out.write(chunk)
            if digest.hexdigest() != sha:
                raise BadRequest("the file's content does not match its sha256")
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)

    def find(self, sha: str) -> Path:
        path = self.path(sha)
        if not path.is_file():
            raise NotFound("that extension file is not stored")
        return path
