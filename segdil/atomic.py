"""Every file segdil writes goes through this module.

Results (checkpoints, masks, JSON, reports, figures, ONNX files) are written atomically: a
temporary file beside the target, flushed, fsynced and renamed, so a crash or an error at any
moment leaves the previous file (or none), never half a file. Append-only logs
(``metrics.jsonl``, per-run training logs) are the one exception: they are opened with
:func:`open_log`, and a crash may cut their last line.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator

TEMP_SUFFIX = ".tmp"  # temporaries are ".<name>.<random>.tmp" beside their target
TEMP_NAME_CHARS = 200  # of the target's name in a temporary's: the whole name of a 255-character file would not fit


def temp_prefix(path: Path) -> str:
    """``.<name>.`` of the temporaries beside ``path`` (``name`` cut to :data:`TEMP_NAME_CHARS`)."""
    return f".{Path(path).name[:TEMP_NAME_CHARS]}."



def file_mode() -> int:
    """The permissions a plain ``open(path, "w")`` would give a new file (0o666 less the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` for writers that want a file name (``savefig``, ONNX);
    when the block ends without error it is fsynced and renamed onto ``path``, else removed.
    ``suffix`` is appended after the temporary suffix (e.g. ``.png`` for writers that infer the
    format from the name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=TEMP_SUFFIX + suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode())  # mkstemp creates files readable by the owner only
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        named = naming_the_file(exc, path)
        if named is None:
            raise
        raise named from exc


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; when the block ends without error it is flushed,
    fsynced and renamed onto ``path`` (with the usual umask permissions), else removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        named = naming_the_file(exc, path)
        if named is None:
            raise
        raise named from exc


def naming_the_file(exc: BaseException, path: Path) -> OSError | None:
    """A failed write as an ``OSError`` whose ``filename`` is the target ``path`` (a full disk or the
    file size limit fails ``write`` with no file name; torch wraps that in a RuntimeError), or None
    when ``exc`` is no write error or already names a file."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    if cause is None or (cause.filename is not None and not Path(cause.filename).name.startswith(temp_prefix(path))):
        return None
    return OSError(cause.errno, cause.strerror or str(cause), str(path))


def write_text(path: str | Path, text: str) -> Path:
    with atomic_write(path, "w") as f:
        f.write(text)
    return Path(path)


def write_json(path: str | Path, obj: Any, default: Callable[[Any], Any] | None = None) -> Path:
    return write_text(path, json.dumps(obj, indent=2, default=default) + "\n")


def save_torch(obj: Any, path: str | Path) -> Path:
    """``torch.save`` through :func:`atomic_write`."""
    import torch

    with atomic_write(path) as f:
        torch.save(obj, f)
    return Path(path)


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """A matplotlib figure as PNG, through :func:`atomic_path`."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return Path(path)


def open_log(path: str | Path) -> IO:
    """An append-only text log (not atomic: a crash may cut its last line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "a", encoding="utf-8")


def _fsync_dir(directory: Path) -> None:
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
