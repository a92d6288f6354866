"""Output paths of every command: never an input, never an existing file unless ``--overwrite``.

:func:`check_output` (files) and :func:`check_output_folder` (folders) are called for each output
option before any work starts, so a refused command has read nothing expensive and written
nothing. :func:`folder_lock` keeps a second process out of an output folder while one writes it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator

from segdil.errors import SegdilError, shown
from segdil.path_names import check_path_name, shown_path


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` are one file: the same resolved path or the same inode (hard links)."""
    a, b = Path(a), Path(b)
    try:
        if a.resolve() == b.resolve():
            return True
    except (OSError, RuntimeError):  # symlink loops
        pass
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def inside(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` lies inside (or is) ``folder``, after resolving both."""
    try:
        path, folder = Path(path).resolve(), Path(folder).resolve()
    except (OSError, RuntimeError):
        return False
    return path == folder or folder in path.parents


def check_writable(folder: Path, what: str) -> None:
    """Refuse ``what`` (an option and its value) when ``folder``, or its nearest existing parent
    (missing folders are created), may not be written by this user."""
    folder = folder.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SegdilError(f"{what}: this user may not write in {shown_path(folder)}; choose a folder you can write to")


def check_output(path: str | Path | None, flag: str, inputs: Iterable[str | Path | None] = (), overwrite: bool = False) -> None:
    """Refuse ``path`` (given as ``flag``) when it is one of ``inputs`` (always), when it is a
    folder, a name no file system holds or in a folder this user may not write, or when it exists
    and ``overwrite`` is off. Inputs that are folders refuse any output inside them only when the
    output already exists there (it would be read as data)."""
    if path is None:
        return
    check_path_name(path, flag)
    path = Path(path)
    for source in inputs:
        if source is None:
            continue
        if same_file(path, source):
            raise SegdilError(f"{flag} {path}: is the input {source}; writing it would destroy the input, choose another file")
        if Path(source).is_dir() and path.exists() and inside(path, source):
            raise SegdilError(f"{flag} {path}: lies inside the input folder {source} and exists; choose a file outside it")
    if path.is_dir():
        raise SegdilError(f"{flag} {path}: is a folder; give a file name")
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise SegdilError(f"{flag} {path}: already exists; pass --overwrite to replace it or choose another name")
    check_writable(path.parent, f"{flag} {shown_path(path)}")


def check_output_folder(
    path: str | Path,
    flag: str,
    inputs: Iterable[str | Path | None] = (),
    *,
    overwrite: bool = False,
    foreign: Callable[[Path], Path | None] | None = None,
    reuse: bool = False,
) -> None:
    """Refuse an output folder ``path`` (given as ``flag``) before anything is written there.

    Always refused: ``.`` or ``..``, the current folder or one holding it, a symbolic link, a file,
    an input or a folder holding one, a folder inside an input folder. A folder that holds anything
    is refused when ``foreign(path)`` names an entry the command did not write (without ``foreign``:
    any entry), and otherwise unless ``overwrite`` (replace the command's own earlier output) or
    ``reuse`` (the command continues it) is given.
    """
    check_path_name(path, flag or "output folder")
    path = Path(path)
    flag = f"{flag} {path}" if flag else str(path)  # from here on: the option and its value
    if path.name in ("", ".", ".."):
        raise SegdilError(f"{flag}: name a new folder, not '.' or '..'")
    if path.is_symlink():
        raise SegdilError(f"{flag}: is a symbolic link (to {shown(os.readlink(path))}); give a real folder or a new name")
    if path.exists() and not path.is_dir():
        raise SegdilError(f"{flag}: is a file; give a folder")
    if inside(Path.cwd(), path):
        raise SegdilError(f"{flag}: is the current folder or holds it; choose a new folder")
    for source in inputs:
        if source is None:
            continue
        if same_file(path, source) or inside(source, path):
            raise SegdilError(f"{flag}: is or holds the input {source}; choose a folder outside the inputs")
        if Path(source).is_dir() and inside(path, source):
            raise SegdilError(f"{flag}: lies inside the input folder {source}; choose a folder outside the inputs")
    check_writable(path, flag)
    if not path.is_dir() or not any(path.iterdir()):
        return
    stranger = foreign(path) if foreign is not None else next(iter(sorted(path.iterdir())))
    if stranger is not None:
        raise SegdilError(f"{flag}: holds {stranger}, which this command did not write; move it away or choose a new folder")
    if not (overwrite or reuse):
        raise SegdilError(f"{flag}: is not empty: it holds an earlier output; pass --overwrite to replace it or choose a new folder")


# --------------------------------------------------------------------------- folder locks

LOCK_NAME = ".lock"


def lock_holder(folder: str | Path) -> str | None:
    """The PID (as text) of the live process holding ``folder/.lock``, or None when no process holds it."""
    import fcntl

    try:
        fd = os.open(Path(folder) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
    finally:
        os.close(fd)  # releases a lock taken just now
    return None


@contextlib.contextmanager
def folder_lock(folder: str | Path, flag: str, what: str, enabled: bool = True) -> Iterator[None]:
    """Hold ``folder/.lock`` (an ``flock``, holding this PID) for the block; another live holder is a
    one-line error naming ``flag`` (e.g. ``--out``), ``what`` holds it (e.g. "prediction") and its PID.
    The kernel releases the lock when the process ends, however it ends."""
    if not enabled:
        yield
        return
    import fcntl

    lock_path = Path(folder) / LOCK_NAME
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise SegdilError(f"{flag} {folder}: in use by another {what} process (PID {holder}, lock {lock_path}); wait for it to finish or stop it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock
