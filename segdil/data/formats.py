"""Dataset layouts read in place: ``data.format: folder | voc | cityscapes | ade20k``.

Every format lists file paths only when a split is opened (no file is decoded until an item is
asked for, i.e. in the loader's workers) and decodes its masks to train indices, 255 = ignore.
A format is a class (a subclass of ``segdil.data.format_base.Format``) with:

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

from segdil.data.ade20k import ADE20K
from segdil.data.check import SIZE_BINS, CheckResult, check_dataset, object_sizes, shown_values
from segdil.data.cityscapes import Cityscapes
from segdil.data.folder import FolderDataset
from segdil.data.format_base import IGNORE_INDEX, Format, load_instances
from segdil.data.io import load_image, values_out_of_range
from segdil.data.voc import VOC
from segdil.errors import SegdilError


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
        bad = values_out_of_range(mask, len(self.class_names))
        if bad:  # a loss or a confusion matrix would fail on them mid-run (IndexError: Target 77 is out of bounds)
            raise SegdilError(f"{self.masks[index]}: {_range_problem(bad, self.format)}; fix or remove the mask, `segdil data check --format {self.format.name} {self.root}` lists every such file")
        return image, mask

    def load_instances(self, index: int, mask: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        if self.instances is None or self.instances[index] is None:
            return None
        if mask is None:
            mask = self.format.decode(self.masks[index])
        ids = self.format.decode_instances(self.instances[index], mask)
        if ids.shape != mask.shape:
            raise SegdilError(_instance_size_problem(self.instances[index], ids, mask))
        return ids

    def __getitem__(self, key: int) -> tuple[torch.Tensor, torch.Tensor]:
        # albumentations: listing and checking data (segdil data check) never loads it
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
            raise SegdilError(_instance_size_problem(self.instances[index], ids, mask))
        return ids


def _range_problem(bad: list[int], fmt: type[Format]) -> str:
    n = len(fmt.class_names)
    return f"values {shown_values(bad)} out of range ({n} {fmt.name} classes 0-{n - 1}, 255 = ignore)"


def _instance_size_problem(path: Path, ids: np.ndarray, mask: np.ndarray) -> str:
    return f"{path}: instance mask is {ids.shape[1]}x{ids.shape[0]} but the mask is {mask.shape[1]}x{mask.shape[0]}; every instance map must match its image"


FORMATS: dict[str, type[Format]] = {f.name: f for f in (VOC, Cityscapes, ADE20K)}


def format_names() -> list[str]:
    return ["folder", *sorted(FORMATS)]


def get_format(name: str) -> type[Format]:
    if name not in FORMATS:
        raise SegdilError(f"data.format {name!r}: unknown; valid: {', '.join(format_names())}")
    return FORMATS[name]


def open_dataset(name: str, root: str | Path, split: str, transform: Optional[Callable] = None, **kwargs: Any) -> Dataset:
    """The dataset of ``split`` in layout ``name`` (``folder`` included), with ``.load(i)``,
    ``.images``, ``.masks``, ``.class_names`` and, where the data has them, ``.load_instances(i)``."""
    if name == "folder":
        return FolderWithInstances(root, split, transform, **kwargs)
    return PairedDataset(get_format(name), root, split, transform, **kwargs)


def check_format(name: str, root: str | Path, splits: Optional[Sequence[str]] = None, *, summary: bool = True, sample: Optional[int] = None):
    """``segdil data check --format NAME ROOT``: the CheckResult of ``segdil.data.check``.

    ``sample``: decode only the first ``sample`` pairs of each split (the layout is still listed whole;
    the format's split-wide checks, ``Format.split_mistakes``, run only on a whole split).
    """
    if name == "folder":
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
    for split in splits or ("train", "val"):
        split = fmt.split_name(split)
        stats: dict[str, Any] = {"images": 0, "pixels": 0, "ignore_pixels": 0, "class_pixels": [0] * len(names), "object_sizes": {c: [0] * (len(SIZE_BINS) + 1) for c in names[1:]}}
        result.summary["splits"][split] = stats
        before = len(problems)
        fmt.mistakes(base, split, problems)
        if len(problems) > before:
            continue
        try:
            images, masks, instances = fmt.split(base, split)
        except SegdilError as exc:
            problems.append(exc.message)
            continue
        if not images:
            problems.append(f"{base}: split {split!r} has no images ({fmt.expected})")
            continue
        stats["images"] = len(images)
        checked = 0
        for index, (image_path, mask_path) in enumerate(list(zip(images, masks))[:sample]):
            mask = _check_pair(fmt, image_path, mask_path, instances[index] if instances else None, problems)
            if mask is not None:
                checked += 1
                _add_stats(stats, mask, names, summary)
        if sample is None and checked == len(images):
            fmt.split_mistakes(base, split, stats, problems)
    return result


def _check_pair(fmt: type[Format], image_path: Path, mask_path: Path, instance_path: Optional[Path], problems: list[str]) -> Optional[np.ndarray]:
    """The decoded mask of one pair, or None with its problem listed."""
    try:
        image = load_image(image_path)
        mask = fmt.decode(mask_path)
    except SegdilError as exc:
        problems.append(exc.message)
        return None
    if mask.shape != image.shape[:2]:
        problems.append(f"{mask_path}: size mismatch, mask is {mask.shape[1]}x{mask.shape[0]} but {image_path.name} is {image.shape[1]}x{image.shape[0]}")
        return None
    bad = values_out_of_range(mask, len(fmt.class_names))
    if bad:
        problems.append(f"{mask_path}: {_range_problem(bad, fmt)}; fix the mask or leave its pair out of the split")
        return None
    if instance_path is not None:
        try:
            ids = fmt.decode_instances(instance_path, mask)
        except SegdilError as exc:
            problems.append(exc.message)
            return None
        if ids.shape != mask.shape:
            problems.append(_instance_size_problem(instance_path, ids, mask))
            return None
    return mask


def _add_stats(stats: dict[str, Any], mask: np.ndarray, names: list[str], summary: bool) -> None:
    counts = np.bincount(mask.ravel(), minlength=256)
    stats["pixels"] += int(mask.size)
    stats["ignore_pixels"] += int(counts[IGNORE_INDEX])
    for class_id in range(len(names)):
        stats["class_pixels"][class_id] += int(counts[class_id])
        if summary and class_id > 0 and counts[class_id]:
            histogram = np.bincount(np.searchsorted(SIZE_BINS, object_sizes(mask, class_id), side="right"), minlength=len(SIZE_BINS) + 1)
            row = stats["object_sizes"][names[class_id]]
            for b, c in enumerate(histogram.tolist()):
                row[b] += c


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

