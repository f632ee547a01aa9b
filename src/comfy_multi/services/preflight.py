"""The workshop's pre-flight check, for `comfy-multi check` and the dashboard's button.

In order: the public URL answers (with a valid TLS certificate where it is
https); each online worker has the nodes and models the workshop's workflows
need; every workflow in `workflows/` can run on some worker; one real job runs
end to end. Each step is a line, green or red; `notes` inform without failing.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from comfy_multi.errors import RequestError
from comfy_multi.netaddr import is_loopback_url
from comfy_multi.queue.models import JobState
from comfy_multi.services.platform import Platform
from comfy_multi.services.preflight_workflows import Needs, needs_of, offered_models, workflow_files
from comfy_multi.services.submit import submit_checked
from comfy_multi.wording import plural

URL_TIMEOUT_S = 10.0
JOB_POLL_S = 0.2
TEST_PROMPT: dict[str, Any] = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0},
    },
    "2": {
        "class_type": "SaveImage",
        "inputs": {"images": ["1", 0], "filename_prefix": "preflight/check"},
    },
}


@dataclass(frozen=True)
class Line:
    ok: bool | None  # None: a note, neither pass nor fail
    what: str
    detail: str
    warning: bool = False  # a note the instructor must read before the room arrives

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tls_problem(exc: BaseException) -> str | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or str(seen)
        if isinstance(seen, ssl.SSLError):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


async def check_public_url(url: str | None) -> Line:
    what = "Public URL"
    if not url:
        return Line(
            False,
            what,
            "unknown: the room is not running and COMFY_MULTI_PUBLIC_URL is unset",
        )
    url = url.rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=URL_TIMEOUT_S, verify=True) as http:
            answer = await http.get(f"{url}/health")
    except httpx.HTTPError as exc:
        tls = _tls_problem(exc)
        if tls:
            return Line(False, what, f"{url}/: the TLS certificate is not valid ({tls})")
        return Line(False, what, f"{url}/ does not answer ({type(exc).__name__}: {exc})")
    if answer.status_code != 200:
        return Line(False, what, f"{url}/health answered {answer.status_code}")
    if is_loopback_url(url):
        # a rehearsal on one computer passes; a room would not, and is told how
        return Line(
            None,
            what,
            f"{url}/ answers, but only this computer can open it: for the room, start it "
            "with --host 0.0.0.0 and set COMFY_MULTI_PUBLIC_URL to the address people type",
            warning=True,
        )
    tls = ", TLS certificate valid" if url.startswith("https://") else ""
    return Line(True, what, f"{url}/ answers{tls}")


def _lacks(needs: Needs, nodes: set[str], models: set[str]) -> str:
    parts = []
    missing_nodes = sorted(needs.nodes - nodes)
    missing_models = sorted(m for m in needs.models if m not in models)
    if missing_nodes:
        parts.append(f"nodes {', '.join(missing_nodes)}")
    if missing_models:
        parts.append(f"models {', '.join(missing_models)}")
    return "; ".join(parts)


async def check_workers_and_workflows(platform: Platform) -> AsyncIterator[Line]:
    folder = platform.settings.workflows_dir
    workflows: dict[str, Needs] = {}
    broken: list[Line] = []
    for path in workflow_files(folder):
        name = str(path.relative_to(folder))
        try:
            workflows[name] = await asyncio.to_thread(needs_of, path)
        except (OSError, ValueError) as exc:
            broken.append(Line(False, f"Workflow {name}", str(exc)))

    workers = await platform.workers.list()
    online = [w for w in workers if w.online]
    offered: dict[str, tuple[set[str], set[str]]] = {}
    if not online:
        yield Line(False, "Workers", "no GPU worker is online; start one (operator guide)")
    for w in workers:
        if not w.online:
            yield Line(None, f"Worker {w.worker_id}", "offline; not counted")
            continue
        nodes, models = await platform.workers.capabilities(w.worker_id)
        offered[w.worker_id] = (nodes, offered_models(models))
        gaps = [
            f"{name}: {lack}"
            for name, needs in workflows.items()
            if (lack := _lacks(needs, nodes, offered[w.worker_id][1]))
        ]
        summary = f"online, {plural(w.nodes_count, 'node')}, {plural(w.models_count, 'model')}"
        if gaps:
            yield Line(False, f"Worker {w.worker_id}", f"{summary}; lacks for " + " / ".join(gaps))
        else:
            runs = f"; runs all {plural(len(workflows), 'workflow')}" if workflows else ""
            yield Line(True, f"Worker {w.worker_id}", summary + runs)

    if not workflows and not broken:
        yield Line(None, "Workflows", f"none in {folder} yet; participants see the examples")
    for line in broken:
        yield line
    for name, needs in workflows.items():
        able = [wid for wid, (n, m) in offered.items() if not _lacks(needs, n, m)]
        if able:
            yield Line(
                True,
                f"Workflow {name}",
                f"{plural(len(needs.nodes), 'node type')}, {plural(len(needs.models), 'model')}; "
                f"runs on {len(able)} of {plural(len(offered), 'worker')} online",
            )
        else:
            everything = (
                set().union(*(n for n, _ in offered.values())),
                set().union(*(m for _, m in offered.values())),
            )
            lack = _lacks(needs, *everything) if offered else "a worker online"
            yield Line(False, f"Workflow {name}", f"no online worker can run it; needs {lack}")


async def check_test_job(platform: Platform, timeout_s: float) -> Line:
    what = "Test job"
    admins = [u for u in await platform.users.list() if u.admin]
    if not admins:
        return Line(False, what, "no instructor account to run it as")
    started = time.monotonic()
    try:
        job, _ = await submit_checked(platform, admins[0], TEST_PROMPT, front=True)
    except RequestError as exc:
        return Line(False, what, f"not queued: {exc.message}")
    deadline = started + timeout_s
    while True:
        current = await platform.queue.get(job.id)
        if current.state.final:
            break
        if time.monotonic() > deadline:
            await platform.queue.cancel(job.id)
            where = f"running on {current.worker}" if current.worker else "still waiting"
            return Line(False, what, f"not done within {timeout_s:.0f} s ({where}); cancelled")
        await asyncio.sleep(JOB_POLL_S)
    took = time.monotonic() - started
    if current.state is JobState.DONE:
        ran = ""
        if current.started_ms and current.finished_ms:
            ran = f", ran {(current.finished_ms - current.started_ms) / 1000:.1f} s"
        return Line(
            True, what, f"EmptyImage to SaveImage done in {took:.1f} s on {current.worker}{ran}"
        )
    reason = (current.error or {}).get("message") or current.state.value
    return Line(False, what, f"{current.state.value} after {took:.1f} s: {reason}")


async def preflight(
    platform: Platform, public_url: str | None, *, job_timeout_s: float, run_job: bool = True
) -> AsyncIterator[Line]:
    yield await check_public_url(public_url)
    async for line in check_workers_and_workflows(platform):
        yield line
    if run_job:
        yield await check_test_job(platform, job_timeout_s)
