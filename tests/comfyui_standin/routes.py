"""ComfyUI's HTTP routes (server.py), answered from the stand-in's state."""

from __future__ import annotations

import json
import platform
import sys
import uuid
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from . import files
from .validation import validate_prompt

if TYPE_CHECKING:
    from .app import Standin

COMFYUI_VERSION = "0.3.64"
MODEL_FOLDERS = [
    "checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision",
    "style_models", "embeddings", "diffusers", "vae_approx", "controlnet", "gligen",
    "upscale_models", "custom_nodes", "hypernetworks", "photomaker", "classifiers",
    "model_patches", "audio_encoders",
]  # fmt: skip


class JSONResponse(Response):
    """JSON as aiohttp's json_response writes it (json.dumps defaults)."""

    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return json.dumps(content).encode("utf-8")


def _bad_request(kind: str, message: str, details: str = "") -> JSONResponse:
    error = {"type": kind, "message": message, "details": details, "extra_info": {}}
    return JSONResponse({"error": error, "node_errors": {}}, status_code=400)


async def _json_body(request: Request) -> Any:
    """The parsed body, or None when it is not JSON."""
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return None


class Api:
    def __init__(self, standin: Standin) -> None:
        self.s = standin
        self.number = 0

    # -- information -------------------------------------------------------------

    async def object_info(self, request: Request) -> Response:
        dirs = self.s.dirs
        return JSONResponse(
            {name: n.object_info(dirs) for name, n in self.s.registry.nodes.items()}
        )

    async def object_info_node(self, request: Request) -> Response:
        name = request.path_params["node_class"]
        node = self.s.registry.get(name)
        return JSONResponse({name: node.object_info(self.s.dirs)} if node else {})

    async def empty_list(self, request: Request) -> Response:
        return JSONResponse([])

    async def models(self, request: Request) -> Response:
        return JSONResponse(MODEL_FOLDERS)

    async def models_folder(self, request: Request) -> Response:
        if request.path_params["folder"] not in MODEL_FOLDERS:
            return Response(status_code=404)
        return JSONResponse([])

    async def extensions(self, request: Request) -> Response:
        return JSONResponse(self.s.custom.extension_paths())

    async def extension_file(self, request: Request) -> Response:
        found = self.s.custom.web_file(request.path_params["name"], request.path_params["rest"])
        if found is None:
            return Response(status_code=404)
        kind = "application/javascript" if found.suffix == ".js" else "application/octet-stream"
        return Response(found.read_bytes(), media_type=kind)

    async def not_found(self, request: Request) -> Response:
        return Response(status_code=404)

    async def features(self, request: Request) -> Response:
        return JSONResponse(self.s.features)

    async def system_stats(self, request: Request) -> Response:
        system = {
            "os": "posix",
            "ram_total": 0,
            "ram_free": 0,
            "comfyui_version": COMFYUI_VERSION,
            "required_frontend_version": "1.27.10",
            "installed_templates_version": None,
            "required_templates_version": None,
            "python_version": sys.version,
            "pytorch_version": "none (comfyui stand-in)",
            "embedded_python": False,
            "argv": ["comfyui_standin", platform.node()],
        }
        device = {
            "name": "cpu",
            "type": "cpu",
            "index": None,
            "vram_total": 0,
            "vram_free": 0,
            "torch_vram_total": 0,
            "torch_vram_free": 0,
        }
        return JSONResponse({"system": system, "devices": [device]})

    # -- queue and history --------------------------------------------------------

    async def get_prompt(self, request: Request) -> Response:
        return JSONResponse(self.s.queue_info())

    async def get_queue(self, request: Request) -> Response:
        queue = self.s.queue
        running = [item.as_list() for item in queue.running.values()]
        return JSONResponse({"queue_running": running, "queue_pending": queue.pending()})

    async def get_history(self, request: Request) -> Response:
        try:
            max_items = request.query_params.get("max_items")
            offset = request.query_params.get("offset")
            history = self.s.queue.get_history(
                max_items=int(max_items) if max_items is not None else None,
                offset=int(offset) if offset is not None else -1,
            )
        except ValueError:
            return Response(status_code=400)
        return JSONResponse(history)

    async def get_history_item(self, request: Request) -> Response:
        return JSONResponse(self.s.queue.get_history(prompt_id=request.path_params["prompt_id"]))

    async def post_queue(self, request: Request) -> Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            return Response(status_code=400)
        if body.get("clear"):
            self.s.queue.wipe()
        for prompt_id in body.get("delete", []) or []:
            self.s.queue.delete(prompt_id)
        return Response(status_code=200)

    async def post_history(self, request: Request) -> Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            return Response(status_code=400)
        if body.get("clear"):
            self.s.queue.wipe_history()
        for prompt_id in body.get("delete", []) or []:
            self.s.queue.delete_history(prompt_id)
        return Response(status_code=200)

    async def interrupt(self, request: Request) -> Response:
        body = await _json_body(request)
        prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
        self.s.executor.interrupt(prompt_id or None)
        return Response(status_code=200)

    async def free(self, request: Request) -> Response:
        body = await _json_body(request)
        if isinstance(body, dict) and body.get("free_memory"):
            self.s.executor.request_free()
        return Response(status_code=200)

    async def post_prompt(self, request: Request) -> Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            return _bad_request("invalid_prompt", "The request body is not a JSON object.")
        if "number" in body:
            try:
                number: float = float(body["number"])
            except (TypeError, ValueError):
                return _bad_request("invalid_prompt", "number must be a number.")
        else:
            number = -self.number if body.get("front") else self.number
            self.number += 1
        if "prompt" not in body:
            return JSONResponse(
                {
                    "error": {
                        "type": "no_prompt",
                        "message": "No prompt provided",
                        "details": "No prompt provided",
                        "extra_info": {},
                    },
                    "node_errors": {},
                },
                status_code=400,
            )
        prompt = body["prompt"]
        prompt_id = str(body.get("prompt_id", uuid.uuid4()))
        partial = body.get("partial_execution_targets")
        outcome = validate_prompt(self.s.registry, self.s.dirs, prompt, partial)
        extra_data = body.get("extra_data", {})
        if not isinstance(extra_data, dict):
            extra_data = {}
        if "client_id" in body:
            extra_data["client_id"] = body["client_id"]
        if not outcome.ok:
            return JSONResponse(
                {"error": outcome.error, "node_errors": outcome.node_errors}, status_code=400
            )
        self.s.queue.put(number, prompt_id, prompt, extra_data, outcome.outputs)
        return JSONResponse(
            {"prompt_id": prompt_id, "number": number, "node_errors": outcome.node_errors}
        )

    # -- files -----------------------------------------------------------------------

    async def view(self, request: Request) -> Response:
        return await files.view(request, self.s.dirs)

    async def upload_image(self, request: Request) -> Response:
        return await files.upload(request, self.s.dirs, self.s.max_upload_bytes)

    async def upload_mask(self, request: Request) -> Response:
        saver = files.mask_saver(self.s.dirs)
        return await files.upload(request, self.s.dirs, self.s.max_upload_bytes, saver)

    def table(self) -> list[tuple[str, str, Any]]:
        """(method, path, handler) for every route, before the /api copies are made."""
        return [
            ("GET", "/object_info", self.object_info),
            ("GET", "/object_info/{node_class}", self.object_info_node),
            ("GET", "/embeddings", self.empty_list),
            ("GET", "/extensions", self.extensions),
            ("GET", "/extensions/{name}/{rest:path}", self.extension_file),
            ("GET", "/models", self.models),
            ("GET", "/models/{folder}", self.models_folder),
            ("GET", "/view_metadata/{folder}", self.not_found),
            ("GET", "/system_stats", self.system_stats),
            ("GET", "/features", self.features),
            ("GET", "/prompt", self.get_prompt),
            ("POST", "/prompt", self.post_prompt),
            ("GET", "/queue", self.get_queue),
            ("POST", "/queue", self.post_queue),
            ("GET", "/history", self.get_history),
            ("GET", "/history/{prompt_id}", self.get_history_item),
            ("POST", "/history", self.post_history),
            ("POST", "/interrupt", self.interrupt),
            ("POST", "/free", self.free),
            ("GET", "/view", self.view),
            ("POST", "/upload/image", self.upload_image),
            ("POST", "/upload/mask", self.upload_mask),
        ]
