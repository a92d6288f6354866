"""One training process per work dir: ``WORK_DIR/.lock``, held for the run's life.

The lock is an ``flock`` on the file (released by the kernel when the process ends, however it
ends), and the file holds the holder's PID for the message. A lock file left by a dead process is
therefore not held, and the next run takes it over.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from segdil.errors import SegdilError

LOCK_NAME = ".lock"


@contextlib.contextmanager
def work_dir_lock(path: Path, enabled: bool = True) -> Iterator[None]:
    """Hold ``path/.lock`` for the block; another live holder is a one-line error with its PID."""
    if not enabled:
        yield
        return
    import fcntl

    lock_path = Path(path) / LOCK_NAME
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise SegdilError(f"--work-dir {path}: in use by another training process (PID {holder}, lock {lock_path}); wait for it to finish or stop it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock
