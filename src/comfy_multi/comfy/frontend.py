"""The stock ComfyUI frontend (the pinned `comfyui-frontend-package` wheel) at /u/<name>/.

The wheel's index.html uses relative URLs only, so its static folder works
as-is under the prefix. The page itself is the owner's alone (signed-out
visitors go to /login, others get 403); the bundle's files are the same for
everyone and served to anyone.

A page that has no workflow of its own yet (a new participant, a new
browser) opens the workshop's workflows instead of ComfyUI's model-hungry
default graph, through the frontend's own `?workflows=<folder>` link.
"""

from __future__ import annotations

import json
import mimetypes
from functools import cache
from pathlib import Path
from urllib.parse import quote

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from comfy_multi.comfy import bundle
from comfy_multi.comfy.access import Participant
from comfy_multi.comfy.state import State
from comfy_multi.comfy.userdir import EXAMPLES, WORKSHOP
from comfy_multi.errors import NotFound
from comfy_multi.services import media, pages, templates
from comfy_multi.services.auth import PlatformDep, signed_in

router = APIRouter()

OWN_STATIC = Path(__file__).parent / "static"
IMMUTABLE = "public, max-age=31536000, immutable"  # assets/ names carry a content hash

# Runs before the bundle: only when this browser holds no workflow draft, so
# a returning participant's open tabs are never replaced.
_OPEN_FOLDER = """<script>(function(){try{
var q=new URLSearchParams(location.search);
var drafts=Object.keys(localStorage).some(function(k){
return k.indexOf("Comfy.Workflow.Draft")===0||k==="workflow"});
if(!q.has("workflows")&&!drafts){q.set("workflows",%s);
history.replaceState(history.state,"",location.pathname+"?"+q+location.hash)}
}catch(e){}})()</script>"""


@cache
def _index() -> str:
    return (bundle.STATIC / "index.html").read_text()


def index_html(folder: str) -> str:
    html = _index()
    marker = '<script type="module"'
    return html.replace(marker, _OPEN_FOLDER % json.dumps(folder) + marker, 1)


def start_folder(state: State) -> str:
    """The instructor's folder when it has workflows, else the shipped examples."""
    workshop = next(s for s in state.dirs.shared if s.name == WORKSHOP)
    has_top_level = workshop.path.is_dir() and any(workshop.path.glob("*.json"))
    return WORKSHOP if has_top_level else EXAMPLES


@router.get("/u/{name}")
async def add_slash(name: str, request: Request) -> Response:
    # without the slash the frontend takes /u as its base and every call breaks
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"/u/{name}/{query}", status_code=307)


@router.get("/u/{name}/")
async def workspace(name: str, request: Request, state: State) -> Response:
    user = await signed_in(request)
    if user is None:
        return RedirectResponse(f"/login?next=/u/{name}/", status_code=303)
    if user.name != name:
        return HTMLResponse(pages.not_yours(user.name, name), status_code=403)
    # seed a new participant's settings before the page asks for them
    await anyio.to_thread.run_sync(state.dirs.welcome, user.name, state.input_folder(user.name))
    return HTMLResponse(index_html(start_folder(state)), headers={"Cache-Control": "no-store"})


@router.get("/u/{name}/user.css")
async def user_css(name: str) -> Response:
    return Response(b"", media_type="text/css", headers={"Cache-Control": "no-cache"})


@router.get("/u/{name}/templates/{file}")
async def template(name: str, file: str, _: Participant, state: State) -> Response:
    """ComfyUI's template gallery (/templates, static in ComfyUI): upstream's
    templates this room can run, after the workshop's own workflows."""
    if templates.is_index(file):
        merged = await state.platform.workers.merged_object_info()
        workshop = workshop_workflows(state)
        body = await anyio.to_thread.run_sync(
            templates.room_index, file, merged, [(n, t) for n, t, _ in workshop]
        )
        return Response(json.dumps(body), media_type="application/json")
    if file.startswith(templates.WORKSHOP_PREFIX) and file.endswith(".json"):
        wanted = file.removesuffix(".json")
        for template_name, _title, path in workshop_workflows(state):
            if template_name == wanted:
                return FileResponse(path, media_type="application/json")
        raise NotFound(f"no workshop workflow {file!r}")
    if file.startswith(templates.WORKSHOP_PREFIX) and file.endswith(".webp"):
        # workshop workflows have no thumbnail of their own: a plain card
        return Response(templates.placeholder_thumbnail(), media_type="image/webp")
    found = templates.template_file(file)
    if found is None and file == "index_logo.json":
        return Response(b"{}", media_type="application/json")  # newer packages ship logos
    if found is None:
        raise NotFound(f"no template file {file!r}")
    return FileResponse(found, media_type=media.content_type(found.name))


def workshop_workflows(state: State) -> list[tuple[str, str, Path]]:
    """(template name, title, file) of the workflows a new page opens with."""
    folder = next(s for s in state.dirs.shared if s.name == start_folder(state))
    return [
        (f"{templates.WORKSHOP_PREFIX}{path.stem}", path.stem, path)
        for path in sorted(folder.path.glob("*.json"))
        if path.is_file()
    ]


@router.get("/u/{name}/extensions/comfy_multi/{file}")
async def own_extension(name: str, file: str) -> Response:
    path = OWN_STATIC / Path(file).name
    if not path.is_file():
        raise NotFound(f"no extension file {file!r}")
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "no-cache"})


@router.get("/u/{name}/extensions/{path:path}")
async def worker_extension(name: str, path: str, _: Participant, platform: PlatformDep) -> Response:
    """A custom node's web file, as the workers' ComfyUI serves it."""
    merged = await platform.extensions.merged()
    # ComfyUI lists a custom node's folder URL-quoted; the route gets it decoded
    sha = merged.get(f"/extensions/{path}") or merged.get(f"/extensions/{quote(path)}")
    if sha is None:
        raise NotFound(f"no extension file {path!r}")
    return FileResponse(
        platform.extension_files.find(sha),
        media_type=media.content_type(path) if not path.endswith(".js") else "text/javascript",
        # the page asks again on each load; the ETag makes that a 304
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/u/{name}/{path:path}")
async def bundle_file(name: str, path: str, request: Request, state: State) -> Response:
    target = bundle.static_file(path)
    mime = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    headers = {
        "Cache-Control": IMMUTABLE if path.startswith("assets/") else "no-cache",
        "Vary": "Accept-Encoding",
    }
    if "gzip" in request.headers.get("accept-encoding", ""):
        packed = await bundle.gzipped(target, state.platform.settings.data_dir)
        if packed is not None:
            headers["Content-Encoding"] = "gzip"
            return FileResponse(packed, media_type=mime, headers=headers)
    return FileResponse(target, media_type=mime, headers=headers)
