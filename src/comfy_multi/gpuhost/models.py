"""Bring a GPU host's models in line with the workshop manifest.

Each file is downloaded next to its final place as ``.<name>.part``, resumed
with an HTTP Range request where an earlier run stopped, hashed while it
arrives, and moved into place only when its sha-256 matches: a bad or half
file never sits under the name ComfyUI loads. A verified file leaves a small
``.<name>.sha256`` note (size, mtime, digest) so that later runs need not hash
20 GB again; ``--check`` always hashes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from comfy_multi.gpuhost.manifest import ModelFile

if TYPE_CHECKING:
    from hashlib import _Hash as Hasher

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
CONNECT_TIMEOUT_S = 30.0
READ_TIMEOUT_S = 120.0

#: (model, bytes just added) for progress display
Progress = Callable[[ModelFile, int], None]


class Outcome(StrEnum):
    OK = "ok"  #: already in place and verified
    DOWNLOADED = "downloaded"  #: fetched (or resumed) and verified
    UNVERIFIED = "unverified"  #: in place, but the manifest names no sha-256 to check
    MISSING = "missing"  #: --check: not there
    FAILED = "failed"  #: download error or wrong checksum


@dataclass(frozen=True)
class Result:
    model: ModelFile
    outcome: Outcome
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.OK, Outcome.DOWNLOADED, Outcome.UNVERIFIED)


def source_url(model: ModelFile) -> tuple[str, dict[str, str]]:
    """The URL to GET and its headers. Hugging Face sources go through
    huggingface_hub, so HF_ENDPOINT and HF_TOKEN apply as users expect."""
    if model.hf:
        from huggingface_hub import hf_hub_url
        from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

        url = hf_hub_url(model.hf, model.file, revision=model.revision)
        return url, dict(build_hf_headers(library_name="comfy-multi"))
    return str(model.url), {"user-agent": "comfy-multi"}


def _paths(models_dir: Path, model: ModelFile) -> tuple[Path, Path, Path]:
    final = models_dir / model.target
    return final, final.with_name(f".{final.name}.part"), final.with_name(f".{final.name}.sha256")


def _hash_file(
    path: Path, progress: Callable[[int], None] | None = None, digest: Hasher | None = None
) -> str:
    digest = digest or hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
            if progress:
                progress(len(chunk))
    return digest.hexdigest()


def _note_matches(final: Path, note: Path, model: ModelFile) -> bool:
    try:
        stat = final.stat()
        saved = json.loads(note.read_text())
    except (OSError, ValueError):
        return False
    return bool(
        saved.get("sha256") == model.sha256
        and saved.get("size") == stat.st_size
        and saved.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_note(final: Path, note: Path, model: ModelFile) -> None:
    stat = final.stat()
    note.write_text(
        json.dumps({"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    )


def verify(models_dir: Path, model: ModelFile, progress: Progress | None = None) -> Result:
    """Hash the file in place (no download)."""
    final, _, note = _paths(models_dir, model)
    if not final.is_file():
        return Result(model, Outcome.MISSING, "not downloaded")
    size = final.stat().st_size
    if model.size is not None and size != model.size:
        return Result(model, Outcome.FAILED, f"size {size:,} bytes, expected {model.size:,}")
    digest = _hash_file(final, (lambda n: progress(model, n)) if progress else None)
    if model.sha256 is None:
        _write_note(final, note, model)
        return _unverified(model, digest)
    if digest != model.sha256:
        return Result(
            model, Outcome.FAILED, f"sha256 {digest[:12]}…, expected {model.sha256[:12]}…"
        )
    _write_note(final, note, model)
    return Result(model, Outcome.OK)


def _unverified(model: ModelFile, digest: str) -> Result:
    return Result(
        model, Outcome.UNVERIFIED, f'sha256 = "{digest}" (add it to the manifest to verify)'
    )


def sync_one(
    client: httpx.Client, models_dir: Path, model: ModelFile, progress: Progress | None = None
) -> Result:
    """Make one model file right: keep it if verified, else download or resume."""
    final, part, note = _paths(models_dir, model)

    def report(n: int) -> None:
        if progress:
            progress(model, n)

    if final.is_file() and _note_matches(final, note, model):
        report(final.stat().st_size)
        if model.sha256 is None:
            return Result(model, Outcome.UNVERIFIED, "no sha256 in the manifest")
        return Result(model, Outcome.OK)
    if final.is_file():
        checked = verify(models_dir, model, progress)
        if checked.ok:
            return checked
        logger.warning("%s is wrong (%s): downloading it again", model.target, checked.detail)
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        digest = _download(client, model, part, report)
    except (httpx.HTTPError, OSError) as exc:
        return Result(model, Outcome.FAILED, _describe(exc))
    if model.sha256 is None:
        if model.size is not None and part.stat().st_size != model.size:
            part.unlink(missing_ok=True)
            return Result(model, Outcome.FAILED, f"size is not {model.size:,} bytes; removed")
        os.replace(part, final)
        _write_note(final, note, model)
        return _unverified(model, digest)
    if digest != model.sha256:
        part.unlink(missing_ok=True)
        return Result(
            model, Outcome.FAILED, f"sha256 {digest[:12]}… is not {model.sha256[:12]}…; removed"
        )
    os.replace(part, final)
    _write_note(final, note, model)
    return Result(model, Outcome.DOWNLOADED)


def _download(
    client: httpx.Client, model: ModelFile, part: Path, report: Callable[[int], None]
) -> str:
    """Fetch into `part`, resuming what is there; return the whole file's sha-256."""
    url, headers = source_url(model)
    digest = hashlib.sha256()
    have = part.stat().st_size if part.is_file() else 0
    if model.size is not None and have > model.size:
        part.unlink()
        have = 0
    if have:
        _hash_file(part, digest=digest)
        report(have)
        headers = {**headers, "range": f"bytes={have}-"}
    with client.stream("GET", url, headers=headers) as response:
        if response.status_code == 416 and model.size == have:
            return digest.hexdigest()  # the part is already whole
        response.raise_for_status()
        if have and response.status_code != 206:
            # the server ignored the range: start over
            digest = hashlib.sha256()
            report(-have)
            have = 0
        with part.open("ab" if have else "wb") as out:
            for chunk in response.iter_bytes():
                out.write(chunk)
                digest.update(chunk)
                report(len(chunk))
    return digest.hexdigest()


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} from {exc.request.url.host}"
    if isinstance(exc, httpx.HTTPError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OSError):
        return f"cannot write: {exc.strerror}"
    return str(exc)


def sync_models(
    models: Iterable[ModelFile],
    models_dir: Path,
    *,
    check_only: bool = False,
    parallel: int = 3,
    progress: Progress | None = None,
) -> list[Result]:
    """Sync (or with `check_only`, verify) every model, `parallel` at a time."""
    todo = list(models)
    if check_only:
        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            return list(pool.map(lambda m: verify(models_dir, m, progress), todo))
    timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    with (
        httpx.Client(timeout=timeout, follow_redirects=True) as client,
        ThreadPoolExecutor(max_workers=max(1, parallel)) as pool,
    ):
        return list(pool.map(lambda m: sync_one(client, models_dir, m, progress), todo))
