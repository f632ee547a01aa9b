"""`comfy-multi backup` and `comfy-multi restore`."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from redis.exceptions import RedisError
from rich.console import Console

from comfy_multi.errors import ConfigError
from comfy_multi.room import find_room
from comfy_multi.services.backup import restore_backup, write_backup
from comfy_multi.settings import Settings, load_settings
from comfy_multi.store.connection import connect
from comfy_multi.store.embedded import EmbeddedRedis

console = Console()
err = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="The room's data dir (env COMFY_MULTI_DATA_DIR).", show_default=False
    ),
]


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(1)


def _room_is_running(settings: Settings) -> bool:
    """`comfy-multi up` holds its data dir's lock while it runs."""
    lock_path = settings.data_dir / "up.lock"
    if not lock_path.exists():
        return False
    with lock_path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
    return False


@contextlib.contextmanager
def _redis_url(settings: Settings) -> Iterator[str]:
    """The room's Redis: REDIS_URL, the running embedded one, or one started for this command."""
    if settings.redis_url:
        yield settings.redis_url
        return
    embedded = EmbeddedRedis(settings.redis_dir, settings.redis_maxmemory_mb)
    if embedded.running_pid() is not None:
        yield embedded.url
        return
    embedded.start(adopt=False)
    try:
        yield embedded.url
    finally:
        embedded.stop()


def _room_name(settings: Settings) -> str:
    return "the Redis at REDIS_URL" if settings.redis_url else str(settings.data_dir.resolve())


def backup_command(
    out: Annotated[Path, typer.Option("--out", help="The archive to write (.tar.gz).")],
    data_dir: DataDir = None,
) -> None:
    """Copy the room (state and files) into one archive; safe while the room runs."""
    try:  # the same room every other command finds, running or not
        room = find_room(load_settings(data_dir=data_dir))
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    settings = room.settings
    console.print(room.describe(), highlight=False, soft_wrap=True)

    async def run(url: str) -> None:
        raw = connect(url, decode=False)
        try:
            summary = await write_backup(raw, settings.data_dir, out)
        finally:
            await raw.aclose()
        console.print(
            f"Backed up {summary.keys} keys and {summary.files} files "
            f"({summary.bytes / 1e6:.1f} MB) to {out}"
        )

    try:
        with _redis_url(settings) as url:
            asyncio.run(run(url))
    except (ConfigError, RedisError, OSError) as exc:
        raise _fail(str(exc)) from None


def restore_command(
    source: Annotated[
        Path,
        typer.Argument(
            help="An archive made by `comfy-multi backup`.", exists=True, dir_okay=False
        ),
    ],
    data_dir: DataDir = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the state of a room that has some.")
    ] = False,
) -> None:
    """Put a backup back into a stopped room (a new, empty data dir by default)."""
    settings = load_settings(data_dir=data_dir)
    console.print(f"Room: {_room_name(settings)}")
    if _room_is_running(settings) or (
        not settings.redis_url and EmbeddedRedis(settings.redis_dir).running_pid() is not None
    ):
        raise _fail(
            f"the room at {settings.data_dir.resolve()} is running: stop `comfy-multi up` "
            "first, then restore"
        )

    async def run(url: str) -> None:
        raw = connect(url, decode=False)
        try:
            summary = await restore_backup(raw, settings.data_dir, source, force=force)
        finally:
            await raw.aclose()
        console.print(f"Restored {summary.keys} keys and {summary.files} files from {source}")

    try:
        with _redis_url(settings) as url:
            asyncio.run(run(url))
    except (ConfigError, RedisError, OSError) as exc:
        raise _fail(str(exc)) from None
