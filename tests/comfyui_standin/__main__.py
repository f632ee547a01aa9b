"""python -m tests.comfyui_standin --host 127.0.0.1 --port 0 --data-dir DIR"""

from __future__ import annotations

import argparse
import asyncio
import sys

from .app import DEFAULT_MAX_UPLOAD_MB, DEFAULT_SPEED
from .server import start


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.comfyui_standin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188, help="0 picks a free port")
    parser.add_argument("--data-dir", required=True, help="holds input/, output/ and temp/")
    parser.add_argument(
        "--max-upload-size",
        type=float,
        default=DEFAULT_MAX_UPLOAD_MB,
        help="largest upload body in MB (413 above it)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=DEFAULT_SPEED,
        help="seconds each stock node waits before it runs (0 for none)",
    )
    parser.add_argument(
        "--custom-nodes",
        default=None,
        help="a folder of custom node packages to load, as ComfyUI's custom_nodes",
    )
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> None:
    """Serve until SIGINT or SIGTERM (uvicorn handles both and shuts down cleanly)."""
    running = await start(
        args.data_dir,
        host=args.host,
        port=args.port,
        max_upload_mb=args.max_upload_size,
        speed=args.speed,
        custom_nodes=args.custom_nodes,
    )
    sys.stdout.write(f"STANDIN_READY {running.url}\n")
    sys.stdout.flush()
    try:
        await running.task
    finally:
        running.sock.close()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
