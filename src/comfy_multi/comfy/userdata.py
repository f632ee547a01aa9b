"""Settings and userdata routes (ComfyUI app/app_settings.py, app/user_manager.py),
each reading and writing only the signed-in participant's user directory."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import anyio.to_thread
import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse

from comfy_multi.comfy.access import Participant
from comfy_multi.comfy.state import State
from comfy_multi.comfy.userdir import UserDirs, file_info
from comfy_multi.errors import BadRequest, Forbidden, NotFound
from comfy_multi.services import jsonbody

router = APIRouter()

# the page asks for these whether or not the user has one; an empty answer
# keeps a clean console where ComfyUI would 404
EMPTY_DEFAULTS = {
    "user.css": (b"", "text/css"),
    "comfy.templates.json": (b"[]", "application/json"),
    "workflows/.index.json": (b'{"favorites": []}', "application/json"),  # bookmarks
}


def _true(value: str | None) -> bool:
    return (value or "").lower() == "true"


# settings -----------------------------------------------------------------------


@router.get("/settings")
async def get_settings(user: Participant, state: State) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(state.dirs.load_settings, user.name)


@router.get("/settings/{setting_id}")
async def get_setting(setting_id: str, user: Participant, state: State) -> Response:
    values = await anyio.to_thread.run_sync(state.dirs.load_settings, user.name)
    return Response(orjson.dumps(values.get(setting_id)), media_type="application/json")


async def _update(state: State, user: str, changes: dict[str, Any]) -> None:
    dirs = state.dirs
    async with dirs.lock(user):  # concurrent saves from one page must not lose a change
        values = await anyio.to_thread.run_sync(dirs.load_settings, user)
        values.update(changes)
        await anyio.to_thread.run_sync(dirs.save_settings, user, values)


async def _json(request: Request) -> Any:
    return await jsonbody.read(request)


@router.post("/settings")
async def post_settings(request: Request, user: Participant, state: State) -> Response:
    changes = await _json(request)
    if not isinstance(changes, dict):
        raise BadRequest("settings must be a JSON object")
    await _update(state, user.name, changes)
    return Response(status_code=200)


@router.post("/settings/{setting_id}")
async def post_setting(
    setting_id: str, request: Request, user: Participant, state: State
) -> Response:
    await _update(state, user.name, {setting_id: await _json(request)})
    return Response(status_code=200)


# userdata -----------------------------------------------------------------------


@router.get("/userdata")
async def list_userdata(request: Request, user: Participant, state: State) -> Any:
    q = request.query_params
    directory = q.get("dir", "")
    if not directory:
        return PlainTextResponse("Directory not provided", status_code=400)
    entries = await anyio.to_thread.run_sync(
        lambda: state.dirs.listing(user.name, directory, recurse=_true(q.get("recurse")))
    )
    if _true(q.get("full_info")):
        return [file_info(rel, path) for rel, path in entries]
    if _true(q.get("split")):
        return [[rel, *rel.split("/")] for rel, _ in entries]
    return [rel for rel, _ in entries]


def _split_raw(request: Request, file: str) -> tuple[str, str | None]:
    """(file, move destination or None) from the still-encoded path, where a
    name's own slashes are %2F and `/move/` separates the two."""
    raw = request.scope.get("raw_path")
    name = request.path_params.get("name", "")
    if not isinstance(raw, bytes):
        return file, None
    for prefix in (f"/u/{name}/api/userdata/", f"/u/{name}/userdata/"):
        if raw.startswith(prefix.encode()):
            rest = raw[len(prefix) :].decode("latin-1")
            source, sep, dest = rest.partition("/move/")
            if sep:
                return unquote(source), unquote(dest)
            return unquote(rest), None
    return file, None


# userdata is whatever a participant saved: the page reads it with fetch() (workflows,
# templates) or as a stylesheet (user.css), never as a document, so a browser opening
# one directly downloads it, and could not run it as a page anyway
SERVED_AS_DATA = {
    "Cache-Control": "no-cache",
    "Content-Disposition": "attachment",
    "Content-Security-Policy": "sandbox",
}
PASSIVE_TYPES = {".json": "application/json", ".css": "text/css"}


@router.get("/userdata/{file:path}")
async def get_userdata(file: str, request: Request, user: Participant, state: State) -> Response:
    file, _ = _split_raw(request, file)
    try:
        path = state.dirs.read_path(user.name, file)
    except NotFound:
        if file in EMPTY_DEFAULTS:
            body, media_type = EMPTY_DEFAULTS[file]
            return Response(body, media_type=media_type, headers=SERVED_AS_DATA)
        raise
    media_type = PASSIVE_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return FileResponse(path, media_type=media_type, headers=SERVED_AS_DATA)


def _reply(dirs: UserDirs, user: str, path: Path, full_info: bool) -> JSONResponse:
    rel = path.relative_to(dirs.root(user).resolve()).as_posix()
    return JSONResponse(file_info(rel, path) if full_info else rel)


@router.post("/userdata/{file:path}")
async def post_userdata(file: str, request: Request, user: Participant, state: State) -> Response:
    file, dest = _split_raw(request, file)
    overwrite = request.query_params.get("overwrite", "true") != "false"
    full_info = _true(request.query_params.get("full_info"))
    dirs = state.dirs
    if dest is not None:
        return await _move(dirs, user.name, file, dest, overwrite=overwrite, full_info=full_info)
    path = dirs.resolve(user.name, file)
    if not overwrite and (path.exists() or dirs.shared_file(file)):
        return PlainTextResponse("File already exists", status_code=409)
    body = await request.body()
    await anyio.to_thread.run_sync(dirs.write_atomic, path, body)
    return _reply(dirs, user.name, path, full_info)


async def _move(
    dirs: UserDirs, user: str, source: str, dest: str, *, overwrite: bool, full_info: bool
) -> Response:
    origin = dirs.read_path(user, source)
    target = dirs.resolve(user, dest)
    if not overwrite and target.exists():
        return PlainTextResponse("File already exists", status_code=409)
    target.parent.mkdir(parents=True, exist_ok=True)
    if origin.is_relative_to(dirs.root(user).resolve()):
        await anyio.to_thread.run_sync(shutil.move, origin, target)
    else:  # a shared workflow stays for everyone; the participant gets a copy
        await anyio.to_thread.run_sync(shutil.copyfile, origin, target)
    return _reply(dirs, user, target, full_info)


@router.delete("/userdata/{file:path}")
async def delete_userdata(file: str, request: Request, user: Participant, state: State) -> Response:
    file, _ = _split_raw(request, file)
    path = state.dirs.resolve(user.name, file)
    if not path.is_file():
        if state.dirs.shared_file(file):
            raise Forbidden("workshop and example workflows are shared and cannot be deleted")
        raise NotFound(f"no userdata file {file!r}")
    path.unlink()
    return Response(status_code=204)
