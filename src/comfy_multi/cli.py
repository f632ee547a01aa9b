"""The `comfy-multi` command: start the platform, manage the room, run a worker."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from redis.asyncio import Redis
from redis.exceptions import RedisError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from comfy_multi import logs
from comfy_multi.backup_cli import backup_command, restore_command
from comfy_multi.datadir import make_private
from comfy_multi.errors import ComfyMultiError, ConfigError, RequestError
from comfy_multi.gpuhost.cli import gpu_host_app, models_app
from comfy_multi.netaddr import is_loopback_host
from comfy_multi.queue.room_clock import mark_started, mark_stopped, uptime_seconds
from comfy_multi.room import NoRoom, Room, RunningRoom, announce, find_room, redact, withdraw
from comfy_multi.services.users import UserStore, password_hasher
from comfy_multi.settings import Settings, load_settings
from comfy_multi.store.connection import connect
from comfy_multi.store.embedded import EmbeddedRedis
from comfy_multi.wording import plural
from comfy_multi.worker.command import worker_command
from comfy_multi.workflows_folder import ensure_workflows_folder

app = typer.Typer(
    name="comfy-multi",
    help="The real ComfyUI for a room full of people, with one fair queue and shared GPUs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
user_app = typer.Typer(help="Participants and instructors.", no_args_is_help=True)
token_app = typer.Typer(help="Tokens that let GPU workers join.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="worker-token")
app.command("worker")(worker_command)
app.add_typer(models_app, name="models")
app.add_typer(gpu_host_app, name="gpu-host")
app.command("backup")(backup_command)
app.command("restore")(restore_command)

console = Console()
err = Console(stderr=True)
T = TypeVar("T")

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where state lives (env COMFY_MULTI_DATA_DIR, default ./data).",
        show_default=False,
    ),
]


def _settings(data_dir: Path | None, **overrides: Any) -> Settings:
    return load_settings(data_dir=data_dir, **overrides)


def fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code=1)


@contextlib.contextmanager
def redis_url_for_cli(settings: Settings) -> Iterator[str]:
    """REDIS_URL, or the data dir's embedded Redis: the running one of `up`,
    else started for this command and stopped after it."""
    if settings.redis_url:
        yield settings.redis_url
        return
    embedded = EmbeddedRedis(settings.redis_dir, settings.redis_maxmemory_mb)
    if embedded.running_pid() is not None:
        yield embedded.url
        return
    embedded.start(adopt=False)
    try:
        yield embedded.url
    finally:
        embedded.stop()


def _users(redis: Redis, settings: Settings) -> UserStore:
    return UserStore(redis, hasher=password_hasher(settings.password_hashing))


def open_room(data_dir: Path | None) -> Room:
    """The room a command acts on, named on the command's first line; or exit 1 saying
    how to point the command at one. Never creates a room."""
    try:
        room = find_room(_settings(data_dir))
    except ConfigError as exc:
        raise fail(str(exc)) from None
    console.print(room.describe(), style="dim", highlight=False, soft_wrap=True)
    return room


async def _holds_a_room(redis: Redis, settings: Settings) -> None:
    """A Redis given by REDIS_URL that `up` never used is refused, not filled."""
    if settings.redis_url and not await UserStore(redis).list():
        raise NoRoom(
            f"the Redis at {redact(settings.redis_url)} holds no comfy-multi room "
            "(no users): start `comfy-multi up` with this REDIS_URL first, or point the "
            "command elsewhere"
        )


def run_with_redis(
    settings: Settings, work: Callable[[Redis], Awaitable[T]], *, room: bool = True
) -> T:
    async def main(url: str) -> T:
        redis = connect(url)
        try:
            if room:
                await _holds_a_room(redis, settings)
            return await work(redis)
        finally:
            await redis.aclose()

    try:
        with redis_url_for_cli(settings) as url:
            return asyncio.run(main(url))
    except RequestError as exc:
        raise fail(exc.message) from None
    except (ComfyMultiError, RedisError) as exc:
        raise fail(str(exc)) from None


# up -------------------------------------------------------------------------


@contextlib.contextmanager
def _single_up(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = (data_dir / "up.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise fail(f"another 'comfy-multi up' is already running on {data_dir}") from None
    try:
        yield
    finally:
        lock.close()


async def _first_admin(redis: Redis, settings: Settings) -> Path | None:
    """On a brand-new platform, an admin to sign in with; its password goes
    to a private file, never to the log."""
    users = UserStore(redis, hasher=password_hasher(settings.password_hashing))
    if await users.list():
        return None
    password = await users.add("admin", admin=True)
    path = settings.data_dir / "initial-admin-password"
    path.touch(mode=0o600)
    path.write_text(password + "\n")
    return path


class _Stopped(Exception):
    pass


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """uvicorn re-raises the signal that stopped it once it has shut down; turn
    that into an exception so the embedded Redis is still stopped cleanly."""

    def stop(signum: int, frame: object) -> None:
        raise _Stopped

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    except _Stopped:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _warn_if_unreachable(settings: Settings, base: str) -> None:
    """The two lines that open a room to the network, said where the instructor looks."""
    if settings.public_url:
        console.print(f"Sign-in sheets print {settings.public_url.rstrip('/')}/")
        return
    if is_loopback_host(settings.host):
        console.print(
            "[yellow]Only this computer can open it.[/] To open the room to the network, "
            "start it with --host 0.0.0.0 and set COMFY_MULTI_PUBLIC_URL to the address "
            f"participants type (e.g. http://192.168.1.20:{settings.port})."
        )
    else:
        console.print(
            "[yellow]No COMFY_MULTI_PUBLIC_URL:[/] sign-in sheets print the address the "
            "dashboard was opened with; open it with the address participants will use."
        )


def _now_ms() -> int:
    return int(time.time() * 1000)


def _mark_stopped(settings: Settings, embedded: EmbeddedRedis | None) -> None:
    """For the report's uptime; a Redis already gone only costs that figure."""
    url = settings.redis_url or (embedded.url if embedded else "")
    with contextlib.suppress(typer.Exit, ComfyMultiError, RedisError, OSError):
        run_with_redis(
            settings.model_copy(update={"redis_url": url}),
            lambda r: mark_stopped(r, _now_ms()),
            room=False,
        )


