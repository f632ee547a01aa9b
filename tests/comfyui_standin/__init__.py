"""A ComfyUI server stand-in for tests: ComfyUI 0.3.64's HTTP and websocket API on Pillow.

    from tests.comfyui_standin import create_app, serve

    async with serve(tmp_path) as running:   # uvicorn on 127.0.0.1, a free port
        running.url, running.standin ...

Command line: ``python -m tests.comfyui_standin --port 0 --data-dir DIR`` prints
``STANDIN_READY http://127.0.0.1:<port>`` once it listens.
"""

from .app import Standin, create_app
from .server import RunningStandin, serve, start

__all__ = ["RunningStandin", "Standin", "create_app", "serve", "start"]
