"""/jobs, /queue, /history, /interrupt and cancel: ComfyUI's shapes, this user's jobs only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.comfy.conftest import ScriptedWorker, blur_prompt
from tests.comfy.jobs_schema import check_detail, check_list

COMFY_ERROR = {
    "node_id": "2",
    "node_type": "ImageBlur",
    "executed": ["1"],
    "exception_message": "blur radius exploded",
    "exception_type": "RuntimeError",
    "traceback": ["  File 'nodes.py', line 1\n"],
    "current_inputs": {},
    "current_outputs": {},
    "timestamp": 1,
}


@dataclass
class Jobs:
    done: str
    failed: str
    lost: str
    cancelled: str
    running: str
    pending: str
    bobs: str


async def submit(http: httpx.AsyncClient, user: str, **extra: Any) -> str:
    response = await http.post(f"/u/{user}/api/prompt", json={"prompt": blur_prompt(), **extra})
    assert response.status_code == 200, response.text
    job_id: str = response.json()["prompt_id"]
    return job_id


@pytest.fixture
async def jobs(worker: ScriptedWorker, clients: dict[str, httpx.AsyncClient]) -> Jobs:
    """alice's jobs in every state, plus one of bob's."""
    alice = clients["alice"]
    extra = {"extra_data": {"extra_pnginfo": {"workflow": {"id": "wf-blur"}}}}
    ids = {}
    for name in ("done", "failed", "lost", "cancelled", "running"):
        ids[name] = await submit(alice, "alice", **extra)
        job = await worker.claim()
        assert job.job_id == ids[name]
        if name == "done":
            await worker.run(job)
        elif name == "failed":
            await worker.fail(job, COMFY_ERROR)
        elif name == "lost":
            await worker.fail(job, {"type": "comfyui_unreachable", "message": "ComfyUI went away"})
        elif name == "cancelled":
            assert (await alice.post(f"/u/alice/api/jobs/{ids[name]}/cancel")).json() == {
                "cancelled": True
            }
    ids["pending"] = await submit(alice, "alice")
    ids["bobs"] = await submit(clients["bob"], "bob")
    return Jobs(**ids)


async def test_jobs_list_matches_the_frontends_schema(
    jobs: Jobs, clients: dict[str, httpx.AsyncClient]
) -> None:
    alice = clients["alice"]
    queue = (
        await alice.get("/u/alice/api/jobs?status=in_progress,pending&limit=200&offset=0")
    ).json()
    check_list(queue)
    assert {j["id"]: j["status"] for j in queue["jobs"]} == {
        jobs.running: "in_progress",
        jobs.pending: "pending",
    }
    history = (
        await alice.get("/u/alice/api/jobs?status=completed,failed,cancelled&limit=64&offset=0")
    ).json()
    check_list(history)
    by_id = {j["id"]: j for j in history["jobs"]}
    assert {k: v["status"] for k, v in by_id.items()} == {
        jobs.done: "completed",
        jobs.failed: "failed",
        jobs.lost: "failed",
        jobs.cancelled: "cancelled",
    }
    assert history["pagination"] == {"offset": 0, "limit": 64, "total": 4, "has_more": False}
    done = by_id[jobs.done]
    assert done["outputs_count"] == 1
    assert done["preview_output"]["mediaType"] == "images"
    assert done["preview_output"]["nodeId"] == "3"
    assert done["preview_output"]["type"] == "output"
    assert done["workflow_id"] == "wf-blur"
    assert done["execution_end_time"] >= done["execution_start_time"] >= done["create_time"]
    assert by_id[jobs.failed]["execution_error"]["exception_message"] == "blur radius exploded"
    assert by_id[jobs.failed]["execution_error"]["node_id"] == "2"
    lost = by_id[jobs.lost]["execution_error"]
    assert lost["exception_type"] == "comfyui_unreachable"
    assert lost["node_id"] == ""
    everything = (await alice.get("/u/alice/api/jobs")).json()
    check_list(everything)
    assert jobs.bobs not in {j["id"] for j in everything["jobs"]}


async def test_job_detail_and_isolation(jobs: Jobs, clients: dict[str, httpx.AsyncClient]) -> None:
    alice, bob = clients["alice"], clients["bob"]
    for job_id in (jobs.done, jobs.failed, jobs.cancelled, jobs.running, jobs.pending):
        detail = await alice.get(f"/u/alice/api/jobs/{job_id}")
        assert detail.status_code == 200
        check_detail(detail.json())
    done = (await alice.get(f"/u/alice/api/jobs/{jobs.done}")).json()
    assert done["outputs"]["3"]["images"][0]["type"] == "output"
    assert done["execution_status"]["status_str"] == "success"
    assert done["workflow"]["prompt"]["3"]["class_type"] == "SaveImage"
    # bob sees none of alice's jobs, by any route, and cannot touch them
    missing = await bob.get(f"/u/bob/api/jobs/{jobs.pending}")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Job not found"}
    assert (await bob.get(f"/u/bob/api/history/{jobs.done}")).json() == {}
    assert (await bob.post(f"/u/bob/api/jobs/{jobs.pending}/cancel")).json() == {"cancelled": False}
    assert (await bob.post("/u/bob/api/jobs/cancel", json={"job_ids": [jobs.running]})).json() == {
        "cancelled": []
    }
    await bob.post("/u/bob/api/queue", json={"delete": [jobs.pending]})
    await bob.post("/u/bob/api/interrupt", json={"prompt_id": jobs.running})
    await bob.post("/u/bob/api/interrupt")
    await bob.post("/u/bob/api/history", json={"delete": [jobs.done]})
    states = {j["id"]: j["status"] for j in (await alice.get("/u/alice/api/jobs")).json()["jobs"]}
    assert states[jobs.pending] == "pending"
    assert states[jobs.running] == "in_progress"
    assert states[jobs.done] == "completed"
    assert set((await bob.get("/u/bob/api/jobs")).json()["jobs"][0]) >= {"id", "status"}
    assert [j["id"] for j in (await bob.get("/u/bob/api/jobs")).json()["jobs"]] == [jobs.bobs]


async def test_jobs_filters_pages_and_bad_parameters(
    jobs: Jobs, clients: dict[str, httpx.AsyncClient]
) -> None:
    alice = clients["alice"]
    first = (await alice.get("/u/alice/api/jobs?limit=2&offset=0")).json()
    assert len(first["jobs"]) == 2
    assert first["pagination"] == {"offset": 0, "limit": 2, "total": 6, "has_more": True}
    rest = (await alice.get("/u/alice/api/jobs?limit=2&offset=4")).json()
    assert rest["pagination"]["has_more"] is False
    newest_first = [j["create_time"] for j in (await alice.get("/u/alice/api/jobs")).json()["jobs"]]
    assert newest_first == sorted(newest_first, reverse=True)
    oldest_first = (await alice.get("/u/alice/api/jobs?sort_order=asc")).json()["jobs"]
    assert [j["create_time"] for j in oldest_first] == sorted(newest_first)
    assert (await alice.get("/u/alice/api/jobs?sort_by=execution_duration")).status_code == 200
    by_workflow = (await alice.get("/u/alice/api/jobs?workflow_id=wf-blur")).json()["jobs"]
    assert len(by_workflow) == 5
    for bad in ("status=done", "sort_by=name", "sort_order=up", "limit=0", "limit=x", "offset=y"):
        response = await alice.get(f"/u/alice/api/jobs?{bad}")
        assert response.status_code == 400, bad
        assert isinstance(response.json()["error"], str)
    for body in ({"job_ids": "nope"}, {"job_ids": ["not-a-uuid"]}, {}):
        assert (await alice.post("/u/alice/api/jobs/cancel", json=body)).status_code == 400


async def test_queue_and_history_routes(jobs: Jobs, clients: dict[str, httpx.AsyncClient]) -> None:
    alice = clients["alice"]
    queue = (await alice.get("/u/alice/api/queue")).json()
    assert [item[1] for item in queue["queue_running"]] == [jobs.running]
    assert [item[1] for item in queue["queue_pending"]] == [jobs.pending]
    number, prompt_id, prompt, extra, outputs = queue["queue_pending"][0]
    assert isinstance(number, int)
    assert prompt_id == jobs.pending
    assert prompt["3"]["class_type"] == "SaveImage"
    assert outputs == ["3"]
    assert isinstance(extra, dict)
    history = (await alice.get("/u/alice/api/history")).json()
    assert list(history) == [jobs.done, jobs.failed, jobs.lost, jobs.cancelled]  # oldest first
    entry = history[jobs.done]
    assert set(entry) == {"prompt", "outputs", "status", "meta"}
    assert entry["status"]["status_str"] == "success"
    assert entry["status"]["completed"] is True
    assert [m[0] for m in entry["status"]["messages"]][-1] == "execution_success"
    assert history[jobs.failed]["status"]["messages"][-1][0] == "execution_error"
    assert history[jobs.cancelled]["status"]["messages"][-1][0] == "execution_interrupted"
    assert list((await alice.get("/u/alice/api/history?max_items=2")).json()) == [
        jobs.lost,
        jobs.cancelled,
    ]
    one = (await alice.get(f"/u/alice/api/history/{jobs.done}")).json()
    assert list(one) == [jobs.done]
    assert (await alice.get(f"/u/alice/api/history/{jobs.pending}")).json() == {}
    await alice.post("/u/alice/api/history", json={"delete": [jobs.done]})
    assert jobs.done not in (await alice.get("/u/alice/api/history")).json()
    await alice.post("/u/alice/api/history", json={"clear": True})
    assert (await alice.get("/u/alice/api/history")).json() == {}


async def test_delete_clear_and_interrupt_own_jobs(
    jobs: Jobs, clients: dict[str, httpx.AsyncClient]
) -> None:
    alice = clients["alice"]
    extra = await submit(alice, "alice")
    assert (
        await alice.post("/u/alice/api/queue", json={"delete": [jobs.pending]})
    ).status_code == 200
    assert (await alice.post("/u/alice/api/queue", json={"clear": True})).status_code == 200
    pending = (await alice.get("/u/alice/api/jobs?status=pending")).json()
    assert pending["jobs"] == []
    # deleted before they ran: gone, as in ComfyUI
    assert (await alice.get(f"/u/alice/api/jobs/{extra}")).status_code == 404
    assert (
        await alice.post("/u/alice/api/interrupt", json={"prompt_id": "someone-else"})
    ).status_code == 200
    assert (await alice.get(f"/u/alice/api/jobs/{jobs.running}")).json()["status"] == "in_progress"
    assert (await alice.post("/u/alice/api/interrupt")).status_code == 200
    assert (await alice.get(f"/u/alice/api/jobs/{jobs.running}")).json()["status"] == "cancelled"
    assert (await alice.get("/u/alice/api/prompt")).json() == {"exec_info": {"queue_remaining": 0}}
