"""The users' folder on a full disk (a tmpfs of a few MB the test mounts):
an upload or a worker's output that does not fit is refused with a clear
507, earlier files stay intact, the queue stays consistent, and the room
works again once space returns."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from comfy_multi.settings import Settings
from tests.conftest import Gateway, Person, ServerThread
from tests.fuzz.worker import register_worker

pytestmark = pytest.mark.slow

SIZE_MB = 8
PROMPT = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 8}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}},
}


@pytest.fixture
def small_disk(settings) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    users = settings.data_dir / "users"
    users.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(users)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"mount refused: {done.stderr.strip()}")
    try:
        yield users
    finally:
        subprocess.run(["umount", "-l", str(users)], check=False)


def fill(path: Path) -> None:
    """Write until the filesystem says it is full."""
    with path.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise


def upload(http: httpx.Client, name: str, filename: str, body: bytes) -> httpx.Response:
    return http.post(
        f"/u/{name}/api/upload/image",
        files={"image": (filename, body, "image/png")},
        data={"overwrite": "true"},
    )


def png_of(size_bytes: int, seed: int) -> bytes:
    """A valid PNG padded with a private chunk to about `size_bytes`."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    pixels = chunk(b"IDAT", zlib.compress(bytes([0, seed % 256, 0, 0])))
    pad = chunk(b"prVt", os.urandom(max(0, size_bytes - 100)))
    return b"\x89PNG\r\n\x1a\n" + header + pad + pixels + chunk(b"IEND", b"")


def test_full_disk_refuses_clearly_keeps_earlier_files_and_recovers(
    small_disk: Path,
    settings: Settings,
    people: dict[str, Person],
    worker_token: str,
) -> None:
    server = ServerThread(settings).start()
    gateway = Gateway(server.url, settings, server)
    try:
        register_worker(gateway, worker_token)
        alice = people["alice"]
        with httpx.Client(base_url=gateway.url, auth=alice.auth, timeout=30) as http:
            first = png_of(1_000_000, 1)
            assert upload(http, "alice", "first.png", first).status_code == 200
            digest = hashlib.sha256(first).hexdigest()
            # fill the disk behind the gateway's back
            filler = small_disk / "filler.bin"
            fill(filler)
            answer = upload(http, "alice", "second.png", png_of(2_000_000, 2))
            assert answer.status_code == 507, answer.text
            assert "space" in answer.json()["message"].lower()
            assert "Traceback" not in answer.text
            assert str(small_disk) not in answer.text
            # the earlier file is intact, and no half-written one is left
            view = http.get("/u/alice/api/view", params={"filename": "first.png", "type": "input"})
            assert hashlib.sha256(view.content).hexdigest() == digest
            assert not [p.name for p in small_disk.rglob("second*")]
            # a worker's output that does not fit: 507 too, and the job stays its own
            job_id = http.post("/u/alice/api/prompt", json={"prompt": PROMPT}).json()["prompt_id"]
            with httpx.Client(
                base_url=gateway.url,
                headers={"Authorization": f"Bearer {worker_token}"},
                timeout=30,
            ) as worker:
                claim = worker.post(
                    "/worker/v1/claim", json={"worker_id": "fuzz-gpu", "wait_seconds": 5}
                ).json()
                assert claim["job_id"] == job_id
                lease = {"X-Lease-Token": claim["lease_token"], "X-Worker-Id": "fuzz-gpu"}
                output = png_of(2_000_000, 3)
                put = f"/worker/v1/jobs/{job_id}/outputs"
                where = {"filename": "out_00001_.png", "subfolder": "", "type": "output"}
                refused = worker.put(put, params=where, content=output, headers=lease)
                assert refused.status_code == 507, refused.text
                assert "space" in refused.json()["message"]
                assert not [p.name for p in small_disk.rglob("out_*")], "a partial output is left"
                state = http.get(f"/api/v1/jobs/{job_id}").json()["state"]
                assert state == "running", state  # still leased to the worker, nothing half-done
                # space returns: the same job's output is stored and the job completes
                filler.unlink()
                stored = worker.put(put, params=where, content=output, headers=lease)
                assert stored.status_code == 200, stored.text
                done = worker.post(
                    f"/worker/v1/jobs/{job_id}/complete",
                    json={"outputs": {"2": {"images": [stored.json()]}}},
                    headers=lease,
                )
                assert done.status_code == 204, done.text
            assert http.get(f"/api/v1/jobs/{job_id}").json()["state"] == "done"
            assert job_id in http.get("/u/alice/api/history").json()
            again = upload(http, "alice", "second.png", png_of(2_000_000, 2))
            assert again.status_code == 200, again.text
            view = http.get("/u/alice/api/view", params={"filename": "first.png", "type": "input"})
            assert hashlib.sha256(view.content).hexdigest() == digest
    finally:
        server.stop()
