"""ComfyUI's HTTP routes, as a worker uses them."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import httpx

from comfy_multi.worker.errors import ComfyUIFileMissing, ComfyUIRejected, ComfyUIUnavailable
from comfy_multi.worker.multipart import MultipartBody

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0  # /object_info on a server with many custom nodes is slow
PROBE_TIMEOUT = 3.0


class ComfyUI:
    """One ComfyUI server; every failure to reach it raises ``ComfyUIUnavailable``."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            limits=httpx.Limits(max_keepalive_connections=8),
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def ws_url(self, client_id: str) -> str:
        scheme, rest = self.url.split("://", 1)
        ws_scheme = "wss" if scheme == "https" else "ws"
        return f"{ws_scheme}://{rest}/ws?{urlencode({'clientId': client_id})}"

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ComfyUIUnavailable(self.url, str(exc) or type(exc).__name__) from exc
        if response.status_code >= 500:
            raise ComfyUIUnavailable(self.url, f"{method} {path} answered {response.status_code}")
        return response

    async def system_stats(self) -> dict[str, Any]:
        response = await self._request("GET", "/system_stats", timeout=PROBE_TIMEOUT)
        if response.status_code != 200:
            raise ComfyUIUnavailable(self.url, f"/system_stats answered {response.status_code}")
        stats: dict[str, Any] = response.json()
        return stats

    async def alive(self) -> bool:
        try:
            await self.system_stats()
        except (ComfyUIUnavailable, ValueError):
            return False
        return True

    async def object_info(self) -> bytes:
        """The raw ``/object_info`` bytes (their digest identifies the capabilities)."""
        response = await self._request("GET", "/object_info")
        if response.status_code != 200:
            raise ComfyUIUnavailable(self.url, f"/object_info answered {response.status_code}")
        return response.content

    async def extensions(self) -> list[str]:
        """The url paths of the web extension scripts ComfyUI serves."""
        response = await self._request("GET", "/extensions")
        if response.status_code != 200:
            raise ComfyUIUnavailable(self.url, f"/extensions answered {response.status_code}")
        paths = response.json()
        return [p for p in paths if isinstance(p, str)] if isinstance(paths, list) else []

    async def web_file(self, path: str, max_bytes: int) -> bytes | None:
        """One file ComfyUI serves under /extensions; None if absent or too big."""
        async with self._http.stream("GET", path) as response:
            if response.status_code != 200:
                return None
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    return None
            return bytes(body)

    async def upload_input(
        self,
        *,
        filename: str,
        subfolder: str,
        content: AsyncIterable[bytes],
        size: int | None,
        content_type: str = "application/octet-stream",
    ) -> dict[str, Any]:
        """Stream a file into ComfyUI's input folder; the answer is ``{name, subfolder, type}``."""
        body = MultipartBody(
            {"type": "input", "subfolder": subfolder, "overwrite": "true"},
            file_field="image",
            filename=filename,
            content_type=content_type,
            content=content,
            size=size,
        )
        response = await self._request(
            "POST", "/upload/image", content=body.stream(), headers=body.headers
        )
        if response.status_code != 200:
            raise ComfyUIRejected(
                response.status_code,
                {"error": {"type": "upload_failed", "message": response.text[:500]}},
            )
        answer: dict[str, Any] = response.json()
        return answer

    async def queue_prompt(
        self, prompt: dict[str, Any], *, client_id: str, extra_data: dict[str, Any]
    ) -> str:
        """POST /prompt; returns ComfyUI's prompt_id, or raises ``ComfyUIRejected``."""
        payload = {"prompt": prompt, "client_id": client_id, "extra_data": extra_data}
        response = await self._request("POST", "/prompt", json=payload)
        if response.status_code != 200:
            raise ComfyUIRejected(response.status_code, _json_body(response))
        prompt_id = response.json().get("prompt_id")
        if not isinstance(prompt_id, str):
            raise ComfyUIUnavailable(
                self.url, f"/prompt answered without prompt_id: {response.text[:200]}"
            )
        return prompt_id

    async def interrupt(self, prompt_id: str) -> None:
        """Interrupt this prompt only, if it is the one running."""
        await self._request("POST", "/interrupt", json={"prompt_id": prompt_id})

    async def dequeue(self, prompt_id: str) -> None:
        """Remove this prompt if it is still waiting in ComfyUI's queue."""
        await self._request("POST", "/queue", json={"delete": [prompt_id]})

    async def in_queue(self, prompt_id: str) -> bool | None:
        """Whether the prompt is still running or pending on ComfyUI; None if unknown."""
        response = await self._request("GET", "/queue", timeout=PROBE_TIMEOUT)
        if response.status_code != 200:
            return None
        queue = response.json()
        items = [*queue.get("queue_running", []), *queue.get("queue_pending", [])]
        return any(len(item) > 1 and item[1] == prompt_id for item in items)

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        """ComfyUI's history entry for the prompt, or None while it has none."""
        response = await self._request("GET", f"/history/{prompt_id}")
        if response.status_code != 200:
            return None
        entry = response.json().get(prompt_id)
        return entry if isinstance(entry, dict) else None

    async def forget_history(self, prompt_id: str) -> None:
        await self._request("POST", "/history", json={"delete": [prompt_id]})

    @asynccontextmanager
    async def view(self, filename: str, subfolder: str, kind: str) -> AsyncIterator[httpx.Response]:
        """Open ``/view`` as a stream; read it with ``chunks(response)``."""
        params = {"filename": filename, "subfolder": subfolder, "type": kind}
        request = self._http.build_request("GET", "/view", params=params)
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise ComfyUIUnavailable(self.url, str(exc) or type(exc).__name__) from exc
        try:
            if response.status_code >= 500:
                raise ComfyUIUnavailable(self.url, f"/view answered {response.status_code}")
            if response.status_code != 200:
                raise ComfyUIFileMissing(filename, subfolder, kind, response.status_code)
            yield response
        finally:
            await response.aclose()

    async def chunks(self, response: httpx.Response) -> AsyncIterator[bytes]:
        """The body of a ``view`` response; a broken read raises ``ComfyUIUnavailable``."""
        try:
            async for chunk in response.aiter_bytes():
                yield chunk
        except httpx.TransportError as exc:
            raise ComfyUIUnavailable(self.url, f"/view broke off: {exc}") from exc


def _json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except (json.JSONDecodeError, ValueError):
        body = None
    if isinstance(body, dict):
        return body
    text = response.text[:2000]
    return {
        "error": {
            "type": "http_error",
            "message": f"ComfyUI answered {response.status_code}: {text}",
            "details": text,
            "extra_info": {},
        },
        "node_errors": {},
    }
