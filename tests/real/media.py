"""Prompts that make real media on a CPU ComfyUI without weights, and a test wav."""

from __future__ import annotations

import io
import math
import struct
import wave
from typing import Any


def tone_wav(seconds: float = 1.0, rate: int = 16000, hz: float = 440.0) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = int(seconds * rate)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * i / rate)))
                for i in range(frames)
            )
        )
    return out.getvalue()


def mp4(frames: int = 16, color: int = 0xFF0000, fps: float = 8.0) -> dict[str, Any]:
    """EmptyImage batch -> CreateVideo -> SaveVideo (h264 mp4)."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 64, "height": 64, "batch_size": frames, "color": color},
        },
        "2": {"class_type": "CreateVideo", "inputs": {"images": ["1", 0], "fps": fps}},
        "3": {
            "class_type": "SaveVideo",
            "inputs": {
                "video": ["2", 0],
                "filename_prefix": "video/cm",
                "format": "mp4",
                "codec": "h264",
            },
        },
    }


def animated_webp(color: int = 0x0000FF) -> dict[str, Any]:
    """Two frames of one colour, two of another -> SaveAnimatedWEBP (the encoder
    merges identical neighbours, so it holds two frames)."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 64, "height": 64, "batch_size": 2, "color": color},
        },
        "2": {
            "class_type": "EmptyImage",
            "inputs": {"width": 64, "height": 64, "batch_size": 2, "color": color ^ 0xFFFFFF},
        },
        "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
        "4": {
            "class_type": "SaveAnimatedWEBP",
            "inputs": {
                "images": ["3", 0],
                "filename_prefix": "cm",
                "fps": 6.0,
                "lossless": False,
                "quality": 80,
                "method": "default",
            },
        },
    }


def audio(name: str) -> dict[str, Any]:
    """LoadAudio of an uploaded file -> SaveAudio (flac)."""
    return {
        "1": {"class_type": "LoadAudio", "inputs": {"audio": name}},
        "2": {
            "class_type": "SaveAudio",
            "inputs": {"audio": ["1", 0], "filename_prefix": "audio/cm"},
        },
    }
