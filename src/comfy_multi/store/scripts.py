"""The Lua scripts, each behind a typed method. Callers never see Lua.

Each script is sent as one text: a preamble generated here (the key table
`K` from `keys.TEMPLATES`, the number of priority classes), `_common.lua`
(the claim rule and the helpers every script shares), `_walk.lua` for the
scripts that walk the claim rule without claiming, then the script itself.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from comfy_multi.store import keys

WALKERS = {"order", "places"}  # scripts that need _walk.lua
_SPELLING = re.compile(r"^[a-z0-9_:]*$")


def _lua_builder(name: str, template: str) -> str:
    """`K.name = ...`: a key, or a function of the template's `{}` parts."""
    parts = template.split("{}")
    if not all(_SPELLING.match(p) for p in parts):
        raise ValueError(f"key template {template!r} has characters the Lua preamble can't hold")
    if len(parts) == 1:
        return f"K.{name} = P .. '{template}'"
    args = [f"a{i}" for i in range(len(parts) - 1)]
    pieces = ["P"]
    for i, part in enumerate(parts):
        if part:
            pieces.append(f"'{part}'")
        if i < len(args):
            pieces.append(args[i])
    return f"K.{name} = function({', '.join(args)}) return {' .. '.join(pieces)} end"


def preamble(classes: int) -> str:
    lines = ["local P = KEYS[1]", f"local NCLASSES = {int(classes)}", "local K = {}"]
    lines += [_lua_builder(name, template) for name, template in keys.TEMPLATES.items()]
    return "\n".join(lines) + "\n"


@cache
def _lua(name: str, classes: int) -> str:
    folder = files("comfy_multi.store.lua")
    parts = ["_common"] + (["_walk"] if name in WALKERS else []) + [name]
    return preamble(classes) + "\n".join(folder.joinpath(f"{p}.lua").read_text() for p in parts)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}


class Scripts:
    """Registered once per connection; redis-py runs EVALSHA and reloads on NOSCRIPT."""

    def __init__(self, redis: Redis, classes: int) -> None:
        def load(name: str) -> AsyncScript:
            return redis.register_script(_lua(name, classes))

        self._enqueue = load("enqueue")
        self._claim = load("claim")
        self._heartbeat = load("heartbeat")
        self._complete = load("complete")
        self._fail = load("fail")
        self._cancel = load("cancel")
        self._reprioritize = load("reprioritize")
        self._sweep = load("sweep")
        self._order = load("order")
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

    async def claim(
        self, worker_id: str, lease_ms: int, lookahead: int, token: str
    ) -> dict[str, str] | None:
        flat = await self._run(self._claim, worker_id, lease_ms, lookahead, token)
        return _pairs(flat) if flat else None

    async def heartbeat(self, job_id: str, token: str, worker_id: str, lease_ms: int) -> str:
        return _text(await self._run(self._heartbeat, job_id, token, worker_id, lease_ms))

    async def complete(
        self,
        job_id: str,
        token: str,
        worker_id: str,
        outputs: str,
        meta: str,
        history_max: int,
        ttl_ms: int,
        run_weight: float,
    ) -> str:
        return _text(
            await self._run(
                self._complete,
                job_id,
                token,
                worker_id,
                outputs,
                meta,
                history_max,
                ttl_ms,
                run_weight,
            )
        )

    async def fail(
        self,
        job_id: str,
        token: str,
        worker_id: str,
        error: str,
        mode: str,
        max_attempts: int,
        history_max: int,
        ttl_ms: int,
    ) -> str:
        return _text(
            await self._run(
                self._fail,
                job_id,
                token,
                worker_id,
                error,
                mode,
                max_attempts,
                history_max,
                ttl_ms,
            )
        )

    async def cancel(self, job_id: str, owner: str, history_max: int, ttl_ms: int) -> str:
        return _text(await self._run(self._cancel, job_id, owner, history_max, ttl_ms))

    async def reprioritize(self, job_id: str, cls: int | None, front: bool) -> str:
        cls_arg = "" if cls is None else str(cls)
        return _text(await self._run(self._reprioritize, job_id, cls_arg, int(front)))

    async def sweep(self, max_attempts: int, history_max: int, ttl_ms: int, batch: int) -> int:
        return int(await self._run(self._sweep, max_attempts, history_max, ttl_ms, batch))

    async def relay(
        self, job_id: str, token: str, worker_id: str, messages: str, progress: str
    ) -> str:
        return _text(await self._run(self._relay, job_id, token, worker_id, messages, progress))

    async def order(self, worker_id: str, limit: int, lookahead: int) -> list[str]:
        """The first `limit` job ids the claim rule would hand out to this worker
        ("" for one that runs everything), next first."""
        return [_text(x) for x in await self._run(self._order, worker_id, limit, lookahead)]

    async def places(self, users: list[str]) -> list[tuple[str, str, int]]:
        """(user, job id, place) of each listed user's pending jobs."""
        if not users:
            return []
        flat = await self._run(self._places, *users)
        return [
            (_text(flat[i]), _text(flat[i + 1]), int(flat[i + 2])) for i in range(0, len(flat), 3)
        ]
