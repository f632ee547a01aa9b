"""`comfy-multi models sync` as an operator runs it, against a local HTTPS server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.gpuhost.model_server import ModelServer

BIG = bytes(range(256)) * 4096 * 3  # 3 MiB: several chunks


def sync(
    server: ModelServer, manifest: Path, models: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SSL_CERT_FILE": str(server.ca_file),
        "HF_ENDPOINT": server.url,
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "COLUMNS": "200",
    }
    env.pop("HF_TOKEN", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "comfy_multi",
            "models",
            "sync",
            "--manifest",
            str(manifest),
            "--models-dir",
            str(models),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def write_manifest(path: Path, models: list[dict[str, object]]) -> Path:
    lines = ['[comfyui]\nversion = "v0.3.64"\n']
    for m in models:
        lines.append("[[models]]")
        lines += [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in m.items()]
        lines.append("")
    path.write_text("\n".join(lines).replace("'", '"'))
    return path


def test_downloads_resumes_and_refuses_a_bad_checksum(
    model_server: ModelServer, tmp_path: Path
) -> None:
    plain = b"checkpoint" * 1000
    plain_sha = model_server.add("ckpt.safetensors", plain)
    hf_sha = model_server.add("split/te.safetensors", BIG)
    flaky_sha = model_server.add("lora.safetensors", BIG[::-1])
    model_server.flaky.add("lora.safetensors")
    model_server.add("bad.safetensors", b"not what the manifest says")
    manifest = write_manifest(
        tmp_path / "m.toml",
        [
            {
                "url": f"{model_server.url}/ckpt.safetensors",
                "file": "ckpt.safetensors",
                "folder": "checkpoints",
                "sha256": plain_sha,
                "size": len(plain),
            },
            {
                "hf": "org/repo",
                "file": "split/te.safetensors",
                "folder": "text_encoders",
                "sha256": hf_sha,
                "size": len(BIG),
            },
            {
                "url": f"{model_server.url}/lora.safetensors",
                "file": "lora.safetensors",
                "folder": "loras",
                "sha256": flaky_sha,
                "size": len(BIG),
            },
            {
                "url": f"{model_server.url}/bad.safetensors",
                "file": "bad.safetensors",
                "folder": "vae",
                "sha256": "0" * 64,
            },
        ],
    )
    models = tmp_path / "models"

    first = sync(model_server, manifest, models)
    assert first.returncode == 1, first.stdout + first.stderr
    assert (models / "checkpoints/ckpt.safetensors").read_bytes() == plain
    assert (models / "text_encoders/te.safetensors").read_bytes() == BIG  # via HF_ENDPOINT
    assert not (models / "loras/lora.safetensors").exists()  # broke off halfway
    half = models / "loras/.lora.safetensors.part"
    kept = half.stat().st_size
    assert 0 < kept < len(BIG)
    assert not (models / "vae/bad.safetensors").exists()  # never under its final name
    assert not (models / "vae/.bad.safetensors.part").exists()
    assert "vae/bad.safetensors" in first.stderr
    assert "Traceback" not in first.stderr

    second = sync(model_server, manifest, models)
    assert second.returncode == 1  # the bad file is still bad
    assert (models / "loras/lora.safetensors").read_bytes() == BIG[::-1]
    assert model_server.ranges_for("lora.safetensors")[-1] == f"bytes={kept}-"  # resumed
    # verified files are not fetched again
    assert len(model_server.ranges_for("ckpt.safetensors")) == 1
    assert "loras/lora.safetensors" in second.stdout


def test_check_only_verifies(model_server: ModelServer, tmp_path: Path) -> None:
    sha = model_server.add("a.safetensors", BIG)
    manifest = write_manifest(
        tmp_path / "m.toml",
        [
            {
                "url": f"{model_server.url}/a.safetensors",
                "file": "a.safetensors",
                "folder": "checkpoints",
                "sha256": sha,
                "size": len(BIG),
            },
        ],
    )
    models = tmp_path / "models"
    missing = sync(model_server, manifest, models, "--check")
    assert missing.returncode == 1
    assert "missing" in missing.stdout
    assert model_server.log == []  # --check downloads nothing

    assert sync(model_server, manifest, models).returncode == 0
    good = sync(model_server, manifest, models, "--check")
    assert good.returncode == 0, good.stdout
    # a file damaged in place is caught by --check and replaced by sync
    target = models / "checkpoints/a.safetensors"
    damaged = bytearray(target.read_bytes())
    damaged[100] ^= 0xFF
    target.write_bytes(bytes(damaged))
    assert sync(model_server, manifest, models, "--check").returncode == 1
    assert sync(model_server, manifest, models).returncode == 0
    assert target.read_bytes() == BIG


def test_a_bad_manifest_is_one_clear_line(tmp_path: Path, model_server: ModelServer) -> None:
    manifest = tmp_path / "m.toml"
    manifest.write_text('[comfyui]\nversion = "v1"\n[[models]]\nfile = "../x"\nfolder = "a"\n')
    result = sync(model_server, manifest, tmp_path / "models")
    assert result.returncode == 2
    assert "unsafe part '..'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_model_without_a_checksum_is_fetched_and_reported_unverified(
    model_server: ModelServer, tmp_path: Path
) -> None:
    digest = model_server.add("new.safetensors", BIG)
    manifest = write_manifest(
        tmp_path / "m.toml",
        [
            {
                "url": f"{model_server.url}/new.safetensors",
                "file": "new.safetensors",
                "folder": "loras",
                "size": len(BIG),
            },
        ],
    )
    models = tmp_path / "models"
    first = sync(model_server, manifest, models)
    assert first.returncode == 0, first.stderr
    assert "unverified" in first.stdout
    assert digest in first.stdout.replace("\n", "")  # the checksum to pin in the manifest
    assert (models / "loras/new.safetensors").read_bytes() == BIG
    again = sync(model_server, manifest, models)
    assert again.returncode == 0
    assert "unverified" in again.stdout
    assert len(model_server.log) == 1  # not downloaded twice
