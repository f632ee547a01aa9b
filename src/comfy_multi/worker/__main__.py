"""``python -m comfy_multi.worker``: the same as ``comfy-multi worker``."""

import typer

from comfy_multi.worker.command import worker_command

if __name__ == "__main__":
    typer.run(worker_command)
