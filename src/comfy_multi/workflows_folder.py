"""The workshop's `workflows/` folder in the data dir, made with a short README on first start."""

from __future__ import annotations

from pathlib import Path

README = """\
# Workshop workflows

Put the workshop's ComfyUI workflows here, one `.json` file each (in ComfyUI,
Workflow > Export saves one). Every participant sees them, read-only, in
ComfyUI's Workflows panel under `workshop/`; their workspace opens this folder
instead of the examples as soon as it holds a workflow. Sub-folders show as
folders. A participant who changes a workflow saves their own copy.

`comfy-multi check` validates every workflow here against the GPU workers'
nodes and models before the workshop starts.
"""


def ensure_workflows_folder(workflows_dir: Path) -> Path | None:
    """Create the folder with its README when it does not exist yet; return the README made."""
    if workflows_dir.exists():
        return None
    workflows_dir.mkdir(parents=True)
    readme = workflows_dir / "README.md"
    readme.write_text(README)
    return readme
