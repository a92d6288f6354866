"""Tiny fixture trees of the layouts users have (VOC, Cityscapes, ADE20K, folder with instances).

Generated in the test's tmp_path: correct file names, palettes and ID encodings; a few images each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from segdil.data.io import default_palette


def _rgb(path: Path, h: int, w: int, seed: int, fmt: str = "PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path, format=fmt)


def _palette_png(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(mask.astype(np.uint8), mode="L").convert("P")
    image.putpalette([v for c in default_palette(256) for v in c])
    image.save(path)


def _gray(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8)).save(path)


def _uint16(path: Path, ids: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(ids.astype(np.uint16)).save(path)  # mode I;16, as Cityscapes ships them


def make_voc(base: Path, h: int = 24, w: int = 32) -> Path:
    """``base/VOCdevkit/VOC2012`` with 4 train and 2 val images; returns the VOC2012 folder."""
    root = base / "VOCdevkit" / "VOC2012"
    ids = [f"2007_{i:06d}" for i in range(6)]
    for k, stem in enumerate(ids):
        _rgb(root / "JPEGImages" / f"{stem}.jpg", h, w, k, "JPEG")
        mask = np.zeros((h, w), np.uint8)
        mask[2:10, 3:12] = 1 + k % 20  # an object
        mask[14:18, 20:24] = 15  # a small person
        mask[1, :] = 255  # the VOC object border (ignore)
        _palette_png(root / "SegmentationClass" / f"{stem}.png", mask)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(ids[:4]) + "\n")
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(ids[4:]) + "\n")
    return root


def cityscapes_label(h: int, w: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(labelIds uint8, instanceIds int32) of one synthetic street scene."""
    rng = np.random.default_rng(seed)
    label = np.full((h, w), 7, np.uint8)  # road
    label[: h // 3] = 23  # sky
    label[h // 3 : h // 2, : w // 2] = 11  # building
    label[h // 3 : h // 2, w // 2 :] = 21  # vegetation
    label[-2:, :] = 1  # ego vehicle (void)
    label[h // 2, ::7] = 17  # poles
    label[h // 2 : h // 2 + 2, w - 6 : w - 2] = 9  # parking (ignored in evaluation)
    instances = label.astype(np.int32).copy()
    for k, (lid, size) in enumerate([(26, 8), (26, 3), (24, 4), (24, 2), (33, 3), (29, 5), (25, 2)]):
        y = int(rng.integers(h // 2 + 1, h - size - 2))
        x = int(rng.integers(0, w - size))
        label[y : y + size, x : x + size] = lid
        instances[y : y + size, x : x + size] = lid * 1000 + k
    label[h // 2 + 1 : h // 2 + 3, 1:5] = 26  # a car group: class pixels without an instance
    instances[h // 2 + 1 : h // 2 + 3, 1:5] = 26
    return label, instances


def make_cityscapes(base: Path, h: int = 32, w: int = 64, splits=(("train", 3), ("val", 2))) -> Path:
    """``base/cityscapes`` holding leftImg8bit/ and gtFine/ (two cities per split)."""
    root = base / "cityscapes"
    seed = 0
    for split, n in splits:
        for i in range(n):
            city = ("aachen", "bremen")[i % 2] if split == "train" else ("frankfurt", "lindau")[i % 2]
            stem = f"{city}_{i:06d}_000019"
            _rgb(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", h, w, seed)
            label, instances = cityscapes_label(h, w, seed)
            _gray(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", label)
            _uint16(root / "gtFine" / split / city / f"{stem}_gtFine_instanceIds.png", instances)
            seed += 1
    return root


def make_ade20k(base: Path, h: int = 24, w: int = 32) -> Path:
    """``base/ADEChallengeData2016`` with 3 training and 2 validation images (0 = other)."""
    root = base / "ADEChallengeData2016"
    for split, n in (("training", 3), ("validation", 2)):
        for i in range(n):
            stem = f"ADE_{split[:5]}_{i:08d}"
            _rgb(root / "images" / split / f"{stem}.jpg", h, w, i, "JPEG")
            mask = np.full((h, w), 1, np.uint8)  # wall
            mask[: h // 3] = 3  # sky
            mask[10:14, 5:9] = 13  # person
            mask[0:2, 0:4] = 0  # other
            mask[20:22, 28:30] = 150  # flag
            _gray(root / "annotations" / split / f"{stem}.png", mask)
    return root


def make_folder_with_instances(base: Path, h: int = 24, w: int = 32) -> Path:
    """Folder format with ``instances/``: two touching objects of class 1 form one component but two instances."""
    root = base / "mine"
    (root).mkdir(parents=True)
    (root / "classes.yaml").write_text("classes: [background, cell]\n")
    for split, n in (("train", 3), ("val", 2)):
        for i in range(n):
            stem = f"img{i}"
            _rgb(root / split / "images" / f"{stem}.png", h, w, i)
            mask = np.zeros((h, w), np.uint8)
            ids = np.zeros((h, w), np.int32)
            mask[4:10, 4:10] = 1
            ids[4:10, 4:7] = 1
            ids[4:10, 7:10] = 2  # touching the first: one component, two instances
            mask[15:17, 20:22 + i] = 1
            ids[15:17, 20:22 + i] = 3
            _gray(root / split / "masks" / f"{stem}.png", mask)
            _uint16(root / split / "instances" / f"{stem}.png", ids)
    return root
