"""The Lua scripts, each behind a typed method. Callers never see Lua."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from comfy_multi.store import keys


@cache
def _lua(name: str) -> str:
    folder = files("comfy_multi.store.lua")
    common = folder.joinpath("_common.lua").read_text()
    return common + "\n" + folder.joinpath(f"{name}.lua").read_text()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}


class Scripts:
    """Registered once per connection; redis-py runs EVALSHA and reloads on NOSCRIPT."""

    def __init__(self, redis: Redis) -> None:
        def load(name: str) -> AsyncScript:
            return redis.register_script(_lua(name))

        self._enqueue = load("enqueue")
        self._claim = load("claim")
        self._heartbeat = load("heartbeat")
        self._complete = load("complete")
        self._fail = load("fail")
        self._cancel = load("cancel")
        self._reprioritize = load("reprioritize")
        self._sweep = load("sweep")
        self._places = load("places")
        self._relay = load("relay")

    async def _run(self, script: AsyncScript, *args: Any) -> Any:
        return await script(keys=[keys.PREFIX], args=list(args))

    async def enqueue(
        self,
        job_id: str,
        user: str,
        cls: int,
        default_cap: int,
        front: bool,
        fields: dict[str, str],
    ) -> tuple[str, int, int]:
        """(outcome, seq or cap, queued ms)."""
        flat = [x for pair in fields.items() for x in pair]
        kind, value, *rest = await self._run(
            self._enqueue, job_id, user, cls, default_cap, int(front), *flat
        )
        return _text(kind), int(value), int(rest[0]) if rest else 0

    async def claim(self, worker_id: str, lease_ms: int, lookahead: int) -> dict[str, str] | None:
        flat = await self._run(self._claim, worker_id, lease_ms, lookahead)
        return _pairs(flat) if flat else None

    async def heartbeat(self, job_id: str, token: str, lease_ms: int) -> str:
        return _text(await self._run(self._heartbeat, job_id, token, lease_ms))

    async def complete(
        self, job_id: str, token: str, outputs: str, meta: str, history_max: int, ttl_ms: int
    ) -> str:
        return _text(
            await self._run(self._complete, job_id, token, outputs, meta, history_max, ttl_ms)
        )

    async def fail(
        self,
        job_id: str,
        token: str,
        error: str,
        mode: str,
        max_attempts: int,
        history_max: int,
        ttl_ms: int,
    ) -> str:
        return _text(
            await self._run(
                self._fail, job_id, token, error, mode, max_attempts, history_max, ttl_ms
            )
        )

    async def cancel(self, job_id: str, owner: str, history_max: int, ttl_ms: int) -> str:
        return _text(await self._run(self._cancel, job_id, owner, history_max, ttl_ms))

    async def reprioritize(self, job_id: str, cls: int | None, front: bool) -> str:
        cls_arg = "" if cls is None else str(cls)
        return _text(await self._run(self._reprioritize, job_id, cls_arg, int(front)))

    async def sweep(self, max_attempts: int, history_max: int, ttl_ms: int, batch: int) -> int:
        return int(await self._run(self._sweep, max_attempts, history_max, ttl_ms, batch))

    async def relay(self, job_id: str, token: str, messages: str, progress: str) -> str:
        return _text(await self._run(self._relay, job_id, token, messages, progress))

    async def places(self, users: list[str]) -> list[tuple[str, str, int]]:
        """(user, job id, place) of each listed user's pending jobs."""
        if not users:
            return []
        flat = await self._run(self._places, *users)
        return [
            (_text(flat[i]), _text(flat[i + 1]), int(flat[i + 2])) for i in range(0, len(flat), 3)
        ]
