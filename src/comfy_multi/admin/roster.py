"""A class list from a CSV file (`name[,password]` per line) into users."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from comfy_multi.errors import RequestError
from comfy_multi.services.users import UserStore


@dataclass
class Added:
    name: str
    password: str | None  # None when the row could not be added
    problem: str | None = None


def read_class_list(path: Path) -> list[tuple[str, str | None]]:
    """(name, password or None) per row. Blank lines, `#` comments and a
    header row starting with "name" are skipped; names are lowercased, as the
    workspace URL /u/<name>/ is."""
    rows: list[tuple[str, str | None]] = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for i, row in enumerate(csv.reader(fh)):
            cells = [c.strip() for c in row]
            if not cells or not cells[0] or cells[0].startswith("#"):
                continue
            if i == 0 and cells[0].lower() == "name":
                continue
            password = cells[1] if len(cells) > 1 and cells[1] else None
            rows.append((cells[0].lower(), password))
    return rows


async def add_class_list(
    store: UserStore, rows: list[tuple[str, str | None]], *, admin: bool = False
) -> list[Added]:
    """Add every row that can be added; the others say why not."""
    out = []
    for name, password in rows:
        try:
            out.append(Added(name, await store.add(name, password, admin=admin)))
        except RequestError as exc:
            out.append(Added(name, None, exc.message))
    return out
