"""The input, output and temp folders, and ComfyUI's rules for names inside them."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

FOLDER_TYPES = ("input", "output", "temp")


@dataclass(frozen=True)
class Dirs:
    """The three folders of one stand-in, all absolute."""

    root: Path

    @property
    def input(self) -> str:
        return str(self.root / "input")

    @property
    def output(self) -> str:
        return str(self.root / "output")

    @property
    def temp(self) -> str:
        return str(self.root / "temp")

    def by_type(self, folder_type: str | None) -> str | None:
        """ComfyUI's get_directory_by_type: None for an unknown type."""
        return {"input": self.input, "output": self.output, "temp": self.temp}.get(
            folder_type or ""
        )

    def prepare(self) -> None:
        """Create the folders; temp starts empty, as ComfyUI wipes it at start-up."""
        shutil.rmtree(self.temp, ignore_errors=True)
        for folder in (self.input, self.output, self.temp):
            os.makedirs(folder, exist_ok=True)

    def annotated(self, name: str) -> tuple[str, str | None]:
        """Split `name [input]`-style annotations: (name, folder or None)."""
        for folder_type in FOLDER_TYPES:
            suffix = f" [{folder_type}]"
            if name.endswith(suffix):
                return name[: -len(suffix)], self.by_type(folder_type)
        return name, None

    def annotated_path(self, name: str, default: str = "input") -> str | None:
        """The file an annotated name points at, or None if it leaves its folder."""
        name, folder = self.annotated(name)
        base = folder or self.by_type(default) or self.input
        path = os.path.abspath(os.path.join(base, name))
        if os.path.commonpath((base, path)) != base:
            return None
        return path

    def exists_annotated(self, name: str) -> bool:
        path = self.annotated_path(name)
        return path is not None and os.path.exists(path)

    def list_input_files(self) -> list[str]:
        """Files directly in the input folder, sorted, as LoadImage lists them."""
        folder = self.input
        return sorted(f for f in os.listdir(folder) if os.path.isfile(os.path.join(folder, f)))


def inside(base: str, path: str) -> bool:
    """True when `path` (made absolute) stays within `base`."""
    return os.path.commonpath((base, os.path.abspath(path))) == base


def _expand(prefix: str, width: int, height: int) -> str:
    now = time.localtime()
    values = {
        "%width%": str(width),
        "%height%": str(height),
        "%year%": str(now.tm_year),
        "%month%": f"{now.tm_mon:02}",
        "%day%": f"{now.tm_mday:02}",
        "%hour%": f"{now.tm_hour:02}",
        "%minute%": f"{now.tm_min:02}",
        "%second%": f"{now.tm_sec:02}",
    }
    for key, value in values.items():
        prefix = prefix.replace(key, value)
    return prefix


def _counter_of(existing: str, filename: str) -> int | None:
    """The counter in `<filename>_<counter>_...` or None if the name is not of that form."""
    head = existing[: len(filename) + 1]
    if head[:-1].lower() != filename.lower() or not head.endswith("_"):
        return None
    try:
        return int(existing[len(filename) + 1 :].split("_")[0])
    except ValueError:
        return 0


def save_path(
    prefix: str, output_dir: str, width: int = 0, height: int = 0
) -> tuple[str, str, int, str]:
    """ComfyUI's get_save_image_path: (folder, filename, next counter, subfolder).

    Raises when the prefix would leave the output folder, as ComfyUI does at run time.
    """
    if "%" in prefix:
        prefix = _expand(prefix, width, height)
    subfolder = os.path.dirname(os.path.normpath(prefix))
    filename = os.path.basename(os.path.normpath(prefix))
    folder = os.path.join(output_dir, subfolder)
    if not inside(output_dir, folder):
        raise ValueError(
            "**** ERROR: Saving image outside the output folder is not allowed."
            f"\n full_output_folder: {os.path.abspath(folder)}\n         output_dir: {output_dir}"
        )
    try:
        counters = [
            c for c in (_counter_of(f, filename) for f in os.listdir(folder)) if c is not None
        ]
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        counters = []
    return folder, filename, (max(counters) + 1 if counters else 1), subfolder
