"""Each participant's ComfyUI user directory: settings, saved workflows and
other userdata, plus the shared workflows every participant sees.

Layout under the data dir: `users/<name>/userdata/` holds what ComfyUI keeps
in its user directory (`comfy.settings.json`, `workflows/`, `subgraphs/` ...).
Two read-only folders appear inside everyone's `workflows/`:
`workshop/` (the instructor's files in `<data-dir>/workflows/`) and
`examples/` (shipped with comfy-multi). Saving over one of them writes the
participant's own copy, which from then on shadows the shared one.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from comfy_multi.errors import BadRequest, Forbidden, NotFound
from comfy_multi.services.files import short_name, usable_path
from comfy_multi.settings import Settings

SETTINGS_FILE = "comfy.settings.json"
EXAMPLE_IMAGE = "example.png"  # what the shipped LoadImage examples open
WORKFLOWS = "workflows"
WORKSHOP = "workshop"
EXAMPLES = "examples"

# A new participant lands on a ready canvas: no first-run templates dialog,
# no version-update toast pointing at servers the room may not reach.
SEEDED_SETTINGS: dict[str, Any] = {
    "Comfy.TutorialCompleted": True,
    "Comfy.Notification.ShowVersionUpdates": False,
}


def example_image(size: int = 512) -> bytes:
    """A colourful test picture, drawn rather than shipped."""
    down = Image.linear_gradient("L").resize((size, size))
    across = down.transpose(Image.Transpose.ROTATE_90)
    img = Image.merge("RGB", (across, down, Image.new("L", (size, size), 160)))
    draw = ImageDraw.Draw(img)
    draw.ellipse((size // 4, size // 4, size * 3 // 4, size * 3 // 4), fill=(250, 220, 60))
    draw.rectangle((size // 8, size * 5 // 8, size * 3 // 8, size * 7 // 8), fill=(30, 30, 40))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def shipped_workflows() -> Path:
    return Path(str(files("comfy_multi").joinpath("workflows")))


def file_info(rel: str, path: Path) -> dict[str, Any]:
    st = path.stat()
    return {
        "path": rel,
        "size": st.st_size,
        "modified": st.st_mtime,
        "created": st.st_ctime,
    }


@dataclass(frozen=True)
class Shared:
    """A read-only folder shown inside every participant's workflows."""

    name: str
    path: Path

    def files(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        return sorted(p for p in self.path.rglob("*.json") if p.is_file())


class UserDirs:
    def __init__(self, settings: Settings) -> None:
        self.users_dir = settings.users_dir
        self.shared = (
            Shared(WORKSHOP, settings.workflows_dir),
            Shared(EXAMPLES, shipped_workflows()),
        )
        self._locks: dict[str, asyncio.Lock] = {}

    def root(self, user: str) -> Path:
        path = self.users_dir / user / "userdata"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def resolve(self, user: str, rel: str) -> Path:
        """A path inside the user's directory; 400 empty, 403 escaping."""
        rel = rel.strip()
        if not rel:
            raise BadRequest("a userdata path is needed")
        if not usable_path(rel):
            raise BadRequest(f"the userdata path {short_name(rel)!r} is not one a file can have")
        base = self.root(user).resolve()
        target = (base / rel.lstrip("/")).resolve()
        if not target.is_relative_to(base) or target == base:
            raise Forbidden("that path is outside your folder")
        return target

    def shared_file(self, rel: str) -> Path | None:
        """The shared file behind `workflows/<workshop|examples>/...`, if any."""
        parts = Path(rel.strip().lstrip("/")).parts
        if len(parts) < 3 or parts[0] != WORKFLOWS or ".." in parts:
            return None
        for shared in self.shared:
            if parts[1] == shared.name:
                path = shared.path.joinpath(*parts[2:])
                return path if path.is_file() else None
        return None

    def read_path(self, user: str, rel: str) -> Path:
        """The file a GET of `rel` serves: the user's own, else a shared one."""
        own = self.resolve(user, rel)
        if own.is_file():
            return own
        shared = self.shared_file(rel)
        if shared is None:
            raise NotFound(f"no userdata file {rel!r}")
        return shared

    def listing(self, user: str, directory: str, *, recurse: bool) -> list[tuple[str, Path]]:
        """(path relative to `directory`, file) for every file under it, the
        shared workflows merged in where the user has no own copy."""
        base = self.resolve(user, directory)
        found: dict[str, Path] = {}
        if base.is_dir():
            pattern = base.rglob("*") if recurse else base.glob("*")
            for path in pattern:
                rel = path.relative_to(base)
                # like ComfyUI's glob: hidden files (bookmarks, partial writes) stay out
                if path.is_file() and not any(p.startswith(".") for p in rel.parts):
                    found[rel.as_posix()] = path
        if directory.strip("/") == WORKFLOWS and recurse:
            for shared in self.shared:
                for path in shared.files():
                    shown = f"{shared.name}/{path.relative_to(shared.path).as_posix()}"
                    found.setdefault(shown, path)
        return sorted(found.items())

    # writing ------------------------------------------------------------------

    def lock(self, user: str) -> asyncio.Lock:
        return self._locks.setdefault(user, asyncio.Lock())

    @staticmethod
    def write_atomic(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            tmp.write_bytes(data)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)

    # settings -------------------------------------------------------------------

    def is_new(self, user: str) -> bool:
        return not (self.root(user) / SETTINGS_FILE).exists()

    def welcome(self, user: str, input_folder: Path) -> None:
        """A new participant's first visit: seeded settings and a picture to
        try the examples on."""
        if not self.is_new(user):
            return
        self.load_settings(user)
        target = input_folder / EXAMPLE_IMAGE
        if not target.exists():
            self.write_atomic(target, example_image())

    def load_settings(self, user: str) -> dict[str, Any]:
        """The user's settings, seeded on first use."""
        path = self.root(user) / SETTINGS_FILE
        if not path.exists():
            self.write_atomic(path, json.dumps(SEEDED_SETTINGS, indent=2).encode())
            return dict(SEEDED_SETTINGS)
        with contextlib.suppress(ValueError):
            data = json.loads(path.read_text())
            if isinstance(data, dict):
                return data
        return dict(SEEDED_SETTINGS)  # a hand-broken file: start over rather than fail the page

    def save_settings(self, user: str, values: dict[str, Any]) -> None:
        path = self.root(user) / SETTINGS_FILE
        self.write_atomic(path, json.dumps(values, indent=2).encode())