@app.command()
def up(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", min=1, max=64, help="Gateway processes sharing the port (one per core)."
        ),
    ] = 1,
) -> None:
    """Start the gateway (and, without REDIS_URL, the embedded Redis)."""
    from comfy_multi.serve import serve
    from comfy_multi.store.watchdog import RedisWatchdog

    try:
        settings = _settings(data_dir, host=host, port=port)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    logs.configure(settings.log_level, json=settings.log_json)
    embedded = (
        None
        if settings.redis_url
        else EmbeddedRedis(settings.redis_dir, settings.redis_maxmemory_mb)
    )
    watchdog = None
    make_private(settings.data_dir)
    with _single_up(settings.data_dir):
        try:
            if embedded:
                embedded.start()
                watchdog = RedisWatchdog(embedded)
                watchdog.start()
            url = settings.redis_url or (embedded.url if embedded else "")
            with_url = settings.model_copy(update={"redis_url": url})
            first = run_with_redis(with_url, lambda r: _first_admin(r, settings), room=False)
            run_with_redis(with_url, lambda r: mark_started(r, _now_ms()), room=False)
            readme = ensure_workflows_folder(settings.workflows_dir)
            base = f"http://{settings.host}:{settings.port}"
            processes = f" with {workers} gateway processes" if workers > 1 else ""
            console.print(
                f"[bold green]comfy-multi[/] is starting at {base}/{processes}  "
                f"(admin page: {base}/admin)"
            )
            if first:
                console.print(
                    f"First start: the user [bold]admin[/] was created; its password is in {first}"
                )
            if readme:
                console.print(f"Put the workshop's workflows in {readme.parent}/ (see README.md)")
            _warn_if_unreachable(settings, base)
            announce(
                settings,
                RunningRoom(
                    data_dir=str(settings.data_dir.resolve()),
                    pid=os.getpid(),
                    address=base,
                    public_url=(settings.public_url or base).rstrip("/"),
                    started_ms=_now_ms(),
                ),
            )
            with _stop_on_signals():
                serve(settings.model_copy(update={"redis_url": url}), workers)
        except ConfigError as exc:
            raise fail(str(exc)) from None
        finally:
            if watchdog:
                watchdog.stop()
            withdraw(settings, settings.data_dir)
            _mark_stopped(settings, embedded)
            if embedded:
                embedded.stop()


