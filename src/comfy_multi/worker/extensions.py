"""The web extensions (custom nodes' front-end files) a ComfyUI serves, read
so the gateway can serve them to every participant's page.

ComfyUI lists each custom node's `.js` files under `WEB_DIRECTORY` at
`/extensions`; the frontend's own core extensions are left out, as the
frontend itself skips them. Files over the size bounds are left out with a
warning rather than failing registration.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re

import httpx

from comfy_multi.worker.comfyui import ComfyUI
from comfy_multi.worker.errors import ComfyUIUnavailable

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 4 * 1024 * 1024  # as the gateway accepts
MAX_SET_BYTES = 32 * 1024 * 1024
MAX_FILES = 2000


# the paths the gateway accepts: custom nodes' files with plain names
_SAFE_PATH = re.compile(r"^/extensions/[A-Za-z0-9_.@+%\- ]+(/[A-Za-z0-9_.@+%\- ]+)+$")


def wanted(path: str) -> bool:
    return (
        bool(_SAFE_PATH.match(path))
        and not path.startswith(("/extensions/core/", "/extensions/comfy_multi/"))
        and not any(part in (".", "..") for part in path.split("/"))
    )


def set_digest(files: dict[str, bytes]) -> str:
    """Changes whenever any file's path or content does."""
    manifest = {p: hashlib.sha256(b).hexdigest() for p, b in sorted(files.items())}
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


async def read_web_extensions(comfy: ComfyUI) -> dict[str, bytes]:
    """{url path: content} of every extension file ComfyUI lists, within bounds."""
    files: dict[str, bytes] = {}
    total = 0
    listed = await comfy.extensions()
    for path in listed:
        if not wanted(path) and not path.startswith("/extensions/core/"):
            logger.warning("web extension %r has a name the gateway does not serve; left out", path)
    for path in sorted(set(filter(wanted, listed)))[:MAX_FILES]:
        try:
            body = await comfy.web_file(path, MAX_FILE_BYTES)
        except httpx.TransportError as exc:
            raise ComfyUIUnavailable(comfy.url, f"{path}: {exc}") from exc
        if body is None:
            logger.warning(
                "web extension %s is missing or over %d bytes; left out", path, MAX_FILE_BYTES
            )
            continue
        if total + len(body) > MAX_SET_BYTES:
            logger.warning(
                "web extensions pass %d bytes; %s and later left out", MAX_SET_BYTES, path
            )
            break
        total += len(body)
        files[path] = body
    return files
