from typing import Any

from comfy_multi.queue.models import InputRef
from comfy_multi.worker.inputs import StagedInput, _unique_names, rewrite_prompt


def test_references_are_rewritten_to_the_job_folder() -> None:
    prompt: dict[str, Any] = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "cat.png"}},
        "2": {
            "class_type": "LoadImageMask",
            "inputs": {"image": "masks/m.png", "channel": "alpha"},
        },
        "3": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat.png on a mat"}},
    }
    staged = [
        StagedInput("cat.png", "cat.png", "cm-j-1"),
        StagedInput("masks/m.png", "m.png", "cm-j-1"),
    ]
    out = rewrite_prompt(prompt, staged)
    assert out["1"]["inputs"]["image"] == "cm-j-1/cat.png"
    assert out["2"]["inputs"] == {"image": "cm-j-1/m.png", "channel": "alpha"}
    assert out["3"] == prompt["3"]
    assert out["4"]["inputs"]["text"] == "a cat.png on a mat"
    assert prompt["1"]["inputs"]["image"] == "cat.png"  # the job's own prompt is untouched


def test_names_are_safe_and_distinct() -> None:
    refs = [
        InputRef(filename="a.png", subfolder="", ref="a.png"),
        InputRef(filename="a.png", subfolder="x", ref="x/a.png"),
        InputRef(filename='we"ird\\name.png', subfolder="", ref="w"),
    ]
    names = _unique_names(refs)
    assert names[0] == "a.png"
    assert names[1] != "a.png"
    assert '"' not in names[2]
    assert "\\" not in names[2]
