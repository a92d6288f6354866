"""Output paths of every command: never an input, never an existing file unless ``--overwrite``.

:func:`check_output` is called for each output option before any work starts, so a refused
command has read nothing expensive and written nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from segdil.errors import SegdilError


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


def check_output(path: str | Path | None, flag: str, inputs: Iterable[str | Path | None] = (), overwrite: bool = False) -> None:
    """Refuse ``path`` (given as ``flag``) when it is one of ``inputs`` (always), when it is a
    folder, or when it exists and ``overwrite`` is off. Inputs that are folders refuse any output
    inside them only when the output already exists there (it would be read as data)."""
    if path is None:
        return
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
