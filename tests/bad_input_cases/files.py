"""Bad-input rows: what no command may overwrite or delete (issue #30)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

CASES: dict[str, tuple[Callable[[Path], list], int, tuple[str, ...]]] = {}
