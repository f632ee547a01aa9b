"""The services one gateway process holds, built at start and closed at stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import HTTPConnection

from comfy_multi.datadir import make_private
from comfy_multi.queue.events import EventBus
from comfy_multi.queue.extensions import ExtensionRegistry
from comfy_multi.queue.jobs import JobQueue
from comfy_multi.queue.retention import drop_ended_prompts
from comfy_multi.queue.views import QueueViews
from comfy_multi.queue.workers import WorkerRegistry
from comfy_multi.services.extensions import ExtensionFiles
from comfy_multi.services.files import UserFiles
from comfy_multi.services.users import (
    FAST_HASHING_FOR_TESTS,
    PasswordChecks,
    UserStore,
    password_hasher,
)
from comfy_multi.settings import Settings
from comfy_multi.store.connection import connect, redis_url

logger = logging.getLogger(__name__)

TASK_STOP_GRACE_S = 3.0


def no_pages() -> dict[str, int]:
    return {}


@dataclass
class Platform:
    settings: Settings
    redis: Redis
    raw_redis: Redis
    queue: JobQueue
    views: QueueViews
    bus: EventBus
    users: UserStore
    workers: WorkerRegistry
    files: UserFiles
    extensions: ExtensionRegistry
    extension_files: ExtensionFiles
    secret_key: str
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    # Participants' open ComfyUI pages per user on this process: the participant
    # face installs its count when its websocket hub starts, the admin face reads it.
    open_pages: Callable[[], dict[str, int]] = no_pages

    async def close(self) -> None:
        self.stopping.set()
        await stop_tasks(self.tasks)
        await self.bus.stop()
        await self.redis.aclose()
        await self.raw_redis.aclose()


def secret_key(settings: Settings) -> str:
    """The cookie-signing key: from settings, else kept in the data dir."""
    if settings.secret_key:
        return settings.secret_key
    path: Path = settings.data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(key)
    return key


async def open_platform(settings: Settings, *, sweep: bool = True) -> Platform:
    make_private(settings.data_dir)
    if settings.password_hashing == FAST_HASHING_FOR_TESTS:
        logger.warning("password hashing is %s: new passwords are NOT safe", FAST_HASHING_FOR_TESTS)
    url = redis_url(settings)
    redis = connect(url)
    raw = connect(url, decode=False)
    queue = JobQueue(redis, settings)
    bus = EventBus(redis, raw)
    await bus.start()
    platform = Platform(
        settings=settings,
        redis=redis,
        raw_redis=raw,
        queue=queue,
        views=QueueViews(queue),
        bus=bus,
        users=UserStore(
            redis,
            PasswordChecks(settings.password_checks_at_once, settings.password_checks_waiting),
            password_hasher(settings.password_hashing),
        ),
        workers=WorkerRegistry(redis, settings),
        files=UserFiles(settings.users_dir),
        extensions=ExtensionRegistry(redis),
        extension_files=ExtensionFiles(settings.data_dir / "extensions"),
        secret_key=secret_key(settings),
    )
    if sweep:
        platform.tasks.append(asyncio.create_task(_sweeper(platform), name="lease-sweeper"))
    return platform


async def stop_tasks(tasks: list[asyncio.Task[None]], grace_s: float = TASK_STOP_GRACE_S) -> None:
    """Cancel background tasks and wait for them, never forever: a cancel lost
    inside a Redis call is caught by the loop's own `stopping` check."""
    for task in tasks:
        task.cancel()
    if tasks:
        _, stuck = await asyncio.wait(tasks, timeout=grace_s)
        for task in stuck:
            logger.warning("background task %s did not stop", task.get_name())


async def _sweeper(platform: Platform) -> None:
    """Requeue jobs whose lease ran out, whatever the traffic, and drop the
    prompts of jobs that ended long enough ago. Any replica may run it: the
    sweep is one atomic script, and dropping a prompt twice changes nothing."""
    while not platform.stopping.is_set():
        try:
            await platform.queue.sweep()
            await drop_ended_prompts(platform.redis, platform.settings)
        except RedisError as exc:
            logger.warning("lease sweep failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(platform.stopping.wait(), platform.settings.sweep_seconds)


def get_platform(conn: HTTPConnection) -> Platform:
    platform: Platform = conn.app.state.platform
    return platform
