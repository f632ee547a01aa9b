"""One wire: the worker protocol's models, the gateway's routes, the worker's
imports and docs/worker-protocol.md all say the same thing."""

from __future__ import annotations

import ast
import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel

from comfy_multi import wire
from comfy_multi.gateway.worker_api import router
from comfy_multi.wire import ClaimedJob, Registration
from comfy_multi.worker import errors as worker_errors
from comfy_multi.worker.channel import Channel
from comfy_multi.worker.errors import GatewayAnswerInvalid
from comfy_multi.worker.retry import Backoff

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "worker-protocol.md"
WORKER = ROOT / "src" / "comfy_multi" / "worker"
BASE_MODULES = {
    "comfy_multi.wire",
    "comfy_multi.settings",
    "comfy_multi.logs",
    "comfy_multi.errors",
}
CAMEL = re.compile(r"\b[A-Z][a-z]+(?:[A-Z][a-z]+)+\b")


def test_the_doc_tables_are_generated_from_the_wire_module() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "worker-protocol-tables"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_gateway_serves_exactly_the_routes_of_the_wire_module() -> None:
    served = {
        (method, route.path)
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    declared = {(r.method, wire.PREFIX + r.path) for r in wire.ROUTES}
    assert served == declared


def test_every_route_and_model_the_doc_names_exists() -> None:
    prose = DOC.read_text().split("<!-- generated")[0]
    named_routes = set(re.findall(r"\b(GET|POST|PUT) /worker/v1(/[^\s`?]*)", prose))
    declared = {(r.method, r.path) for r in wire.ROUTES}
    assert named_routes <= declared
    assert {path for _, path in declared} <= {path for _, path in named_routes}
    known = {m.__name__ for m in wire.MODELS} | set(vars(worker_errors))
    assert set(CAMEL.findall(prose)) - known == set()


def test_every_model_of_the_wire_module_is_listed_and_named_by_a_route() -> None:
    defined = {
        value
        for value in vars(wire).values()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == wire.__name__
        and value not in (wire.Message, wire.Answer, wire.Route)
    }
    assert defined == set(wire.MODELS)
    for route in wire.ROUTES:
        for name in CAMEL.findall(f"{route.request} {route.answer}"):
            assert name in {m.__name__ for m in wire.MODELS}, f"{route.path}: {name}"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_the_worker_imports_only_the_wire_and_base_modules() -> None:
    for path in sorted(WORKER.glob("*.py")):
        ours = {name for name in _imports(path) if name.startswith("comfy_multi")}
        outside = {
            name
            for name in ours
            if not name.startswith("comfy_multi.worker")
            and name != "comfy_multi"
            and not any(name == b or name.startswith(f"{b}.") for b in BASE_MODULES)
        }
        assert outside == set(), f"{path.name} imports {sorted(outside)}"


def test_the_wire_module_needs_only_pydantic_and_the_standard_library() -> None:
    roots = {name.split(".")[0] for name in _imports(Path(wire.__file__))}
    assert roots - set(sys.stdlib_module_names) == {"pydantic"}


# --- a gateway that answers what the protocol does not allow ---------------------------


@asynccontextmanager
async def gateway_answering(body: bytes, status: int = 200) -> AsyncIterator[str]:
    """A bare HTTP server that gives every request the same answer."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        if length:
            await reader.readexactly(int(length.group(1)))
        writer.write(
            b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (status, len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


JOB = ClaimedJob(
    job_id="j",
    lease_token="t1",
    lease_seconds=30,
    attempt=1,
    user="alice",
    prompt={},
    extra_data={},
    inputs=[],
    timeout_seconds=None,
)
REGISTRATION = Registration(worker_id="w", object_info_digest="0" * 64)


@pytest.mark.parametrize(
    ("call", "body", "expected"),
    [
        (lambda c: c.register(REGISTRATION), b'{"worker_id": "w"}', "Registered"),
        (lambda c: c.claim(0), b'{"job_id": "j", "lease_token": "seven"}', "ClaimedJob"),
        (lambda c: c.heartbeat([]), b"<html>proxy error</html>", "HeartbeatAnswer"),
        (lambda c: c.heartbeat([]), b'{"cancel": "all"}', "HeartbeatAnswer"),
        (
            lambda c: c.put_output(
                JOB, filename="a.png", subfolder="", kind="output", content=b"x", size=1
            ),
            b"{}",
            "StoredOutput",
        ),
    ],
)
async def test_an_answer_off_the_protocol_is_a_clear_worker_error(
    call: Callable[[Channel], Awaitable[object]], body: bytes, expected: str
) -> None:
    async with gateway_answering(body) as url:
        channel = Channel(url, "cmw_x", "w", backoff=Backoff(first=0.01, cap=0.01))
        try:
            with pytest.raises(GatewayAnswerInvalid, match=f"not a valid {expected}") as caught:
                await call(channel)
        finally:
            await channel.aclose()
    assert "same comfy-multi version" in str(caught.value)


async def test_an_error_answer_without_the_error_shape_keeps_its_text() -> None:
    async with gateway_answering(b"<html>teapot</html>", status=418) as url:
        channel = Channel(url, "cmw_x", "w")
        try:
            with pytest.raises(worker_errors.GatewayRejected, match="teapot"):
                await channel.claim(0)
        finally:
            await channel.aclose()
