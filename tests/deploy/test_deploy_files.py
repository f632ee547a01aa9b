"""The deployment files hold together without a Docker engine: compose files
against the compose specification's schema, Dockerfiles through hadolint,
shipped manifests parse, the Modal file compiles."""

from __future__ import annotations

import json
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from comfy_multi.gpuhost.manifest import Manifest, load_manifest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COMPOSE_FILES = sorted((ROOT / "deploy").glob("*/compose.yaml"))
DOCKERFILES = sorted((ROOT / "deploy").glob("*/Dockerfile"))
MANIFESTS = sorted((ROOT / "workshops").glob("*.toml"))


def test_every_deploy_file_is_covered() -> None:
    assert {p.parent.name for p in COMPOSE_FILES} == {"app", "gpu"}
    assert {p.parent.name for p in DOCKERFILES} == {"app", "gpu"}
    assert len(MANIFESTS) >= 2


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=lambda p: p.parent.name)
def test_compose_file_matches_the_compose_specification(compose: Path) -> None:
    done = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(compose)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_catches_a_broken_compose_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text(
        "services:\n  gateway:\n    image: x\n    restart: sometimes-maybe\n    ports: 8080\n"
    )
    done = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0


def test_app_compose_publishes_only_the_proxy() -> None:
    import yaml

    spec = yaml.safe_load((ROOT / "deploy/app/compose.yaml").read_text())
    published = {name for name, svc in spec["services"].items() if svc.get("ports")}
    assert published == {"caddy"}  # Redis and the gateway stay on the inner network
    redis_cmd = " ".join(spec["services"]["redis"]["command"])
    for flag in ("--appendonly yes", "--requirepass", "--maxmemory-policy noeviction"):
        assert flag in redis_cmd


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    hadolint = BIN / "hadolint"
    if not hadolint.exists():
        hadolint = Path(shutil.which("hadolint") or "hadolint")
    done = subprocess.run(
        [
            str(hadolint),
            "--config",
            str(ROOT / "deploy" / "hadolint.yaml"),
            "--format",
            "json",
            str(dockerfile),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings = json.loads(done.stdout or "[]")
    assert findings == [], findings


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_shipped_manifest_parses_and_names_real_files(manifest: Path) -> None:
    spec = load_manifest(manifest)
    assert isinstance(spec, Manifest)
    assert spec.models, "a workshop manifest names its models"
    for node in spec.custom_nodes:
        assert node.rev is None or len(node.rev) == 40, f"{node.folder}: pin a full commit"
    for model in spec.models:
        if model.sha256 is not None:
            assert model.size, f"{model.target}: a verified file states its size too"
    for workflow in spec.workflows:
        assert (manifest.parent / workflow).is_file(), f"{manifest.name} names {workflow}"


def test_modal_worker_compiles(tmp_path: Path) -> None:
    py_compile.compile(
        str(ROOT / "deploy/modal_worker.py"), cfile=str(tmp_path / "m.pyc"), doraise=True
    )


def test_gpu_entrypoint_is_valid_bash() -> None:
    done = subprocess.run(
        ["bash", "-n", str(ROOT / "deploy/gpu/entrypoint.sh")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
