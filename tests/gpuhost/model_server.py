"""A local HTTPS model server: plain URLs and Hugging Face-shaped paths, with
HTTP Range, a request log, and files that break off on their first download."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import trustme
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.conftest import free_port


@dataclass
class ModelServer:
    """Serves files from `root`; `flaky` names break off halfway the first time."""

    root: Path
    ca_file: Path
    flaky: set[str] = field(default_factory=set)
    log: list[tuple[str, str | None]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def add(self, name: str, content: bytes) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return hashlib.sha256(content).hexdigest()

    def ranges_for(self, name: str) -> list[str | None]:
        return [r for p, r in self.log if p == name or p.endswith("/" + name)]

    async def _serve(self, request: Request) -> Response:
        rel = request.path_params["path"]
        # Hugging Face: /<org>/<repo>/resolve/<revision>/<file>
        parts = rel.split("/")
        if len(parts) > 4 and parts[2] == "resolve":
            rel = "/".join(parts[4:])
        self.log.append((rel, request.headers.get("range")))
        path = self.root / rel
        if not path.is_file():
            return Response("no such file", status_code=404)
        if rel in self.flaky:
            self.flaky.discard(rel)
            return _broken_off(path)
        return FileResponse(path)


def _broken_off(path: Path) -> Response:
    data = path.read_bytes()

    async def half() -> AsyncIterator[bytes]:
        yield data[: len(data) // 2]
        raise ConnectionResetError("the line dropped")

    return StreamingResponse(half(), headers={"content-length": str(len(data))})


def start_model_server(root: Path) -> tuple[ModelServer, uvicorn.Server]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    root.mkdir(parents=True, exist_ok=True)
    ca_file = root.parent / "model-server-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    key_file = root.parent / "model-server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(key_file))
    server = ModelServer(root=root / "files", ca_file=ca_file, port=free_port())
    server.root.mkdir(exist_ok=True)
    app = Starlette(routes=[Route("/{path:path}", server._serve)])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=server.port,
        log_config=None,
        ssl_certfile=str(key_file),
        ssl_keyfile=str(key_file),
    )
    running = uvicorn.Server(config)
    threading.Thread(target=running.run, daemon=True).start()
    deadline = time.monotonic() + 10
    while not running.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the model server did not start")
        time.sleep(0.02)
    return server, running
