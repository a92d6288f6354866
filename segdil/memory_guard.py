"""Refuse work whose memory is known to exceed the machine's before anything is allocated.

A command that is about to allocate from a user's number (an image size, a batch, a crop) asks
:func:`check_fits` with its estimate; over :data:`SHARE` of the memory available now it stops
with one line giving both figures, instead of dying in the allocator or swapping for an hour.
"""

from __future__ import annotations

from typing import Optional

from segdil.errors import SegdilError

SHARE = 0.9  # never start work estimated over this share of the memory available now


def available_mb() -> Optional[float]:
    """``MemAvailable`` of this machine in MB (None where it cannot be read)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def gb(nbytes: float) -> str:
    return f"{nbytes / 2**30:,.1f} GB"


def check_fits(nbytes: float, what: str, fix: str, available: Optional[float] = None) -> None:
    """Raise a one-line error when ``nbytes`` exceed :data:`SHARE` of the available memory.

    ``what`` names the option and value ("--size 100000x100000"), ``fix`` says what to do;
    ``available`` (MB) defaults to :func:`available_mb` (no check where it cannot be read)."""
    free_mb = available_mb() if available is None else available
    if free_mb is None:
        return
    if nbytes > SHARE * free_mb * 2**20:
        raise SegdilError(f"{what}: needs about {gb(nbytes)} of memory, this machine has {gb(free_mb * 2**20)} available; {fix}")
