import json
import struct

from comfy_multi.worker.socket import Event, parse_binary


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


def test_type_3_text_becomes_a_progress_text_event() -> None:
    text = parse_binary(struct.pack(">II", 3, 2) + b"12" + "caf\u00e9".encode())
    assert text == Event("progress_text", {"node": "12", "text": "caf\u00e9"})
    # a node id longer than the frame is not a text frame
    assert parse_binary(struct.pack(">II", 3, 99) + b"12") is None


def test_other_frames_are_ignored() -> None:
    assert parse_binary(b"\x00\x00") is None
    assert parse_binary(struct.pack(">II", 2, 1) + b"1text") is None
    assert parse_binary(struct.pack(">II", 4, 50) + b"{not json") is None
