"""Custom nodes from the Comfy registry, installed from a local HTTPS registry
that answers as api.comfy.org does: the version's download URL, then its zip."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from comfy_multi.errors import ConfigError
from comfy_multi.gpuhost.manifest import CustomNode, Manifest
from comfy_multi.gpuhost.setup import install_custom_nodes
from tests.gpuhost.model_server import ModelServer


def node_zip(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return out.getvalue()


def publish(server: ModelServer, node: str, version: str, archive: bytes) -> None:
    """The registry's two answers: /nodes/<id>/install names the zip, which it serves."""
    zip_name = f"archives/{node}-{version}.zip"
    server.add(zip_name, archive)
    download = {"downloadUrl": f"{server.url}/{zip_name}", "version": version}
    server.add(f"nodes/{node}/install", json.dumps(download).encode())


def manifest_with(node: str, version: str) -> Manifest:
    text = (
        '[comfyui]\nversion = "v0.3.64"\n\n'
        f'[[custom_nodes]]\nregistry = "{node}"\nversion = "{version}"\n'
    )
    return Manifest.parse(text, "workshop.toml")


@pytest.fixture
def registry(model_server: ModelServer, monkeypatch: pytest.MonkeyPatch) -> ModelServer:
    monkeypatch.setenv("COMFY_MULTI_REGISTRY_URL", model_server.url)
    monkeypatch.setenv("SSL_CERT_FILE", str(model_server.ca_file))
    return model_server


def test_a_registry_node_is_installed_once_per_version(
    registry: ModelServer, tmp_path: Path
) -> None:
    comfy = tmp_path / "ComfyUI"
    said: list[str] = []
    publish(registry, "cm-probe", "1.0.0", node_zip({"__init__.py": "VERSION = 1\n"}))
    install_custom_nodes(manifest_with("cm-probe", "1.0.0"), comfy, said.append)
    folder = comfy / "custom_nodes" / "cm-probe"
    assert (folder / "__init__.py").read_text() == "VERSION = 1\n"
    assert "from the Comfy registry" in said[0]

    said.clear()
    install_custom_nodes(manifest_with("cm-probe", "1.0.0"), comfy, said.append)
    assert said == []  # already there: nothing fetched again

    publish(registry, "cm-probe", "1.1.0", node_zip({"__init__.py": "VERSION = 2\n"}))
    install_custom_nodes(manifest_with("cm-probe", "1.1.0"), comfy, said.append)
    assert (folder / "__init__.py").read_text() == "VERSION = 2\n"  # the pinned version moved


def test_a_hostile_archive_leaves_the_installed_node_alone(
    registry: ModelServer, tmp_path: Path
) -> None:
    comfy = tmp_path / "ComfyUI"
    publish(registry, "cm-probe", "1.0.0", node_zip({"__init__.py": "GOOD = True\n"}))
    install_custom_nodes(manifest_with("cm-probe", "1.0.0"), comfy, lambda _: None)
    publish(registry, "cm-probe", "6.6.6", node_zip({"../../escaped.py": "pwned\n"}))
    with pytest.raises(ConfigError, match="unsafe path"):
        install_custom_nodes(manifest_with("cm-probe", "6.6.6"), comfy, lambda _: None)
    assert not (tmp_path / "escaped.py").exists()
    assert not (comfy / "escaped.py").exists()
    assert (comfy / "custom_nodes/cm-probe/__init__.py").read_text() == "GOOD = True\n"

    registry.add("nodes/cm-probe/install", b'{"nothing": "here"}')
    with pytest.raises(ConfigError, match=r"cm-probe 7\.0\.0"):
        install_custom_nodes(manifest_with("cm-probe", "7.0.0"), comfy, lambda _: None)


def test_registry_names_that_would_bend_the_url_are_refused() -> None:
    with pytest.raises(ValueError, match="no registry name"):
        CustomNode(registry="../../evil", version="1.0.0")
    with pytest.raises(ValueError, match="no registry name"):
        CustomNode(registry="good-node", version="1.0?x=1")
