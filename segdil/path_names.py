"""Path names no command can use, found before a command runs: a name over the file system's limit,
a symbolic-link loop, a file standing where a folder belongs, a folder that may not be searched.

:func:`path_name_problem` says what is wrong with a path (or ``None``); :class:`PathType`, the type of
every path argument of the CLI, refuses such a path in one line naming the option; API entry points
call :func:`check_path_name`."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import click

from segdil.errors import SegdilError

NAME_MAX = 255  # bytes in one file or folder name (ext4, xfs, btrfs, APFS, NTFS)
PATH_MAX = 4096  # bytes in a whole path (Linux)
SHOWN_PATH = 160  # characters of a path shown in a message


def shown_path(path: str | os.PathLike) -> str:
    """``path`` as text, at most about ``SHOWN_PATH`` characters: the start and the end (the file's name) of a
    longer one."""
    text = os.fspath(path)
    if len(text) <= SHOWN_PATH:
        return text
    return text[:40] + "..." + text[-(SHOWN_PATH - 43):]


def path_name_problem(path: str | os.PathLike) -> str | None:
    """What makes ``path`` unusable as a name, in a few words, or ``None`` when it may be used (it may not exist)."""
    longest = max((len(os.fsencode(part)) for part in Path(path).parts), default=0)
    if longest > NAME_MAX:
        return f"holds a name of {longest} bytes; file systems allow {NAME_MAX}, choose a shorter name"
    if len(os.fsencode(path)) > PATH_MAX:
        return f"is {len(os.fsencode(path))} bytes long; paths are limited to {PATH_MAX}, choose a shorter one"
    try:
        os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "is a symbolic-link loop (a link that leads back to itself); give a real file or folder"
        if e.errno == errno.ENOTDIR:
            parent = next((p for p in reversed(Path(path).parents) if p.is_file()), None)
            return f"{shown_path(parent) if parent else 'a part of it'} is a file, not a folder; give a path inside a folder"
        if e.errno == errno.EACCES:
            return "lies in a folder this user may not open (permission denied); choose another place"
        if e.errno == errno.ENAMETOOLONG:
            return "is longer than the file system allows; choose a shorter name"
        return f"cannot be looked at ({e.strerror})"
    return None


def check_path_name(path: str | os.PathLike, what: str) -> None:
    """Raise a one-line :class:`SegdilError` naming ``what`` (an option or argument) when ``path`` cannot be used."""
    problem = path_name_problem(path)
    if problem:
        raise SegdilError(f"{what} {shown_path(path)}: {problem}")


class PathType(click.Path):
    """``click.Path`` that first refuses what :func:`path_name_problem` finds, in one line naming the option."""

    def convert(self, value, param, ctx):
        problem = path_name_problem(value)
        if problem:
            self.fail(f"{shown_path(value)}: {problem}", param, ctx)
        return super().convert(value, param, ctx)
