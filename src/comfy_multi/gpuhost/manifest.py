"""The workshop manifest: what every GPU host needs (ComfyUI, custom nodes, models).

A TOML file kept in the app host's data dir and served to workers::

    [comfyui]
    version = "v0.3.64"

    [[custom_nodes]]
    git = "https://github.com/Lightricks/ComfyUI-LTXVideo"
    rev = "<commit>"

    [[models]]
    hf = "Lightricks/LTX-2"          # or: url = "https://..."
    file = "ltx-2-19b-dev-fp8.safetensors"
    folder = "checkpoints"
    sha256 = "<hex>"
    size = 27_000_000_000
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path, PurePosixPath
from typing import Annotated, Self

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from comfy_multi.errors import ConfigError

MAX_MANIFEST_BYTES = 1 << 20
FETCH_TIMEOUT_S = 30.0

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$", to_lower=True)]
_SAFE_PART = re.compile(r"^[A-Za-z0-9._+@=-][A-Za-z0-9 ._+@=-]*$")
_REGISTRY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # ids and versions go into URLs


def _relative_path(value: str, what: str) -> str:
    """A relative POSIX path whose every part is a plain name: nothing that
    could climb out of the folder it is joined to."""
    path = PurePosixPath(value)
    if path.is_absolute() or not path.parts:
        raise ValueError(f"{what} must be a relative path, got {value!r}")
    for part in path.parts:
        if part in (".", "..") or not _SAFE_PART.match(part):
            raise ValueError(f"{what} has an unsafe part {part!r}")
    return str(path)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComfyUISpec(_Strict):
    #: a git tag (v0.3.64) or commit of Comfy-Org/ComfyUI
    version: str = Field(min_length=1, max_length=100)
    git: str = "https://github.com/Comfy-Org/ComfyUI"


class CustomNode(_Strict):
    #: a git repository at a pinned commit ...
    git: str | None = None
    rev: str | None = None
    #: ... or a Comfy registry id with its version
    registry: str | None = None
    version: str | None = None
    #: folder name under custom_nodes/ (default: the repository's or registry id's name)
    name: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if bool(self.git) == bool(self.registry):
            raise ValueError("a custom node needs exactly one of `git` or `registry`")
        if self.git and not self.rev:
            raise ValueError(f"custom node {self.git}: pin it with `rev` (a commit)")
        if self.registry and not self.version:
            raise ValueError(f"custom node {self.registry}: pin it with `version`")
        for part in (self.registry, self.version) if self.registry else ():
            if not _REGISTRY_NAME.match(str(part)):
                raise ValueError(f"custom node {self.registry!r}: {part!r} is no registry name")
        if self.name is not None:
            _relative_path(self.name, "custom node name")
        return self

    @property
    def folder(self) -> str:
        if self.name:
            return self.name
        source = self.git or self.registry or ""
        return source.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")


class ModelFile(_Strict):
    #: a Hugging Face repository, with `file` its path in the repository ...
    hf: str | None = None
    revision: str = "main"
    #: ... or an https URL
    url: str | None = None
    file: str
    #: folder under ComfyUI's models/ (checkpoints, loras, text_encoders, ...)
    folder: str
    #: without it the file is only checked for its size (and reported unverified)
    sha256: Sha256 | None = None
    size: int | None = Field(default=None, gt=0)
    #: file name in the folder (default: the last part of `file`)
    name: str | None = None

    @field_validator("file")
    @classmethod
    def _file(cls, value: str) -> str:
        return _relative_path(value, "model file")

    @field_validator("folder")
    @classmethod
    def _folder(cls, value: str) -> str:
        return _relative_path(value, "model folder")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and "/" in _relative_path(value, "model name"):
            raise ValueError(f"model name {value!r} must be a plain file name")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if bool(self.hf) == bool(self.url):
            raise ValueError(f"model {self.file}: give exactly one of `hf` or `url`")
        if self.url and not self.url.startswith(("https://", "http://")):
            raise ValueError(f"model {self.file}: `url` must be http(s)")
        return self

    @property
    def target(self) -> str:
        """Where it goes, relative to ComfyUI's models/ folder."""
        return f"{self.folder}/{self.name or PurePosixPath(self.file).name}"

    @property
    def source(self) -> str:
        return f"{self.hf}@{self.revision}:{self.file}" if self.hf else str(self.url)


class Manifest(_Strict):
    title: str = ""
    comfyui: ComfyUISpec
    custom_nodes: list[CustomNode] = []
    models: list[ModelFile] = []
    #: workflow files (relative to the manifest) the workshop uses
    workflows: list[str] = []

    @model_validator(mode="after")
    def _unique_targets(self) -> Self:
        seen: set[str] = set()
        for model in self.models:
            if model.target in seen:
                raise ValueError(f"two models go to {model.target}")
            seen.add(model.target)
        return self

    @property
    def total_bytes(self) -> int:
        return sum(m.size or 0 for m in self.models)

    @classmethod
    def parse(cls, text: str, origin: str = "manifest") -> Manifest:
        try:
            return cls.model_validate(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{origin} is not valid TOML: {exc}") from None
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'manifest'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ConfigError(f"{origin}: {problems}") from None


def load_manifest(where: str | Path) -> Manifest:
    """Read a manifest from a file or an http(s) URL."""
    text = str(where)
    if text.startswith(("https://", "http://")):
        try:
            with httpx.stream("GET", text, timeout=FETCH_TIMEOUT_S, follow_redirects=True) as r:
                r.raise_for_status()
                body = b""
                for chunk in r.iter_bytes():
                    body += chunk
                    if len(body) > MAX_MANIFEST_BYTES:
                        raise ConfigError(f"manifest at {text} is over 1 MiB")
        except httpx.HTTPError as exc:
            raise ConfigError(f"could not fetch the manifest at {text}: {exc}") from None
        return Manifest.parse(body.decode("utf-8", "replace"), text)
    path = Path(where)
    try:
        return Manifest.parse(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise ConfigError(f"cannot read the manifest {path}: {exc.strerror}") from None
