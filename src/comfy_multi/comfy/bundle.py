"""The frontend wheel's static files, gzipped once and kept in the data dir.

A room of participants all load the same ~20 MB of JavaScript at the start
of a workshop, often over one Wi-Fi; compressed it is about a quarter. The
gateway compresses each file the first time it is asked for (in a thread)
and serves the stored copy afterwards, so a proxy in front is not required
for it.
"""

from __future__ import annotations

import gzip
import os
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from importlib.resources import files
from pathlib import Path

import anyio.to_thread

from comfy_multi.errors import NotFound

STATIC = Path(str(files("comfyui_frontend_package").joinpath("static")))
COMPRESSIBLE = frozenset({".js", ".mjs", ".css", ".json", ".svg", ".html", ".txt", ".ttf", ".woff"})
MIN_SIZE = 1024  # smaller files gain nothing worth a second read


@cache
def _static_root() -> Path:
    return STATIC.resolve()


def static_file(path: str) -> Path:
    base = _static_root()
    target = (base / path).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        raise NotFound(f"there is nothing at {path!r}")
    return target


def _cache_dir(data_dir: Path) -> Path:
    try:
        release = version("comfyui-frontend-package")
    except PackageNotFoundError:  # pragma: no cover - the wheel is a dependency
        release = "unknown"
    return data_dir / "cache" / f"frontend-{release}"


def _compress(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with source.open("rb") as src, gzip.open(partial, "wb", compresslevel=6) as out:
            while chunk := src.read(1024 * 1024):
                out.write(chunk)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def _ensure_gzip(path: Path, data_dir: Path) -> Path | None:
    if path.suffix not in COMPRESSIBLE or path.stat().st_size < MIN_SIZE:
        return None
    target = _cache_dir(data_dir) / f"{path.relative_to(_static_root())}.gz"
    if not target.exists():
        _compress(path, target)
    return target


async def gzipped(path: Path, data_dir: Path) -> Path | None:
    """The stored gzip copy of a static file (made now if missing), or None
    when the file is not worth compressing."""
    return await anyio.to_thread.run_sync(_ensure_gzip, path, data_dir)
