"""How the run's real ComfyUI is laid out and when it is started (without starting one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import real_comfyui

TESTS = Path(__file__).resolve().parent


def test_private_folders_and_custom_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    comfyui = tmp_path / "ComfyUI"
    (comfyui / "custom_nodes").mkdir(parents=True)
    (comfyui / "custom_nodes" / "websocket_image_save.py").write_text("")
    (comfyui / "custom_nodes" / "example_node.py.example").write_text("")
    ours = tmp_path / "test_nodes"
    (ours / "video_probe").mkdir(parents=True)
    (ours / "__pycache__").mkdir()
    monkeypatch.setattr(real_comfyui, "CUSTOM_NODES", ours)

    base = real_comfyui.RealComfyUI(comfyui, tmp_path / "run")._base_directory()

    assert sorted(p.name for p in (base / "custom_nodes").iterdir()) == [
        "video_probe",
        "websocket_image_save.py",
    ]
    assert (base / "custom_nodes" / "video_probe").resolve() == ours / "video_probe"
    for sub in ("input", "output", "temp", "user"):
        assert (base / sub).is_dir()
    assert not (comfyui / "input").exists()  # the build's own folders stay untouched


@pytest.mark.parametrize(
    ("args", "markexpr", "needed"),
    [
        ([], "", True),
        ([str(TESTS)], "", True),
        ([str(TESTS / "worker")], "", True),
        ([str(TESTS / "worker" / "test_real_comfyui.py") + "::test_x"], "", True),
        ([str(TESTS)], "not browser and not comfyui and not slow", False),
        ([str(TESTS / "store")], "", False),
        ([str(TESTS / "test_cli.py")], "", False),
    ],
)
def test_started_only_when_selected_tests_may_use_it(
    args: list[str], markexpr: str, needed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(TESTS.parent)
    assert real_comfyui.may_need(args, markexpr) is needed
