"""``segdil data check``: read every file of a folder dataset, summarise it and list every problem.

Each problem is one line that starts with the file it is about. Training runs the same check
(``ensure_valid``) and refuses the data with the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import cv2
import numpy as np

from segdil.data.folder import IGNORE_INDEX, index_masks, read_classes, reduce_zero
from segdil.data.io import IMAGE_EXTS, load_image, load_mask
from segdil.errors import SegdilError

SIZE_BINS: tuple[int, ...] = (4, 8, 16, 32, 64, 128)
MIN_IMAGE_SIDE = 8  # smaller images cannot be scaled and cropped for training


@dataclass
class CheckResult:
    summary: dict[str, Any]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def find_splits(root: Path) -> list[str]:
    """Sub-folders of ``root`` that hold an ``images`` or ``masks`` folder, sorted by name."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and ((p / "images").is_dir() or (p / "masks").is_dir()))


def size_bin_labels(bins: Sequence[int] = SIZE_BINS) -> list[str]:
    """``["<4", "4-8", ..., ">=128"]`` for object size s = sqrt(area) in pixels."""
    return [f"<{bins[0]}"] + [f"{a}-{b}" for a, b in zip(bins[:-1], bins[1:])] + [f">={bins[-1]}"]


def object_sizes(mask: np.ndarray, class_id: int) -> np.ndarray:
    """sqrt(area) of each 8-connected component of ``class_id``."""
    count, _, stats, _ = cv2.connectedComponentsWithStats((mask == class_id).astype(np.uint8), connectivity=8)
    return np.sqrt(stats[1:count, cv2.CC_STAT_AREA].astype(np.float64))


def shown_values(values: Sequence[int]) -> str:
    """The first 8 of ``values`` for a message, and how many more there are."""
    shown = ", ".join(str(v) for v in values[:8])
    return shown + (f" (+{len(values) - 8} more)" if len(values) > 8 else "")


def check_dataset(root: str | Path, splits: Optional[Sequence[str]] = None, *, summary: bool = True) -> CheckResult:
    """Read every image and mask under ``root`` and return the summary and the problems found.

    ``splits`` names the splits that must exist (default: every ``ROOT/<split>/images`` found).
    ``summary=False`` skips the object-size histograms (the slow part).
    """
    root = Path(root)
    problems: list[str] = []
    result = CheckResult({"root": str(root), "classes": [], "reduce_zero_label": False, "size_bins": list(SIZE_BINS), "splits": {}}, problems)
    if not root.is_dir():
        problems.append(f"{root}: dataset folder not found")
        return result
    try:
        classes = read_classes(root)
    except SegdilError as exc:
        problems.append(exc.message)
        classes = None
    if classes is not None:
        result.summary["classes"] = classes.names
        result.summary["reduce_zero_label"] = classes.reduce_zero_label
    split_names = list(splits) if splits else find_splits(root)
    if not split_names:
        problems.append(f"{root}: no split folders; expected {root}/<split>/images and {root}/<split>/masks, e.g. train and val")
    binary_candidates: list[Path] = []
    foreground_seen = False
    for split in split_names:
        stats, candidates, foreground = _check_split(root, split, classes, problems, summary)
        result.summary["splits"][split] = stats
        binary_candidates += candidates
        foreground_seen |= foreground
    for path in binary_candidates:  # each one, even when other masks hold class indices
        problems.append(
            f"{path}: looks like a 0/255 binary mask (values only 0 and 255), but 255 means ignore; map the foreground to 1 "
            "(mask[mask == 255] = 1) and name the classes in classes.yaml, e.g. classes: [background, foreground]"
        )
    return result


