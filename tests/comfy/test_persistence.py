"""Outputs, history and settings outlive a gateway restart."""

from __future__ import annotations

import httpx

from tests.comfy.conftest import ScriptedWorker, blur_prompt
from tests.conftest import Gateway, Person, ServerThread


async def test_a_restarted_gateway_still_shows_your_work(
    gateway: Gateway, people: dict[str, Person], worker: ScriptedWorker
) -> None:
    async with gateway.client(auth=people["alice"].auth) as alice:
        submitted = await alice.post("/u/alice/api/prompt", json={"prompt": blur_prompt()})
        job_id = submitted.json()["prompt_id"]
        saved = await worker.run(await worker.claim())
        await alice.post("/u/alice/api/settings/Comfy.Zoom", json=2)
    gateway.server.stop()
    again = ServerThread(gateway.settings).start()
    try:
        async with httpx.AsyncClient(base_url=again.url, auth=people["alice"].auth) as alice:
            history = (await alice.get(f"/u/alice/api/history/{job_id}")).json()
            assert history[job_id]["outputs"]["3"] == saved
            image = saved["images"][0]
            view = await alice.get("/u/alice/api/view", params={**image, "type": "output"})
            assert view.status_code == 200
            assert view.headers["content-type"] == "image/png"
            assert (await alice.get("/u/alice/api/settings/Comfy.Zoom")).json() == 2
            jobs = (await alice.get("/u/alice/api/jobs?status=completed")).json()["jobs"]
            assert [j["id"] for j in jobs] == [job_id]
    finally:
        again.stop()
