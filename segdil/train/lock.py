"""One training process per work dir: ``WORK_DIR/.lock``, held for the run's life.

The lock is :func:`segdil.output_paths.folder_lock`: an ``flock`` on the file (released by the
kernel when the process ends, however it ends), and the file holds the holder's PID for the
message. A lock file left by a dead process is therefore not held, and the next run takes it over.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from segdil.output_paths import LOCK_NAME, folder_lock, lock_holder

__all__ = ["LOCK_NAME", "lock_holder", "work_dir_lock"]


@contextlib.contextmanager
def work_dir_lock(path: Path, enabled: bool = True, flag: str = "--work-dir") -> Iterator[None]:
    """Hold ``path/.lock`` for the block; another live holder is a one-line error naming ``flag`` and its PID."""
    with folder_lock(path, flag, "training", enabled):
        yield
