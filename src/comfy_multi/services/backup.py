"""A room in one file: Redis state and the data dir's files, and back.

The archive (tar.gz) holds `backup.json` (what it is), `redis.bin` (every
platform key as a Redis DUMP payload, copied at one instant) and `data/` (the
data dir's files but Redis' own). Redis is copied first and the files after,
so every output, upload and workflow that the state names is in the archive.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import struct
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from comfy_multi import __version__
from comfy_multi.errors import ConfigError
from comfy_multi.store.snapshot import (
    KeyCopy,
    copy_all,
    delete_all,
    platform_key_count,
    restore_all,
)

FORMAT = 1
META = "backup.json"
REDIS_FILE = "redis.bin"
DATA = "data"
#: not copied: Redis' own files (the state travels as redis.bin) and run-time locks
SKIPPED = {"redis", "up.lock"}
_RECORD = struct.Struct(">IqI")  # key length, pttl ms, payload length


@dataclass(frozen=True)
class Summary:
    keys: int
    files: int
    bytes: int


def _encode(copies: list[KeyCopy]) -> bytes:
    out = io.BytesIO()
    for c in copies:
        key = c.key.encode()
        out.write(_RECORD.pack(len(key), c.pttl_ms, len(c.payload)))
        out.write(key)
        out.write(c.payload)
    return out.getvalue()


def _decode(blob: bytes) -> Iterator[KeyCopy]:
    at = 0
    while at < len(blob):
        if at + _RECORD.size > len(blob):
            raise ConfigError("the backup's Redis copy is truncated")
        key_len, pttl, size = _RECORD.unpack_from(blob, at)
        at += _RECORD.size
        end = at + key_len + size
        if end > len(blob):
            raise ConfigError("the backup's Redis copy is truncated")
        key = blob[at : at + key_len].decode()
        yield KeyCopy(key, pttl, blob[at + key_len : end])
        at = end


def _data_files(data_dir: Path) -> Iterator[Path]:
    for entry in sorted(data_dir.iterdir()):
        if entry.name in SKIPPED:
            continue
        if entry.is_dir() and not entry.is_symlink():
            yield from (p for p in sorted(entry.rglob("*")) if p.is_file() and not p.is_symlink())
        elif entry.is_file():
            yield entry


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o600
    archive.addfile(info, io.BytesIO(data))


async def write_backup(raw: Redis, data_dir: Path, out: Path) -> Summary:
    """`raw`: a connection that does not decode responses."""
    copies = await copy_all(raw)
    return await asyncio.to_thread(_write_archive, copies, data_dir, out)


def _write_archive(copies: list[KeyCopy], data_dir: Path, out: Path) -> Summary:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.part")
    files = size = 0
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw_out, tarfile.open(fileobj=raw_out, mode="w:gz") as archive:
        _add_bytes(archive, REDIS_FILE, _encode(copies))
        if data_dir.is_dir():
            for path in _data_files(data_dir):
                archive.add(path, arcname=f"{DATA}/{path.relative_to(data_dir)}", recursive=False)
                files += 1
                size += path.stat().st_size
        meta = {
            "format": FORMAT,
            "version": __version__,
            "created": time.time(),
            "keys": len(copies),
            "files": files,
        }
        _add_bytes(archive, META, json.dumps(meta).encode())
    os.replace(partial, out)
    return Summary(len(copies), files, size)


@dataclass(frozen=True)
class _Contents:
    copies: list[KeyCopy]
    members: list[tarfile.TarInfo]


def _read_archive(source: Path) -> _Contents:
    try:
        with tarfile.open(source, mode="r:gz") as archive:
            meta_file = archive.extractfile(META)
            meta = json.loads(meta_file.read()) if meta_file else None
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ConfigError(f"{source} is not a comfy-multi backup (format {FORMAT})")
            blob = archive.extractfile(REDIS_FILE)
            if blob is None:
                raise ConfigError(f"{source} holds no Redis copy")
            copies = list(_decode(blob.read()))
            members = [m for m in archive.getmembers() if m.name.startswith(f"{DATA}/")]
    except KeyError:
        raise ConfigError(f"{source} is not a comfy-multi backup") from None
    except (OSError, tarfile.TarError, ValueError) as exc:
        raise ConfigError(f"cannot read {source}: {exc}") from None
    return _Contents(copies, members)


def _extract(source: Path, members: list[tarfile.TarInfo], data_dir: Path) -> None:
    for m in members:
        m.name = m.name[len(DATA) + 1 :]
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tarfile.open(source, mode="r:gz") as archive:
        archive.extractall(data_dir, members=members, filter="data")


def _has_user_files(data_dir: Path) -> bool:
    users = data_dir / "users"
    return users.is_dir() and any(users.iterdir())


async def restore_backup(raw: Redis, data_dir: Path, source: Path, *, force: bool) -> Summary:
    """Put a backup back. Refuses to mix it into a room that has state unless `force`."""
    contents = await asyncio.to_thread(_read_archive, source)
    existing = await platform_key_count(raw)
    has_files = await asyncio.to_thread(_has_user_files, data_dir)
    if (existing or has_files) and not force:
        raise ConfigError(
            f"the room at {data_dir} already has state ({existing} keys"
            f"{', user files' if has_files else ''}); restore into an empty data dir, "
            "or pass --force to replace it"
        )
    await asyncio.to_thread(_extract, source, contents.members, data_dir)
    if force:
        await delete_all(raw)
    restored = await restore_all(raw, contents.copies)
    return Summary(restored, len(contents.members), sum(m.size for m in contents.members))
