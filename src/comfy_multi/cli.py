"""The `comfy-multi` command: start the platform, manage the room, run a worker."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from redis.asyncio import Redis
from redis.exceptions import RedisError
from rich.console import Console
from rich.table import Table

from comfy_multi import logs
from comfy_multi.errors import ComfyMultiError, ConfigError, RequestError
from comfy_multi.services.users import UserStore, password_hasher
from comfy_multi.settings import Settings, load_settings
from comfy_multi.store.connection import connect
from comfy_multi.store.embedded import EmbeddedRedis
from comfy_multi.worker.command import worker_command

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
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=1)


@contextlib.contextmanager
def redis_url_for_cli(settings: Settings) -> Iterator[str]:
    """REDIS_URL, or the data dir's embedded Redis: the running one of `up`,
    else started for this command and stopped after it."""
    if settings.redis_url:
        yield settings.redis_url
        return
    embedded = EmbeddedRedis(settings.redis_dir)
    if embedded.running_pid() is not None:
        yield embedded.url
        return
    embedded.start(adopt=False)
    try:
        yield embedded.url
    finally:
        embedded.stop()


def _users(redis: Redis, settings: Settings) -> UserStore:
    return UserStore(redis, password_hasher(settings.password_hashing))


def run_with_redis(settings: Settings, work: Callable[[Redis], Awaitable[T]]) -> T:
    async def main(url: str) -> T:
        redis = connect(url)
        try:
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
    users = UserStore(redis, password_hasher(settings.password_hashing))
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


@app.command()
def up(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
) -> None:
    """Start the gateway (and, without REDIS_URL, the embedded Redis)."""
    import uvicorn

    from comfy_multi.app import create_app
    from comfy_multi.gateway.server import GatewayServer

    try:
        settings = _settings(data_dir, host=host, port=port)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    logs.configure(settings.log_level, json=settings.log_json)
    embedded = None if settings.redis_url else EmbeddedRedis(settings.redis_dir)
    with _single_up(settings.data_dir):
        try:
            if embedded:
                embedded.start()
            url = settings.redis_url or (embedded.url if embedded else "")
            first = run_with_redis(
                settings.model_copy(update={"redis_url": url}),
                lambda r: _first_admin(r, settings),
            )
            base = f"http://{settings.host}:{settings.port}"
            console.print(
                f"[bold green]comfy-multi[/] is starting at {base}/  (admin page: {base}/admin)"
            )
            if first:
                console.print(
                    f"First start: the user [bold]admin[/] was created; its password is in {first}"
                )
            gateway = create_app(settings.model_copy(update={"redis_url": url}))
            config = uvicorn.Config(
                gateway,
                host=settings.host,
                port=settings.port,
                log_config=None,
                access_log=False,
                ws="websockets-sansio",
                timeout_graceful_shutdown=5,
            )
            with _stop_on_signals():
                GatewayServer(config, gateway).run()
        except ConfigError as exc:
            raise fail(str(exc)) from None
        finally:
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
    settings = _settings(data_dir)
    if from_csv is not None:
        if name is not None:
            raise fail("give either NAME or --from-csv FILE, not both")
        _add_class_list(settings, from_csv, admin)
        return
    if name is None:
        raise fail("give a NAME (or --from-csv FILE)")
    pw = run_with_redis(
        settings,
        lambda r: _users(r, settings).add(name, password, admin=admin),
    )
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
        raise fail(f"{refused} of {len(added)} name(s) were not added")


@user_app.command("list")
def user_list(data_dir: DataDir = None) -> None:
    """List every user."""
    settings = _settings(data_dir)
    users = run_with_redis(settings, lambda r: _users(r, settings).list())
    table = Table("name", "role", "workspace")
    for u in users:
        table.add_row(u.name, "admin" if u.admin else "participant", f"/u/{u.name}/")
    console.print(table)


@user_app.command("remove")
def user_remove(name: str, data_dir: DataDir = None) -> None:
    """Remove a user (their files stay in the data dir)."""
    settings = _settings(data_dir)
    run_with_redis(settings, lambda r: _users(r, settings).remove(name))
    console.print(f"removed [bold]{name}[/]")


@user_app.command("password")
def user_password(
    name: str,
    password: Annotated[str | None, typer.Option(help="Default: a generated one, printed.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Reset a user's password (their open sessions end)."""
    settings = _settings(data_dir)
    pw = run_with_redis(
        settings,
        lambda r: _users(r, settings).set_password(name, password),
    )
    console.print(f"password of [bold]{name}[/] reset")
    if password is None:
        console.print(f"password: [bold]{pw}[/]")


# worker tokens --------------------------------------------------------------


@token_app.command("create")
def token_create(name: str, data_dir: DataDir = None) -> None:
    """Create (or replace) the token a worker uses to join; printed once."""
    settings = _settings(data_dir)
    token = run_with_redis(
        settings,
        lambda r: _users(r, settings).create_worker_token(name),
    )
    console.print(f"worker token [bold]{name}[/]:")
    console.print(token, soft_wrap=True, highlight=False)


@token_app.command("list")
def token_list(data_dir: DataDir = None) -> None:
    """Names of the worker tokens (the tokens themselves are not stored)."""
    settings = _settings(data_dir)
    for name in run_with_redis(
        settings,
        lambda r: _users(r, settings).worker_token_names(),
    ):
        console.print(name)


@token_app.command("revoke")
def token_revoke(name: str, data_dir: DataDir = None) -> None:
    """Revoke a worker token; workers using it are refused from now on."""
    settings = _settings(data_dir)
    if not run_with_redis(
        settings,
        lambda r: _users(r, settings).revoke_worker_token(name),
    ):
        raise fail(f"no worker token named {name!r}")
    console.print(f"revoked [bold]{name}[/]")


# status ---------------------------------------------------------------------


@app.command()
def status(data_dir: DataDir = None) -> None:
    """The state of the room: queue depth per class, running jobs, workers, users."""
    from comfy_multi.status import gather_status, render_status

    settings = _settings(data_dir)
    snapshot = run_with_redis(settings, lambda r: gather_status(r, settings))
    render_status(console, snapshot)


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
    from comfy_multi.admin.report import gather_jobs, summarize
    from comfy_multi.admin.report_out import render, write_figures, zip_outputs

    settings = _settings(data_dir)
    since_ms = int(since.timestamp() * 1000) if since else None
    jobs = run_with_redis(settings, lambda r: gather_jobs(r, since_ms))
    figures = summarize(jobs)
    render(console, figures)
    if out is not None:
        written = write_figures(figures, jobs, out)
        archives = zip_outputs(settings.users_dir, out, since_ms)
        console.print(f"wrote {', '.join(p.name for p in written)} to [bold]{out}[/]")
        for a in archives:
            console.print(f"  {a.path.name}: {a.files} file(s), {a.bytes / 1e6:.1f} MB")


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        app()
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(1) from None
