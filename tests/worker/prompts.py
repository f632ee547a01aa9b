"""API-format graphs the worker tests run on the stand-in (and on a real ComfyUI)."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image


def png_bytes(
    size: tuple[int, int] = (32, 24), color: tuple[int, int, int] = (200, 30, 60)
) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def invert(image_ref: str, prefix: str = "worker-test") -> dict[str, Any]:
    """LoadImage -> ImageInvert -> SaveImage."""
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image_ref}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


def empty_saved(color: int = 0, size: int = 16, prefix: str = "quick") -> dict[str, Any]:
    """EmptyImage -> SaveImage: the shortest job that writes a file."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": size, "height": size, "batch_size": 1, "color": color},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


def slow(seconds: float, steps: int = 10, color: int = 0) -> dict[str, Any]:
    """EmptyImage -> StandinSlow (progress and previews per step) -> SaveImage."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": color},
        },
        "2": {
            "class_type": "StandinSlow",
            "inputs": {"image": ["1", 0], "seconds": seconds, "steps": steps},
        },
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "slow"}},
    }


def large(size_mb: int, prefix: str = "video/big") -> dict[str, Any]:
    return {
        "1": {
            "class_type": "StandinLargeOutput",
            "inputs": {"size_mb": size_mb, "filename_prefix": prefix},
        }
    }


def failing(message: str) -> dict[str, Any]:
    return {"1": {"class_type": "StandinFail", "inputs": {"message": message}}}
