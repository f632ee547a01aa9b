"""The routes the frontend reads at page load that describe the server: feature
flags, system stats, extensions, node definitions, models, and the empty
answers for what a room without a local ComfyUI has none of (logs, templates,
subgraphs, embeddings)."""

from __future__ import annotations

import os
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import orjson
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from comfy_multi import __version__
from comfy_multi.comfy.access import Participant
from comfy_multi.comfy.state import State
from comfy_multi.queue import room
from comfy_multi.services.auth import PlatformDep
from comfy_multi.services.platform import Platform
from comfy_multi.settings import Settings

router = APIRouter()
internal = APIRouter()

EXTENSION = "/extensions/comfy_multi/comfy_multi.js"


def frontend_version() -> str:
    try:
        return version("comfyui-frontend-package")
    except PackageNotFoundError:  # pragma: no cover - the wheel is a dependency
        return ""


def feature_flags(settings: Settings) -> dict[str, Any]:
    """What this server supports, as ComfyUI's /features and websocket reply say it."""
    return {
        "supports_preview_metadata": True,
        "max_upload_size": settings.max_upload_bytes,
        "extension": {"manager": {"supports_v4": False}},
        "node_replacements": False,
        "assets": False,
        # the comfy.org account button makes no sense in a room's workspace
        "show_signin_button": False,
    }


def json_bytes(data: Any) -> Response:
    """Large replies (object_info is megabytes) encoded with orjson."""
    return Response(orjson.dumps(data), media_type="application/json")


@router.get("/features")
async def features(_: Participant, platform: PlatformDep) -> dict[str, Any]:
    return feature_flags(platform.settings)


def _memory() -> tuple[int, int]:
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return page * os.sysconf("SC_PHYS_PAGES"), page * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not every OS names these
        return 0, 0


async def _comfyui_version(platform: Platform) -> str:
    for worker in await platform.workers.list():
        if worker.comfyui_version:
            return worker.comfyui_version
    return ""


@router.get("/system_stats")
async def system_stats(_: Participant, platform: PlatformDep) -> dict[str, Any]:
    ram_total, ram_free = _memory()
    return {
        "system": {
            "os": os.name,
            "ram_total": ram_total,
            "ram_free": ram_free,
            "comfyui_version": await _comfyui_version(platform),
            "required_frontend_version": frontend_version(),
            "python_version": sys.version,
            "pytorch_version": "",
            "embedded_python": False,
            "argv": ["comfy-multi", "up"],
            "comfy_multi_version": __version__,
        },
        # the GPUs sit with the workers; the room's state is on the admin page
        "devices": [],
    }


@router.get("/extensions")
async def extensions(_: Participant, platform: PlatformDep) -> list[str]:
    """Ours, then every custom node's web extension the workers' ComfyUI serves."""
    from_workers = await platform.extensions.merged()
    return [EXTENSION, *sorted(p for p in from_workers if p.endswith(".js"))]


@router.get("/users")
async def users(_: Participant) -> dict[str, Any]:
    # the single-user form: the multi-user form would show ComfyUI's user picker
    return {"storage": "server", "migrated": True}


@router.get("/object_info")
async def object_info(user: Participant, state: State) -> Response:
    return json_bytes(await state.object_info_for(user.name))


@router.get("/object_info/{node_class}")
async def object_info_one(node_class: str, user: Participant, state: State) -> Response:
    info = await state.object_info_for(user.name)
    return json_bytes({node_class: info[node_class]} if node_class in info else {})


async def _models(platform: Platform) -> dict[str, list[str]]:
    """Model files per folder, the union over every registered worker."""
    merged: dict[str, set[str]] = {}
    for worker in await platform.workers.list():
        raw = await room.worker_models(platform.redis, worker.worker_id)
        for folder, names in (orjson.loads(raw) if raw else {}).items():
            if isinstance(names, list):
                merged.setdefault(str(folder), set()).update(str(n) for n in names)
    return {folder: sorted(names) for folder, names in sorted(merged.items())}


@router.get("/models")
async def model_folders(_: Participant, platform: PlatformDep) -> list[str]:
    return list(await _models(platform))


@router.get("/models/{folder}")
async def model_files(folder: str, _: Participant, platform: PlatformDep) -> list[str]:
    return (await _models(platform)).get(folder, [])


@router.get("/experiment/models")
async def experiment_models(_: Participant, platform: PlatformDep) -> list[dict[str, Any]]:
    return [{"name": folder, "folders": [folder]} for folder in await _models(platform)]


@router.get("/experiment/models/{folder}")
async def experiment_model_files(
    folder: str, _: Participant, platform: PlatformDep
) -> list[dict[str, Any]]:
    names = (await _models(platform)).get(folder, [])
    return [{"name": name, "pathIndex": 0} for name in names]


@router.get("/embeddings")
async def embeddings(_: Participant) -> list[str]:
    return []


@router.get("/i18n")
async def i18n(_: Participant) -> dict[str, Any]:
    return {}


@router.get("/workflow_templates")
async def workflow_templates(_: Participant) -> dict[str, Any]:
    return {}


@router.get("/global_subgraphs")
async def global_subgraphs(_: Participant) -> dict[str, Any]:
    return {}


@router.get("/node_replacements")
async def node_replacements(_: Participant) -> dict[str, Any]:
    return {}


@router.post("/free")
async def free(_: Participant) -> Response:
    # model memory lives on the workers, which manage it themselves
    return Response(status_code=200)


@router.get("/view_metadata/{folder}")
async def view_metadata(folder: str, _: Participant) -> JSONResponse:
    return JSONResponse(
        {"error": "not_found", "message": "no model metadata here"}, status_code=404
    )


# /internal (no /api prefix): the logs panel and folder browsers ---------------


@internal.get("/logs")
async def logs(_: Participant) -> str:
    return ""


@internal.get("/logs/raw")
async def logs_raw(_: Participant) -> dict[str, Any]:
    return {"entries": [], "size": {"cols": 80, "rows": 24}}


@internal.patch("/logs/subscribe")
async def logs_subscribe(_: Participant) -> Response:
    return Response(status_code=200)


@internal.get("/folder_paths")
async def folder_paths(_: Participant) -> dict[str, Any]:
    return {}


@internal.get("/files/{directory_type}")
async def internal_files(directory_type: str, _: Participant) -> list[str]:
    return []