# users ----------------------------------------------------------------------


@user_app.command("add")
def user_add(
    name: Annotated[
        str | None, typer.Argument(help="Lowercase name; also the workspace URL /u/NAME/.")
    ] = None,
    password: Annotated[str | None, typer.Option(help="Default: a generated one, printed.")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="The instructor role.")] = False,
    from_csv: Annotated[
        Path | None,
        typer.Option(
            "--from-csv",
            help="Add a class list instead: a CSV file of name[,password] per line.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Add a participant (or, with --admin, an instructor), or a whole class list."""
    if from_csv is not None and name is not None:
        raise fail("give either NAME or --from-csv FILE, not both")
    if from_csv is None and name is None:
        raise fail("give a NAME (or --from-csv FILE)")
    settings = open_room(data_dir).settings
    if from_csv is not None:
        _add_class_list(settings, from_csv, admin)
        return
    assert name is not None
    pw = run_with_redis(settings, lambda r: _users(r, settings).add(name, password, admin=admin))
    console.print(f"added [bold]{name}[/]{' (admin)' if admin else ''}")
    if password is None:
        console.print(f"password: [bold]{pw}[/]")


def _add_class_list(settings: Settings, path: Path, admin: bool) -> None:
    from comfy_multi.admin.roster import add_class_list, read_class_list

    rows = read_class_list(path)
    if not rows:
        raise fail(f"{path} has no names (one name[,password] per line)")
    added = run_with_redis(
        settings,
        lambda r: add_class_list(_users(r, settings), rows, admin=admin),
    )
    table = Table("name", "password", "workspace", title=f"added from {path.name}")
    for a in added:
        if a.password is None:
            table.add_row(a.name, f"[red]not added: {a.problem}[/]", "")
        else:
            table.add_row(a.name, a.password, f"/u/{a.name}/")
    console.print(table)
    refused = sum(a.password is None for a in added)
    if refused:
        was = "was" if refused == 1 else "were"
        raise fail(f"{refused} of {plural(len(added), 'name')} {was} not added")


@user_app.command("list")
def user_list(data_dir: DataDir = None) -> None:
    """List every user."""
    settings = open_room(data_dir).settings
    users = run_with_redis(settings, lambda r: _users(r, settings).list())
    table = Table("name", "role", "workspace")
    for u in users:
        table.add_row(u.name, "admin" if u.admin else "participant", f"/u/{u.name}/")
    console.print(table)


@user_app.command("remove")
def user_remove(
    name: str,
    archive: Annotated[
        bool, typer.Option("--archive", help="Keep their files under <data dir>/archive/.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Remove a person: sign-ins, waiting jobs and history end; files are deleted
    (or, with --archive, kept under the data dir). Says what was removed."""
    from comfy_multi.services.removal import remove_person

    settings = open_room(data_dir).settings
    removed = run_with_redis(settings, lambda r: remove_person(r, settings, name, archive=archive))
    console.print(removed.summary(), highlight=False)


@user_app.command("tokens")
def user_tokens(name: str, data_dir: DataDir = None) -> None:
    """List a person's API tokens (ids only; the tokens themselves are not stored)."""
    settings = open_room(data_dir).settings

    async def work(r: Redis) -> list[Any]:
        await _users(r, settings).get(name)
        return await _users(r, settings).api_tokens(name)

    table = Table("id", "label", "created", "expires")
    for t in run_with_redis(settings, work):
        table.add_row(t.id, t.label, _when(t.created_ms), _when(t.expires_ms) or "never")
    console.print(table)


@user_app.command("revoke-token")
def user_revoke_token(
    name: str,
    token_id: Annotated[str | None, typer.Argument(help="From `user tokens NAME`.")] = None,
    all_tokens: Annotated[bool, typer.Option("--all", help="Revoke every token.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Revoke one API token of a person (or --all); refused from the next request."""
    settings = open_room(data_dir).settings
    if all_tokens == (token_id is not None):
        raise fail("give either a TOKEN_ID or --all")

    async def work(r: Redis) -> str:
        store = _users(r, settings)
        await store.get(name)
        if token_id is None:
            return f"revoked {await store.revoke_api_tokens(name)} API token(s) of {name}"
        revoked = await store.revoke_api_token(name, token_id)
        return f"revoked API token {revoked.id} of {name}"

    console.print(run_with_redis(settings, work), highlight=False)


def _when(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M") if ms else ""


@user_app.command("password")
def user_password(
    name: str,
    password: Annotated[str | None, typer.Option(help="Default: a generated one, printed.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Reset a user's password (their open sessions end)."""
    settings = open_room(data_dir).settings
    pw = run_with_redis(settings, lambda r: _users(r, settings).set_password(name, password))
    console.print(f"password of [bold]{name}[/] reset")
    if password is None:
        console.print(f"password: [bold]{pw}[/]")


# worker tokens --------------------------------------------------------------


@token_app.command("create")
def token_create(name: str, data_dir: DataDir = None) -> None:
    """Create (or replace) the token a worker uses to join; printed once."""
    settings = open_room(data_dir).settings
    token = run_with_redis(settings, lambda r: _users(r, settings).create_worker_token(name))
    console.print(f"worker token [bold]{name}[/]:")
    console.print(token, soft_wrap=True, highlight=False)


@token_app.command("list")
def token_list(data_dir: DataDir = None) -> None:
    """Names of the worker tokens (the tokens themselves are not stored)."""
    settings = open_room(data_dir).settings
    for name in run_with_redis(settings, lambda r: _users(r, settings).worker_token_names()):
        console.print(name)


@token_app.command("revoke")
def token_revoke(name: str, data_dir: DataDir = None) -> None:
    """Revoke a worker token; workers using it are refused from now on."""
    settings = open_room(data_dir).settings
    if not run_with_redis(settings, lambda r: _users(r, settings).revoke_worker_token(name)):
        raise fail(f"no worker token named {name!r}")
    console.print(f"revoked [bold]{name}[/]")


@app.command("forget-worker")
def forget_worker(
    name: Annotated[
        str, typer.Argument(help="A worker's id, the name it started with, or its token's name.")
    ],
    data_dir: DataDir = None,
) -> None:
    """Take an offline worker off the dashboard and `status` (its jobs stay in the report)."""
    from comfy_multi.queue.workers import WorkerRegistry

    settings = _settings(data_dir)
    gone = run_with_redis(settings, lambda r: WorkerRegistry(r, settings).forget_offline(name))
    console.print(f"forgot {', '.join(f'[bold]{w}[/]' for w in gone)}")


# status ---------------------------------------------------------------------


@app.command()
def status(data_dir: DataDir = None) -> None:
    """The state of the room: queue depth per class, running jobs, workers, users."""
    from comfy_multi.status import gather_status, render_status

    settings = open_room(data_dir).settings
    snapshot = run_with_redis(settings, lambda r: gather_status(r, settings))
    render_status(console, snapshot)


# check ----------------------------------------------------------------------

MARKS = {True: "[green]✓[/]", False: "[bold red]✗[/]", None: "[dim]·[/]"}


@app.command()
def check(
    job_timeout: Annotated[
        float, typer.Option(help="Seconds the test job may take, waiting included.")
    ] = 180.0,
    no_job: Annotated[bool, typer.Option("--no-job", help="Skip the test job.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Before a workshop: the public URL answers, every worker has what the workflows
    need, every workflow can run, and a real test job runs end to end. Exits 1 on red."""
    from comfy_multi.services.platform import open_platform
    from comfy_multi.services.preflight import Line, preflight

    room = open_room(data_dir)
    settings = room.settings
    public_url = room.running.public_url if room.running else settings.public_url

    async def main(url: str) -> list[Line]:
        platform = await open_platform(settings.model_copy(update={"redis_url": url}), sweep=False)
        lines = []
        try:
            await _holds_a_room(platform.redis, settings)
            async for line in preflight(
                platform, public_url, job_timeout_s=job_timeout, run_job=not no_job
            ):
                mark = "[bold yellow]![/]" if line.warning else MARKS[line.ok]
                console.print(
                    f"{mark} [bold]{escape(line.what)}[/]: {escape(line.detail)}",
                    soft_wrap=True,
                    highlight=False,
                )
                lines.append(line)
        finally:
            await platform.close()
        return lines

    try:
        with redis_url_for_cli(settings) as url:
            lines = asyncio.run(main(url))
    except (ComfyMultiError, RedisError) as exc:
        raise fail(str(exc)) from None
    failed = sum(line.ok is False for line in lines)
    if failed:
        raise fail(f"{plural(failed, 'check')} failed")
    console.print("[bold green]Ready:[/] every check passed.")


# report ---------------------------------------------------------------------


@app.command()
def report(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Directory for the figures (CSV, JSON) and a zip of each person's outputs.",
            file_okay=False,
        ),
    ] = None,
    since: Annotated[
        datetime | None,
        typer.Option(
            help="Only jobs queued from then on (local time), e.g. 2026-11-23 or 2026-11-23T09:00.",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """After a workshop: jobs, waits, run times, failures and GPU use per person;
    with --out, every person's outputs as a zip to hand out."""
    from comfy_multi.admin.feedback_out import render_feedback, write_feedback
    from comfy_multi.admin.report import Report, gather_jobs, summarize
    from comfy_multi.admin.report_out import render, write_figures, zip_outputs
    from comfy_multi.queue.feedback import FeedbackBox
    from comfy_multi.queue.models import Job
    from comfy_multi.queue.workers import WorkerRegistry

    room = open_room(data_dir)
    settings = room.settings
    since_ms = int(since.timestamp() * 1000) if since else None

    async def gather(redis: Redis) -> tuple[Report, list[Job]]:
        jobs = await gather_jobs(redis, since_ms)
        workers = await WorkerRegistry(redis, settings).list()
        uptime = await uptime_seconds(redis, _now_ms(), running=room.running is not None)
        return summarize(jobs, workers, uptime), jobs

    figures, jobs = run_with_redis(settings, gather)
    render(console, figures)
    answers = run_with_redis(settings, lambda r: FeedbackBox(r).list())
    render_feedback(console, answers)
    if out is not None:
        written = [*write_figures(figures, jobs, out), write_feedback(answers, out)]
        archives = zip_outputs(settings.users_dir, out, since_ms)
        console.print(f"wrote {', '.join(p.name for p in written)} to [bold]{out}[/]")
        for a in archives:
            console.print(f"  {a.path.name}: {plural(a.files, 'file')}, {a.bytes / 1e6:.1f} MB")


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        app()
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(1) from None
