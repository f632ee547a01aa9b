"""The data dir holds secrets (the cookie key, password hashes in the AOF) and
people's files: only the account that runs comfy-multi may read it."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_UMASK = 0o077  # new files 0600, new folders 0700


def make_private(data_dir: Path) -> None:
    """From now on this process creates files 0600 and folders 0700; the data
    dir and its top folders are closed to others even when made earlier."""
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path in (data_dir, *data_dir.iterdir()):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o700)
