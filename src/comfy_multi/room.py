"""Which room a command acts on: the data dir of a running `up`, an existing one, or none.

`up` writes `room.json` into its data dir while it runs, and a copy under the
rooms directory (`COMFY_MULTI_ROOMS_DIR`, default `~/.local/state/comfy-multi/rooms`)
so a command typed in another directory still finds the one room that is running.
A command never creates a room: where it finds none it says how to point it at one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from comfy_multi.errors import ConfigError
from comfy_multi.settings import Settings

ROOM_FILE = "room.json"
HOW_TO_POINT = (
    "point the command at the room with --data-dir DIR (or COMFY_MULTI_DATA_DIR=DIR), "
    "or set REDIS_URL to the room's Redis"
)


class NoRoom(ConfigError):
    """No room where the command looked; the message says where it looked and what to do."""


@dataclass(frozen=True)
class RunningRoom:
    """What a running `up` tells other commands about itself."""

    data_dir: str
    pid: int
    address: str  # where the gateway listens, e.g. http://127.0.0.1:8080
    public_url: str  # what the sign-in sheet prints
    started_ms: int


@dataclass(frozen=True)
class Room:
    settings: Settings  # data_dir resolved to the room's
    running: RunningRoom | None
    found_by_search: bool = False  # the default ./data had no room; the running one was taken

    def describe(self) -> str:
        if self.settings.redis_url:
            return f"room: the Redis at {redact(self.settings.redis_url)}"
        where = str(self.settings.data_dir)
        if self.running is None:
            return f"room: {where} (not running; its Redis is started for this command only)"
        found = ", the only one running" if self.found_by_search else ""
        return f"room: {where} (running at {self.running.address}{found})"


def redact(url: str) -> str:
    """A Redis URL without its password, fit for a terminal or a log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _registry_entry(settings: Settings, data_dir: Path) -> Path:
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    return settings.rooms_dir / f"{digest}.json"


def _read(path: Path) -> RunningRoom | None:
    try:
        raw = json.loads(path.read_text())
        room = RunningRoom(**raw)
    except (OSError, ValueError, TypeError):
        return None
    return room if _pid_alive(room.pid) else None


def announce(settings: Settings, running: RunningRoom) -> None:
    """Called by `up` once it serves: other commands can now find this room."""
    text = json.dumps(asdict(running), indent=2) + "\n"
    data_dir = Path(running.data_dir)
    (data_dir / ROOM_FILE).write_text(text)
    with contextlib.suppress(OSError):  # a read-only home only loses the search from elsewhere
        settings.rooms_dir.mkdir(parents=True, exist_ok=True)
        _registry_entry(settings, data_dir).write_text(text)


def withdraw(settings: Settings, data_dir: Path) -> None:
    """Called by `up` as it stops."""
    data_dir = data_dir.resolve()
    for path in (data_dir / ROOM_FILE, _registry_entry(settings, data_dir)):
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def running_in(data_dir: Path) -> RunningRoom | None:
    """The `up` serving this data dir; a room.json copied here from elsewhere (a
    restored backup) names another dir and does not count."""
    room = _read(data_dir / ROOM_FILE)
    return room if room and Path(room.data_dir) == data_dir.resolve() else None


def has_room(data_dir: Path) -> bool:
    """A data dir holds a room once `up` has started there: its Redis files exist."""
    redis_dir = data_dir / "redis"
    aof = (redis_dir / "appendonlydir").is_dir() or (redis_dir / "appendonly.aof").is_file()
    return aof or running_in(data_dir) is not None


def running_rooms(settings: Settings) -> list[RunningRoom]:
    if not settings.rooms_dir.is_dir():
        return []
    found = []
    for path in sorted(settings.rooms_dir.glob("*.json")):
        room = _read(path)
        if room is not None and running_in(Path(room.data_dir)) == room:
            found.append(room)
    return found


def find_room(settings: Settings) -> Room:
    """The room this command acts on, or NoRoom saying where it looked and how to point it."""
    if settings.redis_url:
        return Room(settings, None)
    data_dir = settings.data_dir.resolve()
    resolved = settings.model_copy(update={"data_dir": data_dir})
    if has_room(data_dir):
        return Room(resolved, running_in(data_dir))
    if "data_dir" in settings.model_fields_set:
        raise NoRoom(
            f"no room in {data_dir} (`comfy-multi up` has never run there); {HOW_TO_POINT}"
        )
    rooms = running_rooms(settings)
    if len(rooms) == 1:
        room = rooms[0]
        moved = settings.model_copy(update={"data_dir": Path(room.data_dir)})
        return Room(moved, room, found_by_search=True)
    if rooms:
        listed = "; ".join(f"--data-dir {r.data_dir} ({r.address})" for r in rooms)
        raise NoRoom(
            f"no room in {data_dir}, and {len(rooms)} rooms are running: choose one with {listed}"
        )
    raise NoRoom(
        f"no room in {data_dir} and no `comfy-multi up` running; start the room first "
        f"(`./scripts/up` or `comfy-multi up`), or {HOW_TO_POINT}"
    )
