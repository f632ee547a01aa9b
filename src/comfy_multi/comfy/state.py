"""The participant side's per-process state, created with the first request
and tied to the platform it was built for (a restarted app gets a fresh one)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends
from starlette.requests import HTTPConnection

from comfy_multi.comfy.userdir import UserDirs
from comfy_multi.services import object_info
from comfy_multi.services.platform import Platform, get_platform

if TYPE_CHECKING:
    from comfy_multi.comfy.hub import Hub


@dataclass(eq=False)
class ComfyState:
    platform: Platform
    dirs: UserDirs
    hub: Hub | None = None

    def input_folder(self, user: str) -> Path:
        return self.platform.files.folder(user, "input")

    async def object_info_for(self, user: str) -> dict[str, Any]:
        merged = await self.platform.workers.merged_object_info()
        return object_info.for_user(merged, self.input_folder(user))

    async def get_hub(self) -> Hub:
        """The process's websocket fan-out, started on first use; the platform
        cancels its task at shutdown."""
        if self.hub is None:
            from comfy_multi.comfy.hub import Hub

            self.hub = Hub(self.platform)
            self.platform.tasks.append(self.hub.start())
        return self.hub


def comfy_state(conn: HTTPConnection) -> ComfyState:
    platform = get_platform(conn)
    state: ComfyState | None = getattr(conn.app.state, "comfy", None)
    if state is None or state.platform is not platform:
        state = ComfyState(platform, UserDirs(platform.settings))
        conn.app.state.comfy = state
    return state


State = Annotated[ComfyState, Depends(comfy_state)]
