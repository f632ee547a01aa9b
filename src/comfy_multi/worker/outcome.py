"""How one job ended, as far as the worker is concerned."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Succeeded:
    outputs: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Failed:
    """``error`` is ComfyUI's own payload, or ``{type, message}`` for the worker's reasons."""

    error: dict[str, Any]
    requeue: bool = False


@dataclass(frozen=True)
class Cancelled:
    """The gateway said the job was cancelled."""


@dataclass(frozen=True)
class Released:
    """The worker is shutting down and gives the job back unrun."""


@dataclass(frozen=True)
class Dropped:
    """The lease was lost; nothing more may be reported."""

    why: str


Outcome = Succeeded | Failed | Cancelled | Released | Dropped


def reason(kind: str, message: str) -> dict[str, Any]:
    """An error payload for the worker's own reasons (not ComfyUI's)."""
    return {"type": kind, "message": message}
