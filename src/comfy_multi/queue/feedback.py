"""The room's feedback at the end of a workshop: the instructor asks, every
participant's page shows a short form (a rating and an optional comment), one
answer per person (a second one replaces the first), and the report lists them.
Kept in Redis, so it lives with the other Redis reads in queue/.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson
from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis

from comfy_multi.errors import Conflict
from comfy_multi.store import keys

RATINGS = range(1, 6)  # 1 poor … 5 excellent
COMMENT_CHARS = 1000


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: int = Field(ge=RATINGS.start, le=RATINGS.stop - 1, description="1 (poor) to 5")
    comment: str = Field(default="", max_length=COMMENT_CHARS)


@dataclass(frozen=True)
class Given:
    user: str
    rating: int
    comment: str
    at_ms: int


@dataclass(frozen=True)
class Summary:
    open: bool
    answers: int
    average: float | None


class FeedbackBox:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def ask(self, open_: bool) -> None:
        """Show the form on every page (or stop showing it); answers stay."""
        await self.redis.hset(keys.CONFIG, keys.FEEDBACK_OPEN, "1" if open_ else "0")

    async def is_open(self) -> bool:
        return await self.redis.hget(keys.CONFIG, keys.FEEDBACK_OPEN) == "1"

    async def give(self, user: str, answer: Answer) -> Given:
        if not await self.is_open():
            raise Conflict("the instructor is not asking for feedback right now")
        given = Given(user, answer.rating, answer.comment.strip(), int(time.time() * 1000))
        body = {"rating": given.rating, "comment": given.comment, "at_ms": given.at_ms}
        await self.redis.hset(keys.FEEDBACK, user, orjson.dumps(body))
        return given

    async def answered(self, user: str) -> bool:
        return bool(await self.redis.hexists(keys.FEEDBACK, user))

    async def list(self) -> list[Given]:
        """Every answer, by person."""
        raw = await self.redis.hgetall(keys.FEEDBACK)
        out = []
        for user, body in sorted(raw.items()):
            data = orjson.loads(body)
            out.append(Given(str(user), int(data["rating"]), str(data["comment"]), data["at_ms"]))
        return out

    async def summary(self) -> Summary:
        answers = await self.list()
        average = sum(a.rating for a in answers) / len(answers) if answers else None
        return Summary(await self.is_open(), len(answers), average)
