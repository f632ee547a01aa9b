"""`comfy-multi user add --from-csv` and `comfy-multi report`, run as the instructor would."""

from __future__ import annotations

import asyncio
import os
import sys
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from comfy_multi.admin.roster import read_class_list
from comfy_multi.errors import Unauthorized
from comfy_multi.services.users import UserStore
from tests.admin.helpers import ScriptedWorker, submit
from tests.conftest import FAST_HASHING_ENV, TEST_HASHER, Gateway

Clients = dict[str, httpx.AsyncClient]
StartWorker = Callable[[str], Awaitable[ScriptedWorker]]
CLI_TIMEOUT_S = 60


async def cli(redis_url: str, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMFY_MULTI_")}
    env.update(REDIS_URL=redis_url, COLUMNS="200", NO_COLOR="1", **FAST_HASHING_ENV)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "comfy_multi",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=CLI_TIMEOUT_S)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


CLASS_LIST = """name,password
# the morning group
Ada,ada-secret
grace

linus , linus-pw
Not A Name
"""


def test_class_list_parsing(tmp_path: Path) -> None:
    path = tmp_path / "class.csv"
    path.write_text(CLASS_LIST)
    assert read_class_list(path) == [
        ("ada", "ada-secret"),
        ("grace", None),
        ("linus", "linus-pw"),
        ("not a name", None),
    ]


async def test_user_add_from_csv(tmp_path: Path, redis_url: str, aredis: Any) -> None:
    await UserStore(aredis).add("teacher", "teacher-pw", admin=True)  # the room exists
    path = tmp_path / "class.csv"
    path.write_text(CLASS_LIST)
    code, out = await cli(redis_url, "user", "add", "--from-csv", str(path))
    assert code == 1, out  # one row was refused, and the instructor is told
    assert "ada-secret" in out
    assert "/u/grace/" in out
    assert "not added" in out
    assert "1 of 4 names was not added" in out
    store = UserStore(aredis, hasher=TEST_HASHER)
    assert (await store.verify_password("ada", "ada-secret")).name == "ada"
    assert (await store.verify_password("linus", "linus-pw")).name == "linus"
    grace_line = next(line for line in out.splitlines() if "grace" in line)
    generated = grace_line.split("│")[2].strip()
    assert (await store.verify_password("grace", generated)).name == "grace"
    with pytest.raises(Unauthorized):
        await store.verify_password("not a name", "x")


async def test_user_add_needs_a_name_or_a_file(redis_url: str) -> None:
    code, out = await cli(redis_url, "user", "add")
    assert code == 1
    assert "give a NAME" in out


async def test_tokens_listed_and_revoked_and_removal_says_what_went(
    tmp_path: Path, redis_url: str, aredis: Any
) -> None:
    store = UserStore(aredis)
    await store.add("alice", "alice-pw")
    token, info = await store.create_api_token("alice", label="notebook")
    code, out = await cli(redis_url, "user", "tokens", "alice")
    assert code == 0, out
    assert info.id in out
    assert "notebook" in out
    code, out = await cli(redis_url, "user", "revoke-token", "alice", info.id)
    assert code == 0, out
    with pytest.raises(Unauthorized):
        await store.user_for_api_token(token)

    data = tmp_path / "data"
    (data / "users" / "alice" / "userdata").mkdir(parents=True)
    (data / "users" / "alice" / "userdata" / "notes.txt").write_text("mine")
    code, out = await cli(
        redis_url, "user", "remove", "alice", "--archive", "--data-dir", str(data)
    )
    assert code == 0, out
    assert "removed alice" in out
    assert "archived to archive/alice-" in out
    kept = list((data / "archive").glob("alice-*/userdata/notes.txt"))
    assert [p.read_text() for p in kept] == ["mine"]
    assert not (data / "users" / "alice").exists()


async def test_report_after_a_session(
    gateway: Gateway,
    clients: Clients,
    workers: StartWorker,
    redis_url: str,
    tmp_path: Path,
) -> None:
    worker = await workers("gpu-a")
    for name in ("alice", "bob", "alice"):
        await submit(clients[name])
    first = await worker.claim()
    assert first is not None
    stored = await worker.upload(first, "portrait_00001_.png", b"\x89PNG alice's work")
    await worker.complete(first)
    second = await worker.claim()
    assert second is not None
    await worker.fail(second, "CUDA out of memory")
    out_dir = tmp_path / "handout"

    code, out = await cli(
        redis_url, "report", "--out", str(out_dir), "--data-dir", str(gateway.settings.data_dir)
    )

    assert code == 0, out
    assert "3 jobs" in out
    assert "SaveImage: CUDA out of memory" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "alice" in lines
    assert "bob" in lines
    with zipfile.ZipFile(out_dir / "alice.zip") as zf:
        assert zf.read(f"alice/{stored}") == b"\x89PNG alice's work"
    assert not (out_dir / "bob.zip").exists()
    assert (out_dir / "people.csv").is_file()
    assert (out_dir / "jobs.csv").read_text().count("\n") == 4  # header and three jobs
