"""`comfy-multi backup` and `restore` as an operator uses them: a live room
copied, then brought back in a fresh data dir with its people, jobs and files."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.comfy.procs import clean_env, start_standin, start_worker
from tests.conftest import free_port
from tests.worker.prompts import empty_saved, png_bytes


def cli(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "comfy_multi", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=clean_env(COLUMNS="200", **env),
    )


@contextmanager
def room(data: Path, **env: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "comfy_multi", "up", "--data-dir", str(data), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=clean_env(**env),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code in (200, 503):
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, "up exited"
        assert time.monotonic() < deadline, "up did not start"
        time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_backup_of_a_live_room_restores_everything(tmp_path: Path) -> None:
    old, new, archive = tmp_path / "old", tmp_path / "new", tmp_path / "room.tar.gz"
    picture = png_bytes((20, 10), (1, 2, 3))
    with room(old) as url:
        assert (
            cli("user", "add", "alice", "--password", "alice-pw", "--data-dir", str(old)).returncode
            == 0
        )
        alice = ("alice", "alice-pw")
        up = httpx.post(
            f"{url}/u/alice/api/upload/image",
            auth=alice,
            files={"image": ("mine.png", picture, "image/png")},
        )
        assert up.status_code == 200, up.text
        saved = httpx.post(
            f"{url}/u/alice/api/userdata/workflows%2Fmine.json",
            auth=alice,
            content=b'{"nodes": []}',
        )
        assert saved.status_code == 200, saved.text
        # a worker registers its nodes, the queue is paused: the job stays waiting
        token = cli("worker-token", "create", "gpu-1", "--data-dir", str(old)).stdout
        token = next(w for w in token.split() if w.startswith("cmw_"))
        admin = ("admin", (old / "initial-admin-password").read_text().strip())
        assert httpx.post(f"{url}/api/v1/queue/pause", auth=admin).status_code == 200
        standin = start_standin(tmp_path / "standin", tmp_path / "standin.log")
        worker = start_worker(url, token, standin.url, tmp_path / "worker.log")
        try:
            deadline = time.monotonic() + 30
            while not any(
                w["online"] for w in httpx.get(f"{url}/api/v1/workers", auth=admin).json()
            ):
                assert time.monotonic() < deadline, worker.output()
                time.sleep(0.1)
            job = httpx.post(
                f"{url}/u/alice/api/prompt", auth=alice, json={"prompt": empty_saved(prefix="kept")}
            )
            assert job.status_code == 200, job.text
            job_id = job.json()["prompt_id"]
        finally:
            worker.stop()
            standin.stop()

        made = cli("backup", "--out", str(archive), "--data-dir", str(old))
        assert made.returncode == 0, made.stderr
        assert str(old.resolve()) in made.stdout.splitlines()[0]  # names the room
        assert archive.stat().st_mode & 0o077 == 0  # hashes and secrets inside: private

        refused = cli("restore", str(archive), "--data-dir", str(old))
        assert refused.returncode == 1
        assert "is running" in refused.stderr

    restored = cli("restore", str(archive), "--data-dir", str(new))
    assert restored.returncode == 0, restored.stderr
    again = cli("restore", str(archive), "--data-dir", str(new))
    assert again.returncode == 1
    assert "--force" in again.stderr
    assert "Traceback" not in again.stderr

    with room(new) as url:
        alice = ("alice", "alice-pw")
        me = httpx.get(f"{url}/api/v1/me", auth=alice)
        assert me.json()["name"] == "alice"  # same person, same password
        view = httpx.get(
            f"{url}/u/alice/api/view", auth=alice, params={"filename": "mine.png", "type": "input"}
        )
        assert view.content == picture
        workflow = httpx.get(f"{url}/u/alice/api/userdata/workflows%2Fmine.json", auth=alice)
        assert workflow.json() == {"nodes": []}
        back = httpx.get(f"{url}/api/v1/jobs/{job_id}", auth=alice).json()
        assert back["state"] == "pending"
        assert back["prompt"]["1"]["class_type"] == "EmptyImage"


def test_backup_refuses_where_there_is_no_room(tmp_path: Path) -> None:
    result = cli(
        "backup", "--out", str(tmp_path / "x.tar.gz"), "--data-dir", str(tmp_path / "nothing")
    )
    assert result.returncode == 1
    assert "no room" in result.stderr
    assert not (tmp_path / "nothing").exists()  # nothing created


def test_restore_refuses_what_is_not_a_backup(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(b"not an archive")
    result = cli("restore", str(bogus), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 1
    assert "cannot read" in result.stderr


def test_backup_finds_the_running_room_from_any_directory(tmp_path: Path) -> None:
    """Typed in another directory without --data-dir, backup takes the one room
    that is running, as every other command does, and names it."""
    data, elsewhere, archive = tmp_path / "room", tmp_path / "home", tmp_path / "b.tar.gz"
    elsewhere.mkdir()
    rooms = {"COMFY_MULTI_ROOMS_DIR": str(tmp_path / "rooms")}
    with room(data, **rooms):
        made = cli("backup", "--out", str(archive), cwd=elsewhere, **rooms)
        assert made.returncode == 0, made.stderr
        assert str(data.resolve()) in made.stdout.splitlines()[0]
        assert "the only one running" in made.stdout
    assert archive.stat().st_size > 0
    assert not (elsewhere / "data").exists()  # no room made where it was typed
