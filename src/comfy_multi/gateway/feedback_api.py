"""`/api/v1/feedback`: the instructor asks the room, each person answers once."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from comfy_multi.queue.feedback import Answer, FeedbackBox
from comfy_multi.services.auth import AdminUser, CurrentUser, PlatformDep

router = APIRouter(prefix="/api/v1", tags=["feedback"])


class Asking(BaseModel):
    model_config = ConfigDict(extra="forbid")

    open: bool


@router.put("/feedback/request")
async def ask_for_feedback(body: Asking, _: AdminUser, platform: PlatformDep) -> dict[str, Any]:
    """Show the feedback form on every participant's page (open: false hides it)."""
    box = FeedbackBox(platform.redis)
    await box.ask(body.open)
    await platform.bus.publish({"event": "feedback", "open": body.open})
    return asdict(await box.summary())


@router.post("/feedback")
async def give_feedback(body: Answer, user: CurrentUser, platform: PlatformDep) -> dict[str, Any]:
    """The signed-in person's answer; a second one replaces the first."""
    given = await FeedbackBox(platform.redis).give(user.name, body)
    await platform.bus.publish({"event": "feedback", "answered": user.name})
    return asdict(given)


@router.get("/feedback")
async def list_feedback(_: AdminUser, platform: PlatformDep) -> dict[str, Any]:
    box = FeedbackBox(platform.redis)
    return {
        **asdict(await box.summary()),
        "answers": [asdict(a) for a in await box.list()],
    }
