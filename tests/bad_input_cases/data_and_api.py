"""Bad-input rows: datasets, masks and the Python API (issue #30)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

CASES: dict[str, tuple[Callable[[Path], list], int, tuple[str, ...]]] = {}
