"""The import rules of docs/architecture: layers one way, and Redis keys and
commands only in store/ and queue/. They fail the suite when broken."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "comfy_multi"
STORAGE = ("store", "queue")  # the only packages that may spell a key or talk to Redis

# Commands of redis-py's client that read or write data; a module calling one
# of them on something named like a Redis handle talks to Redis directly.
REDIS_COMMANDS = frozenset(
    [
        "get",
        "set",
        "getdel",
        "delete",
        "exists",
        "expire",
        "hget",
        "hset",
        "hsetnx",
        "hgetall",
        "hmget",
        "hdel",
        "hkeys",
        "hvals",
        "hincrby",
        "hincrbyfloat",
        "hlen",
        "incr",
        "incrby",
        "decr",
        "lpush",
        "rpush",
        "lrange",
        "llen",
        "lrem",
        "ltrim",
        "sadd",
        "srem",
        "smembers",
        "sismember",
        "scard",
        "zadd",
        "zrem",
        "zrange",
        "zrangebyscore",
        "zrevrange",
        "zcard",
        "zscore",
        "zcount",
        "xadd",
        "xread",
        "xrange",
        "xrevrange",
        "xlen",
        "publish",
        "pipeline",
        "scan",
        "scan_iter",
        "keys",
        "mget",
        "mset",
        "evalsha",
        "eval",
    ]
)
REDIS_HANDLES = frozenset({"redis", "raw_redis", "pipe", "pipeline", "client"})


def _modules_outside_storage() -> list[Path]:
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).parts[0] not in STORAGE
    ]


def _handle_name(node: ast.expr) -> str | None:
    """`redis` of `platform.redis.hget(...)` or of `redis.hget(...)`."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def storage_breaches(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = {alias.name for alias in node.names}
            if node.module == "comfy_multi.store.keys" or (
                node.module == "comfy_multi.store" and "keys" in names
            ):
                found.append(f"line {node.lineno}: imports store.keys")
        elif isinstance(node, ast.Import):
            if any(alias.name == "comfy_multi.store.keys" for alias in node.names):
                found.append(f"line {node.lineno}: imports store.keys")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            handle = _handle_name(node.func.value)
            if node.func.attr in REDIS_COMMANDS and handle in REDIS_HANDLES:
                found.append(f"line {node.lineno}: calls Redis {handle}.{node.func.attr}()")
    return found


def test_only_store_and_queue_know_redis_keys_and_commands() -> None:
    breaches = {
        str(path.relative_to(PACKAGE)): found
        for path in _modules_outside_storage()
        if (found := storage_breaches(path))
    }
    assert breaches == {}, "Redis reached outside store/ and queue/; add a queue function"


def test_the_storage_check_sees_a_breach(tmp_path: Path) -> None:
    """The check above would catch the two ways a module reaches Redis."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from comfy_multi.store import keys\n"
        "async def f(platform):\n"
        "    return await platform.redis.hget(keys.CONFIG, 'paused')\n"
    )
    assert len(storage_breaches(sample)) == 2


def test_import_contracts_hold() -> None:
    """The import-linter contracts in pyproject.toml: layers one way, faces
    independent, the worker on base modules only."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
