"""The one settings object: every `COMFY_MULTI_*` variable (and `REDIS_URL`) is read here."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from comfy_multi.errors import ConfigError

PRIORITY_CLASSES = 10  # queue classes 0 (most urgent) .. 9; the scripts are given this
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COMFY_MULTI_", extra="ignore")

    # where state lives
    data_dir: Path = Path("./data")
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "COMFY_MULTI_REDIS_URL")
    )
    # where a running `up` leaves word of its room, so commands typed elsewhere find it
    rooms_dir: Path = Field(
        default_factory=lambda: Path.home() / ".local" / "state" / "comfy-multi" / "rooms"
    )

    # gateway
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    secret_key: str | None = None  # signs session cookies; generated into data_dir when unset
    public_url: str | None = None  # base URL printed on sign-in sheets (default: http://host:port)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_json: bool = False
    session_days: float = Field(default=7.0, gt=0)
    # "insecure-fast-for-tests" makes new password hashes trivial to crack: test suites only
    password_hashing: Literal["argon2", "insecure-fast-for-tests"] = "argon2"

    # sign-in throttle: failures before a wait, per account (from one address) and per address
    login_failures_per_account: int = Field(default=5, ge=1)
    login_failures_per_address: int = Field(default=30, ge=1)
    login_window_seconds: float = Field(default=900.0, gt=0)  # failures are forgotten after this
    login_backoff_max_seconds: float = Field(default=300.0, gt=0)
    password_checks_at_once: int = Field(default=2, ge=1)  # argon2 runs (64 MiB each) in parallel
    password_checks_waiting: int = Field(default=64, ge=1)  # beyond this, 503 with Retry-After

    # queue
    # a killed worker's job starts again elsewhere after at most this (plus a sweep)
    lease_seconds: float = Field(default=12.0, gt=0)
    heartbeat_seconds: float = Field(default=2.0, gt=0)
    sweep_seconds: float = Field(default=1.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=100)
    worker_forget_seconds: float = Field(default=600.0, gt=0)  # offline workers leave the lists
    job_timeout_seconds: float | None = Field(default=None, gt=0)
    job_ttl_days: float = Field(default=14.0, gt=0)
    history_per_user: int = Field(default=500, ge=10)
    default_user_cap: int = Field(default=20, ge=0)  # pending jobs per user; 0 = no cap
    prompt_keep_minutes: float = Field(default=60.0, ge=0)  # prompts of ended jobs, then dropped
    prompt_budget_bytes: int = Field(default=64 * 1024 * 1024, ge=0)  # stored per user; 0 = none
    redis_maxmemory_mb: int = Field(default=1024, ge=16)  # the embedded Redis; full answers 503
    participant_class: int = Field(default=5, ge=0, le=PRIORITY_CLASSES - 1)
    admin_class: int = Field(default=1, ge=0, le=PRIORITY_CLASSES - 1)

    # files
    max_upload_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    max_output_bytes: int = Field(default=4 * 1024 * 1024 * 1024, gt=0)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, gt=0)  # JSON bodies (prompts)
    # a worker's /object_info, unpacked (a gzip body is unpacked only this far)
    max_object_info_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    # the largest image (width x height) the gateway accepts as an upload or decodes for
    # /view's previews and channels: 4096 x 3072 (a 12-megapixel photo) by default
    max_image_pixels: int = Field(default=4096 * 3072, ge=64 * 64)

    # worker (`comfy-multi worker`)
    gateway_url: str = "http://127.0.0.1:8080"
    worker_token: str | None = None
    comfyui_url: str = "http://127.0.0.1:8188"
    worker_name: str | None = None
    comfyui_input_dir: Path | None = None  # ComfyUI's input folder, when the worker shares it

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value or None

    @model_validator(mode="after")
    def _fast_hashing_stays_local(self) -> Settings:
        if self.password_hashing != "argon2" and self.host not in LOOPBACK_HOSTS:
            raise ValueError(
                f"password_hashing={self.password_hashing} is for test suites on loopback only"
            )
        return self

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"

    @property
    def users_dir(self) -> Path:
        return self.data_dir / "users"

    @property
    def workflows_dir(self) -> Path:
        return self.data_dir / "workflows"


def load_settings(**overrides: object) -> Settings:
    """Read the environment; a bad value raises ConfigError with one readable line."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'COMFY_MULTI_' + str(err['loc'][0]).upper() if err['loc'] else 'settings'}: "
            f"{err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"bad settings: {problems}") from None
