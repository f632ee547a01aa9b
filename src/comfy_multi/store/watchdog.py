"""Keep the embedded Redis alive while `comfy-multi up` runs.

Nothing else would restart it: systemd watches `up`, which lives on when its
Redis is killed (the out-of-memory killer, a stray `kill`). The server comes
back on the same files, replaying its append-only file; gateways and workers
reconnect by themselves.
"""

from __future__ import annotations

import logging
import threading
import time

from comfy_multi.errors import ConfigError
from comfy_multi.store.embedded import EmbeddedRedis

logger = logging.getLogger(__name__)

CHECK_EVERY_S = 0.5
RETRY_PAUSE_S = 2.0


class RedisWatchdog(threading.Thread):
    def __init__(self, embedded: EmbeddedRedis) -> None:
        super().__init__(name="redis-watchdog", daemon=True)
        self.embedded = embedded
        self.restarts = 0
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    def run(self) -> None:
        while not self._stop_event.wait(CHECK_EVERY_S):
            code = self.embedded.exited()
            if code is None:
                continue
            logger.error("the embedded Redis exited (code %s); starting it again", code)
            started = time.monotonic()
            try:
                self.embedded.restart_after_crash()
            except ConfigError as exc:
                logger.error("restarting the embedded Redis failed: %s", exc)
                self._stop_event.wait(RETRY_PAUSE_S)
                continue
            self.restarts += 1
            logger.warning(
                "embedded Redis is back after %.1f s (restart %d)",
                time.monotonic() - started,
                self.restarts,
            )
