"""Where a running job is, from ComfyUI's messages: the node, n of m, its steps."""

from __future__ import annotations

from comfy_multi.worker.saves import own_subfolder, rewrite_saves
from comfy_multi.worker.steps import StepCounter

PROMPT = {
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {}},
    "2": {"class_type": "CLIPTextEncode", "inputs": {}, "_meta": {"title": "Positive"}},
    "3": {"class_type": "KSampler", "inputs": {}},
    "4": {"class_type": "SaveImage", "inputs": {"filename_prefix": "portrait"}},
}


def test_steps_name_the_node_count_cached_ones_done_and_carry_its_progress() -> None:
    steps = StepCounter(PROMPT)
    assert steps.note("execution_cached", {"nodes": ["1"]}) is None
    first = steps.note("executing", {"node": "2"})
    assert first is not None
    assert (first["label"], first["number"], first["of"]) == ("Positive", 2, 4)
    sampler = steps.note("executing", {"node": "3"})
    assert sampler is not None
    assert (sampler["label"], sampler["number"], sampler["max"]) == ("KSampler", 3, 0)
    progress = steps.note("progress", {"value": 7, "max": 20, "node": "3"})
    assert progress is not None
    assert (progress["label"], progress["value"], progress["max"]) == ("KSampler", 7, 20)
    last = steps.note("executing", {"node": "4"})
    assert last is not None
    assert (last["number"], last["of"], last["value"], last["max"]) == (4, 4, 0, 0)
    assert steps.note("executed", {"node": "4"}) is None


def test_saves_go_to_the_person_s_folder_and_come_back_without_it() -> None:
    wired = {"5": {"class_type": "SaveImage", "inputs": {"filename_prefix": ["9", 0]}}}
    out = rewrite_saves({**PROMPT, **wired}, "alice")
    assert out["4"]["inputs"]["filename_prefix"] == "cm-people/alice/portrait"
    assert out["5"] == wired["5"]  # a prefix from another node is left alone
    assert PROMPT["4"]["inputs"]["filename_prefix"] == "portrait"  # the job's own prompt
    climbing = {"4": {"class_type": "SaveImage", "inputs": {"filename_prefix": "/../../x"}}}
    assert rewrite_saves(climbing, "bob")["4"]["inputs"]["filename_prefix"] == "cm-people/bob/x"
    assert own_subfolder("cm-people/alice", "alice") == ""
    assert own_subfolder("cm-people/alice/trip", "alice") == "trip"
    assert own_subfolder("other", "alice") == "other"
