import json
import struct

from comfy_multi.worker.socket import parse_binary


def test_type_1_preview_carries_its_format() -> None:
    frame = struct.pack(">II", 1, 2) + b"PNGDATA"
    preview = parse_binary(frame)
    assert preview is not None
    assert (preview.image, preview.content_type, preview.meta) == (b"PNGDATA", "image/png", None)
    jpeg = parse_binary(struct.pack(">II", 1, 1) + b"J")
    assert jpeg is not None
    assert jpeg.content_type == "image/jpeg"


def test_type_4_preview_carries_metadata() -> None:
    meta = {"node_id": "3", "prompt_id": "p", "image_type": "image/jpeg"}
    blob = json.dumps(meta).encode()
    preview = parse_binary(struct.pack(">II", 4, len(blob)) + blob + b"IMG")
    assert preview is not None
    assert preview.meta == meta
    assert preview.image == b"IMG"
    assert preview.content_type == "image/jpeg"


def test_other_frames_are_ignored() -> None:
    assert parse_binary(b"\x00\x00") is None
    assert parse_binary(struct.pack(">II", 3, 1) + b"1text") is None
    assert parse_binary(struct.pack(">II", 4, 50) + b"{not json") is None
