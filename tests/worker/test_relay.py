from comfy_multi.worker.relay import readdress


def test_prompt_id_becomes_the_job_id_everywhere() -> None:
    data = {
        "prompt_id": "comfy-1",
        "nodes": {
            "3": {"value": 1, "max": 4, "prompt_id": "comfy-1", "state": "running"},
            "4": "odd",
        },
    }
    out = readdress(data, "job-9")
    assert out["prompt_id"] == "job-9"
    assert out["nodes"]["3"]["prompt_id"] == "job-9"
    assert out["nodes"]["4"] == "odd"
    assert data["prompt_id"] == "comfy-1"


def test_events_without_prompt_id_are_left_alone() -> None:
    assert readdress({"node": "1"}, "job") == {"node": "1"}
