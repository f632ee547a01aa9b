"""``comfy-multi worker``: run a GPU worker beside one ComfyUI server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from comfy_multi import logs
from comfy_multi.errors import ConfigError, Unauthorized
from comfy_multi.settings import Settings, load_settings
from comfy_multi.worker.errors import GatewayAnswerInvalid, GatewayRejected
from comfy_multi.worker.runner import Worker, WorkerConfig

EXIT_CONFIG = 2


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_CONFIG)


def _check_url(option: str, url: str) -> str:
    if not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1]) == 0:
        raise _fail(f"{option} must be an http:// or https:// URL, got {url!r}")
    return url.rstrip("/")


def config_from(settings: Settings, comfyui_input_dir: Path | None = None) -> WorkerConfig:
    """The worker's configuration; raises ``ConfigError`` with one readable line."""
    if not settings.worker_token:
        raise ConfigError(
            "no worker token: pass --token or set COMFY_MULTI_WORKER_TOKEN "
            "(an admin creates one with `comfy-multi worker-token create NAME`)"
        )
    if comfyui_input_dir is not None and not comfyui_input_dir.is_dir():
        raise ConfigError(f"--comfyui-input-dir {str(comfyui_input_dir)!r} is not a directory")
    return WorkerConfig(
        gateway_url=_check_url("--gateway", settings.gateway_url),
        token=settings.worker_token,
        comfyui_url=_check_url("--comfyui", settings.comfyui_url),
        name=settings.worker_name or "",
        job_timeout=settings.job_timeout_seconds,
        comfyui_input_dir=comfyui_input_dir,
    )


def worker_command(
    gateway: Annotated[
        str | None,
        typer.Option(
            "--gateway", metavar="URL", help="Gateway base URL (env COMFY_MULTI_GATEWAY_URL)"
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", metavar="TOKEN", help="Worker token (env COMFY_MULTI_WORKER_TOKEN)"
        ),
    ] = None,
    comfyui: Annotated[
        str | None,
        typer.Option(
            "--comfyui", metavar="URL", help="This worker's ComfyUI (env COMFY_MULTI_COMFYUI_URL)"
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Worker name shown to the admin (env COMFY_MULTI_WORKER_NAME)"),
    ] = None,
    job_timeout: Annotated[
        float | None,
        typer.Option(
            "--job-timeout",
            metavar="SECONDS",
            help="Interrupt a job running longer (env COMFY_MULTI_JOB_TIMEOUT_SECONDS)",
        ),
    ] = None,
    comfyui_input_dir: Annotated[
        Path | None,
        typer.Option(
            "--comfyui-input-dir",
            metavar="DIR",
            help="ComfyUI's input folder, when this host shares it: job inputs are deleted "
            "after each job (otherwise they are blanked through ComfyUI)",
        ),
    ] = None,
) -> None:
    """Run a GPU worker: claim jobs from the gateway and run them on one ComfyUI."""
    try:
        settings = load_settings(
            gateway_url=gateway,
            worker_token=token,
            comfyui_url=comfyui,
            worker_name=name,
            job_timeout_seconds=job_timeout,
            comfyui_input_dir=comfyui_input_dir,
        )
        config = config_from(settings, settings.comfyui_input_dir)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    logs.configure(settings.log_level, json=settings.log_json)
    try:
        asyncio.run(Worker(config).run())
    except Unauthorized:
        raise _fail(
            f"the gateway at {config.gateway_url} refused the worker token (401); "
            "check --token / COMFY_MULTI_WORKER_TOKEN"
        ) from None
    except GatewayRejected as exc:
        if exc.status == 409:  # e.g. the worker id is another worker token's
            raise _fail(str(exc)) from None
        raise _fail(f"{exc}; is {config.gateway_url} a comfy-multi gateway?") from None
    except GatewayAnswerInvalid as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
