"""Dataset layouts read in place: ``data.format: folder | voc | cityscapes | ade20k``.

Every format lists file paths only when a split is opened (no file is decoded until an item is
asked for, i.e. in the loader's workers) and decodes its masks to train indices, 255 = ignore.
A format is a class with:

    name            the ``data.format`` value
    resolve(root)   the dataset root as shipped (a parent folder may be given)
    split(root, split) -> (images, masks, instances or None)   lists of paths, same order
    decode(path)    the mask file -> uint8 H x W train indices
    class_names, class_colors
    mistakes(root, split, problems)   format-specific checks (``segdil data check``)

``open_dataset`` builds the torch Dataset; ``check_format`` is ``segdil data check --format``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from segdil.data.folder import FolderDataset
from segdil.data.io import load_image, load_mask
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

    from segdil.data.io import _open

    image = _open(Path(path), "instance mask")
    if image.mode not in ("I", "I;16", "I;16B", "L", "P"):
        raise SegdilError(f"{path}: instance mask in mode {image.mode}; save instance ids as a 16-bit single-channel PNG (0 = no instance)")
    return np.array(image, dtype=np.int64) if image.mode != "I;16B" else np.array(image.convert("I"), dtype=np.int64)


class PairedDataset(Dataset):
    """One split of a format: item ``k`` is pair ``k % len`` augmented with randomness from (seed, k).

    Items are ``(image FloatTensor[3,H,W] normalised, mask LongTensor[H,W], 255 = ignore)``, like
    ``FolderDataset``. ``load_instances(i)`` gives the ground-truth instance ids where the format has them.
    """

    def __init__(
        self,
        fmt: type[Format],
        root: str | Path,
        split: str,
        transform: Optional[Callable] = None,
        *,
        mean: Sequence[float] = (0.485, 0.456, 0.406),
        std: Sequence[float] = (0.229, 0.224, 0.225),
        seed: int = 0,
    ):
        self.format = fmt
        self.root = fmt.resolve(root)
        self.split = fmt.split_name(split)
        self.transform = transform
        self.mean, self.std = tuple(mean), tuple(std)
        self.seed = seed
        self.class_names = list(fmt.class_names)
        self.class_colors = [list(c) for c in fmt.class_colors] if fmt.class_colors else None
        self.images, self.masks, self.instances = fmt.split(self.root, self.split)
        if not self.images:
            raise SegdilError(f"{self.root}: split {self.split!r} has no images; run `segdil data check --format {fmt.name} {root}`")

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Pair ``index`` before augmentation: (uint8 HxWx3, uint8 HxW train indices, 255 = ignore)."""
        image = load_image(self.images[index])
        mask = self.format.decode(self.masks[index])
        if mask.shape != image.shape[:2]:
            raise SegdilError(f"{self.masks[index]}: mask is {mask.shape[1]}x{mask.shape[0]} but its image is {image.shape[1]}x{image.shape[0]}")
        return image, mask

    def load_instances(self, index: int, mask: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        if self.instances is None or self.instances[index] is None:
            return None
        if mask is None:
            mask = self.format.decode(self.masks[index])
        return self.format.decode_instances(self.instances[index], mask)

    def __getitem__(self, key: int) -> tuple[torch.Tensor, torch.Tensor]:
        from segdil.data.transforms import apply_transform, mask_to_tensor, to_tensor

        image, mask = self.load(int(key) % len(self.images))
        image, mask = apply_transform(self.transform, image, mask, self.seed, int(key))
        return to_tensor(image, self.mean, self.std), mask_to_tensor(mask)


class FolderWithInstances(FolderDataset):
    """A folder split whose optional ``ROOT/{split}/instances/<stem>.png`` (16-bit ids, 0 = none) are
    the ground-truth objects; each instance's class is the mask class of its pixels."""

    def __init__(self, root, split, transform=None, **kwargs):
        super().__init__(root, split, transform, **kwargs)
        folder = self.root / split / "instances"
        found = {p.stem: p for p in folder.glob("*.png")} if folder.is_dir() else {}
        self.instances = [found.get(p.stem) for p in self.images] if found else None
        if found and None in self.instances:
            missing = self.images[self.instances.index(None)]
            raise SegdilError(f"{folder / (missing.stem + '.png')}: not found; with an instances/ folder every image needs its instance PNG")

    def load_instances(self, index, mask=None):
        if self.instances is None:
            return None
        ids = load_instances(self.instances[index])
        if mask is None:
            mask = self.load(index)[1]
        if ids.shape != mask.shape:
            raise SegdilError(f"{self.instances[index]}: instance mask is {ids.shape[1]}x{ids.shape[0]} but the mask is {mask.shape[1]}x{mask.shape[0]}")
        return ids


def format_names() -> list[str]:
    return ["folder", *sorted(_formats())]


def _formats() -> dict[str, type[Format]]:
    from segdil.data.ade20k import ADE20K
    from segdil.data.cityscapes import Cityscapes
    from segdil.data.voc import VOC

    return {f.name: f for f in (VOC, Cityscapes, ADE20K)}


def get_format(name: str) -> type[Format]:
    formats = _formats()
    if name not in formats:
        raise SegdilError(f"data.format {name!r}: unknown; valid: {', '.join(format_names())}")
    return formats[name]


def open_dataset(name: str, root: str | Path, split: str, transform: Optional[Callable] = None, **kwargs: Any) -> Dataset:
    """The dataset of ``split`` in layout ``name`` (``folder`` included), with ``.load(i)``,
    ``.images``, ``.masks``, ``.class_names`` and, where the data has them, ``.load_instances(i)``."""
    if name == "folder":
        return FolderWithInstances(root, split, transform, **kwargs)
    return PairedDataset(get_format(name), root, split, transform, **kwargs)


def check_format(name: str, root: str | Path, splits: Optional[Sequence[str]] = None, *, summary: bool = True, sample: Optional[int] = None):
    """``segdil data check --format NAME ROOT``: the CheckResult of ``segdil.data.check``.

    ``sample``: decode only the first ``sample`` pairs of each split (the layout is still listed whole).
    """
    from segdil.data.check import SIZE_BINS, CheckResult, _object_sizes, _values

    if name == "folder":
        from segdil.data.check import check_dataset

        return check_dataset(root, splits, summary=summary)
    fmt = get_format(name)
    problems: list[str] = []
    result = CheckResult({"root": str(root), "classes": list(fmt.class_names), "reduce_zero_label": False, "size_bins": list(SIZE_BINS), "splits": {}}, problems)
    try:
        base = fmt.resolve(root)
    except SegdilError as exc:
        problems.append(exc.message)
        return result
    result.summary["root"] = str(base)
    names = list(fmt.class_names)
    n = len(names)
    for split in splits or ("train", "val"):
        split = fmt.split_name(split)
        stats: dict[str, Any] = {"images": 0, "pixels": 0, "ignore_pixels": 0, "class_pixels": [0] * n, "object_sizes": {c: [0] * (len(SIZE_BINS) + 1) for c in names[1:]}}
        result.summary["splits"][split] = stats
        before = len(problems)
        fmt.mistakes(base, split, problems)
        if len(problems) > before:
            continue
        try:
            images, masks, _ = fmt.split(base, split)
        except SegdilError as exc:
            problems.append(exc.message)
            continue
        if not images:
            problems.append(f"{base}: split {split!r} has no images ({fmt.expected})")
            continue
        stats["images"] = len(images)
        for image_path, mask_path in list(zip(images, masks))[:sample]:
            try:
                image = load_image(image_path)
                mask = fmt.decode(mask_path)
            except SegdilError as exc:
                problems.append(exc.message)
                continue
            if mask.shape != image.shape[:2]:
                problems.append(f"{mask_path}: size mismatch, mask is {mask.shape[1]}x{mask.shape[0]} but {image_path.name} is {image.shape[1]}x{image.shape[0]}")
                continue
            counts = np.bincount(mask.ravel(), minlength=256)
            bad = [v for v in np.flatnonzero(counts).tolist() if v >= n and v != IGNORE_INDEX]
            if bad:
                problems.append(f"{mask_path}: values {_values(bad)} out of range ({n} {fmt.name} classes 0-{n - 1}, 255 = ignore)")
                continue
            stats["pixels"] += int(mask.size)
            stats["ignore_pixels"] += int(counts[IGNORE_INDEX])
            for class_id in range(n):
                stats["class_pixels"][class_id] += int(counts[class_id])
                if summary and class_id > 0 and counts[class_id]:
                    histogram = np.bincount(np.searchsorted(SIZE_BINS, _object_sizes(mask, class_id), side="right"), minlength=len(SIZE_BINS) + 1)
                    row = stats["object_sizes"][names[class_id]]
                    for b, c in enumerate(histogram.tolist()):
                        row[b] += c
    return result


def build_format_datasets(cfg, train_tf, val_tf, seed: int, norm: dict) -> tuple[Dataset, Dataset, list[str]]:
    """``build_datasets`` for ``data.format`` other than folder: checked first, refused with the problems."""
    # the layout and the first pair of each split: a large dataset starts at once (decoding stays in the workers)
    result = check_format(cfg.format, cfg.root, [cfg.train_split, cfg.val_split], summary=False, sample=1)
    if result.problems:
        more = len(result.problems) - 3
        raise SegdilError("; ".join(result.problems[:3]) + (f" (+{more} more)" if more > 0 else "") + f"; run `segdil data check --format {cfg.format} {cfg.root}` to list every problem")
    train = open_dataset(cfg.format, cfg.root, cfg.train_split, train_tf, seed=seed, **norm)
    val = open_dataset(cfg.format, cfg.root, cfg.val_split, val_tf, seed=seed, **norm)
    return train, val, list(train.class_names)

