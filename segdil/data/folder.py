"""Folder datasets: ``ROOT/{split}/images/*``, ``ROOT/{split}/masks/<stem>.png``, ``ROOT/classes.yaml``.

classes.yaml::

    classes: [background, car, person]   # names; the index is the class id
    colors: [[0, 0, 0], [255, 0, 0], [0, 0, 255]]   # optional, RGB per class
    reduce_zero_label: false             # optional; true: 0 -> ignore (255), v -> v - 1

``classes`` may also list mappings ``{name: car, color: [255, 0, 0]}``. In a mask, 255 is ignore.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import yaml
from torch.utils.data import Dataset

from segdil.config import safe_load_bounded
from segdil.data.io import IMAGE_EXTS, list_images, load_image, load_mask, values_out_of_range
from segdil.errors import SegdilError, shown

IGNORE_INDEX = 255


@dataclass
class ClassesInfo:
    names: list[str]
    colors: Optional[list[tuple[int, int, int]]]
    reduce_zero_label: bool


def read_classes(root: str | Path) -> ClassesInfo:
    """Parse ``ROOT/classes.yaml``; every mistake is a one-line SegdilError naming the file."""
    path = Path(root) / "classes.yaml"
    if not path.is_file():
        raise SegdilError(f"{path}: not found; write a classes.yaml with a 'classes:' list of names (index = class id)")
    try:
        raw = safe_load_bounded(path.read_text(), path)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SegdilError(f"{path}: not valid YAML ({getattr(exc, 'problem', None) or type(exc).__name__})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("classes"), list) or not raw["classes"]:
        raise SegdilError(f"{path}: expected a non-empty 'classes:' list of names, e.g. classes: [background, car]")
    unknown = sorted(set(raw) - {"classes", "colors", "reduce_zero_label"})
    if unknown:
        raise SegdilError(f"{path}: unknown key(s) {', '.join(unknown)}; valid keys: classes, colors, reduce_zero_label")
    names: list[str] = []
    colours: list[Any] = []
    for i, entry in enumerate(raw["classes"]):
        if isinstance(entry, dict) and "name" in entry:
            names.append(str(entry["name"]))
            colours.append(entry.get("color"))
        elif isinstance(entry, (str, int, float)) and not isinstance(entry, bool):
            names.append(str(entry))
            colours.append(None)
        else:
            raise SegdilError(f"{path}: classes[{i}] must be a name or a mapping with 'name' (and 'color'), got {shown(entry)}")
    if len(set(names)) != len(names):
        raise SegdilError(f"{path}: class names repeat ({', '.join(sorted({n for n in names if names.count(n) > 1}))}); give each class its own name")
    if "colors" in raw:
        if not isinstance(raw["colors"], list) or len(raw["colors"]) != len(names):
            raise SegdilError(f"{path}: 'colors' must list one [r, g, b] per class ({len(names)})")
        colours = list(raw["colors"])
    reduce = raw.get("reduce_zero_label", False)
    if not isinstance(reduce, bool):
        raise SegdilError(f"{path}: reduce_zero_label must be true or false, got {shown(reduce)}")
    if len(names) > 255:
        raise SegdilError(f"{path}: {len(names)} classes; at most 255 fit in an 8-bit mask with 255 = ignore")
    if all(c is None for c in colours):
        return ClassesInfo(names, None, reduce)
    parsed = []
    for i, colour in enumerate(colours):
        if not (isinstance(colour, (list, tuple)) and len(colour) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in colour)):
            raise SegdilError(f"{path}: colour of class {names[i]!r} must be [r, g, b] with integers 0-255, got {shown(colour)}")
        parsed.append(tuple(colour))
    return ClassesInfo(names, parsed, reduce)


def reduce_zero(mask: np.ndarray) -> np.ndarray:
    """``reduce_zero_label``: 0 becomes ignore (255), every other value v becomes v - 1 (255 stays)."""
    out = mask.astype(np.int16) - 1
    out[mask == 0] = IGNORE_INDEX
    out[mask == IGNORE_INDEX] = IGNORE_INDEX
    return out.astype(np.uint8)


def index_masks(folder: Path) -> dict[str, Path]:
    """PNG masks in ``folder`` by stem (``.png`` in any case); hidden files skipped."""
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".") and p.suffix.lower() == ".png"}


class FolderDataset(Dataset):
    """Images and masks of one split; item ``k`` is pair ``k % len`` augmented with randomness from (seed, k).

    Items are ``(image FloatTensor[3,H,W] normalised, mask LongTensor[H,W], 255 = ignore)``.
    Run ``segdil.data.check.ensure_valid(root)`` first to catch broken files with clear messages.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        transform: Optional[Callable] = None,
        *,
        mean: Sequence[float] = (0.485, 0.456, 0.406),
        std: Sequence[float] = (0.229, 0.224, 0.225),
        seed: int = 0,
    ):
        self.root = Path(root)
        self.split = split
        self.transform = transform
        self.mean, self.std = tuple(mean), tuple(std)
        self.seed = seed
        self.classes = read_classes(self.root)
        self.class_names = self.classes.names
        self.class_colors = [list(c) for c in self.classes.colors] if self.classes.colors else None
        image_dir = self.root / split / "images"
        if not image_dir.is_dir():
            raise SegdilError(f"{image_dir}: split folder not found; expected {self.root}/{split}/images and {self.root}/{split}/masks")
        self.images = list_images(image_dir)
        if not self.images:
            raise SegdilError(f"{image_dir}: empty split, no images with extensions {', '.join(IMAGE_EXTS)}")
        masks = index_masks(self.root / split / "masks")
        missing = [p for p in self.images if p.stem not in masks]
        if missing:
            raise SegdilError(f"{missing[0]}: no mask; expected {self.root / split / 'masks' / (missing[0].stem + '.png')}")
        self.masks = [masks[p.stem] for p in self.images]

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Pair ``index`` before augmentation: (uint8 HxWx3, uint8 HxW class indices, 255 = ignore)."""
        image = load_image(self.images[index])
        mask = load_mask(self.masks[index])
        if mask.shape != image.shape[:2]:
            raise SegdilError(f"{self.masks[index]}: mask is {mask.shape[1]}x{mask.shape[0]} but its image is {image.shape[1]}x{image.shape[0]}")
        if self.classes.reduce_zero_label:
            mask = reduce_zero(mask)
        bad = values_out_of_range(mask, len(self.class_names))
        if bad:  # a loss or a confusion matrix would fail on them mid-run (IndexError: Target 77 is out of bounds)
            n = len(self.class_names)
            reduced = " after reduce_zero_label" if self.classes.reduce_zero_label else ""
            raise SegdilError(
                f"{self.masks[index]}: values {', '.join(map(str, bad[:8]))} out of range{reduced} ({n} classes in classes.yaml, 0-{n - 1}, "
                f"255 = ignore); fix the mask or the classes, `segdil data check {self.root}` lists every such file"
            )
        return image, mask

    def __getitem__(self, key: int) -> tuple[torch.Tensor, torch.Tensor]:
        # albumentations: listing and checking data (segdil data check) never loads it
        from segdil.data.transforms import apply_transform, mask_to_tensor, to_tensor

        image, mask = self.load(int(key) % len(self.images))
        image, mask = apply_transform(self.transform, image, mask, self.seed, int(key))
        return to_tensor(image, self.mean, self.std), mask_to_tensor(mask)
