"""The base of the in-place dataset layouts (``segdil.data.formats`` lists them): the ``Format``
class each layout subclasses, and the instance-map reader they share."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from segdil.data.io import load_mask, open_decoded
from segdil.errors import SegdilError

IGNORE_INDEX = 255


class Format:
    """Base class of the in-place layouts (see the module docstring)."""

    name = ""
    class_names: list[str] = []
    class_colors: Optional[list[tuple[int, int, int]]] = None
    split_aliases: dict[str, str] = {}
    has_instances = False

    @classmethod
    def resolve(cls, root: str | Path) -> Path:
        raise NotImplementedError

    @classmethod
    def split_name(cls, split: str) -> str:
        return cls.split_aliases.get(split, split)

    @classmethod
    def split(cls, root: Path, split: str) -> tuple[list[Path], list[Path], Optional[list[Path]]]:
        raise NotImplementedError

    @classmethod
    def decode(cls, path: Path) -> np.ndarray:
        return load_mask(path)

    @classmethod
    def decode_instances(cls, path: Path, mask: np.ndarray) -> np.ndarray:
        """int64 H x W instance ids (0: no instance); an instance's class is its pixels' mask class."""
        return load_instances(path)

    @classmethod
    def mistakes(cls, root: Path, split: str, problems: list[str]) -> None:
        """Layout problems of ``split`` found before anything is listed or decoded."""
        return None

    @classmethod
    def split_mistakes(cls, root: Path, split: str, stats: dict, problems: list[str]) -> None:
        """Problems only a whole split shows (``stats``: its ``data check`` summary, train indices)."""
        return None

    @classmethod
    def find(cls, root: str | Path, marker: str) -> Path:
        """``root`` if it holds ``marker``, else its one sub-folder (up to two levels down) that does."""
        root = Path(root)
        if not root.is_dir():
            raise SegdilError(f"{root}: dataset folder not found")
        if (root / marker).exists():
            return root
        for pattern in ("*", "*/*"):
            found = sorted(p for p in root.glob(pattern) if p.is_dir() and (p / marker).exists())
            if len(found) == 1:
                return found[0]
        raise SegdilError(f"{root}: no {marker}/ here; give the {cls.name} root as shipped ({cls.expected}), see docs/data.md")

    expected = ""


def load_instances(path: str | Path) -> np.ndarray:
    """A 16-bit (or 8-bit) instance PNG as int64 H x W; 0 = no instance."""
    image = open_decoded(Path(path), "instance mask")
    if image.mode not in ("I", "I;16", "I;16B", "L", "P"):
        raise SegdilError(f"{path}: instance mask in mode {image.mode}; save instance ids as a 16-bit single-channel PNG (0 = no instance)")
    return np.array(image, dtype=np.int64) if image.mode != "I;16B" else np.array(image.convert("I"), dtype=np.int64)