def _list_images(image_dir: Path, problems: list[str]) -> dict[str, Path]:
    """The split's images by stem; other files and clashing stems are problems."""
    images: dict[str, Path] = {}
    for path in sorted(image_dir.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        if path.suffix.lower() not in IMAGE_EXTS:
            problems.append(f"{path}: not an image file (extension {path.suffix or 'none'!r}); move it out of {image_dir} (images: {', '.join(IMAGE_EXTS)})")
            continue
        if path.stem in images:
            problems.append(f"{path}: two images share the stem {path.stem!r} ({images[path.stem].name}, {path.name}); rename one")
            continue
        images[path.stem] = path
    return images


def _check_split(root: Path, split: str, classes, problems: list[str], summary: bool) -> tuple[dict[str, Any], list[Path], bool]:
    image_dir, mask_dir = root / split / "images", root / split / "masks"
    n_classes = len(classes.names) if classes is not None else None
    names = classes.names if classes is not None else []
    stats: dict[str, Any] = {"images": 0, "pixels": 0, "ignore_pixels": 0, "class_pixels": [0] * len(names), "object_sizes": {n: [0] * (len(SIZE_BINS) + 1) for n in names[1:]}}
    if not image_dir.is_dir():
        problems.append(f"{image_dir}: split folder not found; expected {image_dir} and {mask_dir}")
        return stats, [], False
    images = _list_images(image_dir, problems)
    stats["images"] = len(images)
    if not images:
        problems.append(f"{image_dir}: empty split, no images ({', '.join(IMAGE_EXTS)})")
    masks = index_masks(mask_dir)
    if mask_dir.is_dir():
        for path in sorted(mask_dir.iterdir()):
            if path.name.startswith(".") or path.is_dir():
                continue
            if path.suffix.lower() != ".png":
                hint = " (lossy formats such as JPEG change class values)" if path.suffix.lower() in IMAGE_EXTS else ""
                problems.append(f"{path}: not a PNG mask; masks must be {mask_dir}/<image stem>.png{hint}")
            elif path.stem not in images:
                problems.append(f"{path}: mask without an image; expected {image_dir}/{path.stem} with one of {', '.join(IMAGE_EXTS)}")
    limit = (n_classes + 1 if classes.reduce_zero_label else n_classes) if classes is not None else None
    candidates: list[Path] = []
    foreground = False
    for stem, image_path in images.items():
        image = mask = None
        try:
            image = load_image(image_path)
        except SegdilError as exc:
            problems.append(exc.message)
        mask_path = masks.get(stem)
        if mask_path is None:
            problems.append(f"{image_path}: no mask; expected {mask_dir / (stem + '.png')}")
            continue
        try:
            mask = load_mask(mask_path)
        except SegdilError as exc:
            problems.append(exc.message)
            continue
        if image is not None and min(image.shape[:2]) < MIN_IMAGE_SIDE:
            problems.append(f"{image_path}: {image.shape[1]}x{image.shape[0]} image is smaller than {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels, the smallest segdil trains on; remove it or pad it")
        if image is not None and mask.shape != image.shape[:2]:
            problems.append(f"{mask_path}: size mismatch, mask is {mask.shape[1]}x{mask.shape[0]} but {image_path.name} is {image.shape[1]}x{image.shape[0]}")
        counts = np.bincount(mask.ravel(), minlength=256)
        if counts[1:IGNORE_INDEX].any():
            foreground = True
        elif counts[IGNORE_INDEX]:
            candidates.append(mask_path)
        if limit is None:
            continue
        bad = [v for v in np.flatnonzero(counts).tolist() if v >= limit and v != IGNORE_INDEX]
        if bad:
            where = f"{n_classes} classes with reduce_zero_label, so values 0-{n_classes}" if classes.reduce_zero_label else f"{n_classes} classes, so values 0-{n_classes - 1}"
            hint = "; fix the mask or add the classes to classes.yaml"
            if bad == [n_classes] and counts[0] and not classes.reduce_zero_label:
                hint = "; 0 looks like 'unlabelled' (ADE20K style): set reduce_zero_label: true in classes.yaml (or use --format ade20k)"
            problems.append(f"{mask_path}: values {shown_values(bad)} out of range ({where} and 255 = ignore){hint}")
            continue
        if classes.reduce_zero_label:
            mask = reduce_zero(mask)
            counts = np.bincount(mask.ravel(), minlength=256)
        stats["pixels"] += int(mask.size)
        stats["ignore_pixels"] += int(counts[IGNORE_INDEX])
        for class_id in range(n_classes):
            stats["class_pixels"][class_id] += int(counts[class_id])
            if summary and class_id > 0 and counts[class_id]:
                sizes = object_sizes(mask, class_id)
                histogram = np.bincount(np.searchsorted(SIZE_BINS, sizes, side="right"), minlength=len(SIZE_BINS) + 1)
                row = stats["object_sizes"][names[class_id]]
                for b, c in enumerate(histogram.tolist()):
                    row[b] += c
    return stats, candidates, foreground


def format_summary(result: CheckResult) -> str:
    """The summary as printed by ``segdil data check``."""
    s = result.summary
    names = s["classes"]
    lines = [f"dataset {s['root']}: {len(names)} classes" + (" (reduce_zero_label)" if s["reduce_zero_label"] else "")]
    labels = size_bin_labels(s["size_bins"])
    width = max([len(n) for n in names] + [8])
    for split, stats in s["splits"].items():
        lines.append(f"\n[{split}] {stats['images']} images, {stats['pixels']:,} labelled pixels, {_share(stats['ignore_pixels'], stats['pixels'])} ignore")
        if not names or not stats["pixels"]:
            continue
        lines.append(f"  {'':<{width}} {'':>7}  objects per size bin, sqrt(area) in px")
        lines.append(f"  {'class':<{width}} {'pixels':>7}  " + " ".join(f"{b:>6}" for b in labels))
        for class_id, name in enumerate(names):
            row = stats["object_sizes"].get(name)
            cells = " ".join(f"{c:>6}" for c in row) if row is not None else "(background)"
            lines.append(f"  {name:<{width}} {_share(stats['class_pixels'][class_id], stats['pixels']):>7}  {cells}")
    return "\n".join(lines)


def _share(part: int, total: int) -> str:
    return f"{100.0 * part / total:.2f}%" if total else "-"


def ensure_valid(root: str | Path, splits: Optional[Sequence[str]] = None, *, shown: int = 3) -> None:
    """Raise SegdilError with the first problems when ``check_dataset`` finds any (used before training)."""
    result = check_dataset(root, splits, summary=False)
    if result.problems:
        first = "; ".join(result.problems[:shown])
        more = len(result.problems) - shown
        tail = f" (+{more} more)" if more > 0 else ""
        raise SegdilError(f"{first}{tail}; run `segdil data check {root}` to list every problem")

