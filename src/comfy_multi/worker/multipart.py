"""A streamed ``multipart/form-data`` body, so an upload never sits whole in memory."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator

_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()+,=-]")


def safe_filename(name: str) -> str:
    """A name that survives a Content-Disposition header and every filesystem."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = _UNSAFE.sub("_", base).lstrip(".")
    return base[:150] or "file"


class MultipartBody:
    """Text fields, then one file part whose bytes come from an async iterable."""

    def __init__(
        self,
        fields: dict[str, str],
        *,
        file_field: str,
        filename: str,
        content_type: str,
        content: AsyncIterable[bytes],
        size: int | None,
    ) -> None:
        self.boundary = secrets.token_hex(16)
        head = b"".join(
            self._part_header(f'name="{name}"') + value.encode() + b"\r\n"
            for name, value in fields.items()
        )
        head += self._part_header(
            f'name="{file_field}"; filename="{safe_filename(filename)}"',
            content_type=content_type,
        )
        self._head = head
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._content = content
        self.length = None if size is None else len(self._head) + size + len(self._tail)

    def _part_header(self, disposition: str, *, content_type: str | None = None) -> bytes:
        lines = [f"--{self.boundary}", f"Content-Disposition: form-data; {disposition}"]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    @property
    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": f"multipart/form-data; boundary={self.boundary}"}
        if self.length is not None:
            headers["Content-Length"] = str(self.length)
        return headers

    async def stream(self) -> AsyncIterator[bytes]:
        yield self._head
        async for chunk in self._content:
            yield chunk
        yield self._tail
