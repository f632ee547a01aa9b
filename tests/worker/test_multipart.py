import email
import email.policy
from collections.abc import AsyncIterator

from comfy_multi.worker.multipart import MultipartBody, safe_filename


async def _chunks() -> AsyncIterator[bytes]:
    for part in (b"\x89PNG", b"\r\n--not-a-boundary", b"rest"):
        yield part


async def test_streamed_body_parses_as_form_data() -> None:
    content = b"\x89PNG\r\n--not-a-boundaryrest"
    body = MultipartBody(
        {"type": "input", "subfolder": "cm-j-1"},
        file_field="image",
        filename="cat.png",
        content_type="image/png",
        content=_chunks(),
        size=len(content),
    )
    raw = b"".join([chunk async for chunk in body.stream()])
    assert body.length == len(raw)
    headers = "".join(f"{k}: {v}\r\n" for k, v in body.headers.items() if k != "Content-Length")
    message = email.message_from_bytes(headers.encode() + b"\r\n" + raw, policy=email.policy.HTTP)
    parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
    assert parts["type"].get_content() == "input"
    assert parts["subfolder"].get_content() == "cm-j-1"
    assert parts["image"].get_filename() == "cat.png"
    assert parts["image"].get_payload(decode=True) == content


def test_safe_filename() -> None:
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename('a"b.png') == "a_b.png"
    assert safe_filename("ü.png") == "_.png"
    assert safe_filename("...") == "file"
