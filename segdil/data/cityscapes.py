"""Cityscapes read in place: the root holding ``leftImg8bit/`` and ``gtFine/``.

Images ``leftImg8bit/{split}/{city}/<stem>_leftImg8bit.png``; labels
``gtFine/{split}/{city}/<stem>_gtFine_labelIds.png`` mapped to the 19 train IDs of the official
label table (every other label -> 255); instances ``<stem>_gtFine_instanceIds.png`` (id // 1000 is
the label, ids below 1000 are regions without instances).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from segdil.data.format_base import Format, load_instances
from segdil.data.io import open_decoded
from segdil.errors import SegdilError

# name, label id, train id, has instances, ignored in evaluation, colour (cityscapesscripts/helpers/labels.py)
LABELS = [
    ("unlabeled", 0, 255, False, True, (0, 0, 0)),
    ("ego vehicle", 1, 255, False, True, (0, 0, 0)),
    ("rectification border", 2, 255, False, True, (0, 0, 0)),
    ("out of roi", 3, 255, False, True, (0, 0, 0)),
    ("static", 4, 255, False, True, (0, 0, 0)),
    ("dynamic", 5, 255, False, True, (111, 74, 0)),
    ("ground", 6, 255, False, True, (81, 0, 81)),
    ("road", 7, 0, False, False, (128, 64, 128)),
    ("sidewalk", 8, 1, False, False, (244, 35, 232)),
    ("parking", 9, 255, False, True, (250, 170, 160)),
    ("rail track", 10, 255, False, True, (230, 150, 140)),
    ("building", 11, 2, False, False, (70, 70, 70)),
    ("wall", 12, 3, False, False, (102, 102, 156)),
    ("fence", 13, 4, False, False, (190, 153, 153)),
    ("guard rail", 14, 255, False, True, (180, 165, 180)),
    ("bridge", 15, 255, False, True, (150, 100, 100)),
    ("tunnel", 16, 255, False, True, (150, 120, 90)),
    ("pole", 17, 5, False, False, (153, 153, 153)),
    ("polegroup", 18, 255, False, True, (153, 153, 153)),
    ("traffic light", 19, 6, False, False, (250, 170, 30)),
    ("traffic sign", 20, 7, False, False, (220, 220, 0)),
    ("vegetation", 21, 8, False, False, (107, 142, 35)),
    ("terrain", 22, 9, False, False, (152, 251, 152)),
    ("sky", 23, 10, False, False, (70, 130, 180)),
    ("person", 24, 11, True, False, (220, 20, 60)),
    ("rider", 25, 12, True, False, (255, 0, 0)),
    ("car", 26, 13, True, False, (0, 0, 142)),
    ("truck", 27, 14, True, False, (0, 0, 70)),
    ("bus", 28, 15, True, False, (0, 60, 100)),
    ("caravan", 29, 255, True, True, (0, 0, 90)),
    ("trailer", 30, 255, True, True, (0, 0, 110)),
    ("train", 31, 16, True, False, (0, 80, 100)),
    ("motorcycle", 32, 17, True, False, (0, 0, 230)),
    ("bicycle", 33, 18, True, False, (119, 11, 32)),
]
TRAIN_LABELS = sorted((t, name, lid, inst, colour) for name, lid, t, inst, ignored, colour in LABELS if not ignored)
CLASS_NAMES = [name for _, name, _, _, _ in TRAIN_LABELS]
CLASS_COLORS = [colour for *_, colour in TRAIN_LABELS]
TRAIN_TO_LABEL_ID = np.array([lid for _, _, lid, _, _ in TRAIN_LABELS], dtype=np.uint8)
LABEL_TO_TRAIN_ID = np.full(256, 255, dtype=np.uint8)
for _name, _lid, _tid, *_ in LABELS:
    LABEL_TO_TRAIN_ID[_lid] = _tid
MAX_LABEL_ID = max(lid for _, lid, *_ in LABELS)  # 33; labelIds never hold more (license plate, -1, is not drawn)
FIRST_HIGH_TRAIN_ID = int(LABEL_TO_TRAIN_ID[19])  # traffic light: train ids from here come from label ids >= 19
INSTANCE_CLASSES = [t for t, _, _, inst, _ in TRAIN_LABELS if inst]  # train ids scored by iIoU

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"


class Cityscapes(Format):
    name = "cityscapes"
    class_names = CLASS_NAMES
    class_colors = CLASS_COLORS
    has_instances = True
    expected = "the folder holding leftImg8bit/{train,val}/<city>/ and gtFine/{train,val}/<city>/"

    @classmethod
    def resolve(cls, root):
        return cls.find(root, "leftImg8bit")

    @classmethod
    def split(cls, root: Path, split: str):
        image_root, label_root = root / "leftImg8bit" / split, root / "gtFine" / split
        if not image_root.is_dir():
            raise SegdilError(f"{image_root}: split folder not found; expected leftImg8bit/{split}/<city>/*{IMAGE_SUFFIX}")
        images, masks, instances = [], [], []
        for city in sorted(e.name for e in os.scandir(image_root) if e.is_dir()):
            labels = {e.name for e in os.scandir(label_root / city)} if (label_root / city).is_dir() else set()
            for name in sorted(e.name for e in os.scandir(image_root / city) if e.name.endswith(IMAGE_SUFFIX)):
                stem = name[: -len(IMAGE_SUFFIX)]
                if stem + LABEL_SUFFIX not in labels:
                    raise SegdilError(_missing_label(label_root / city, stem, labels))
                images.append(image_root / city / name)
                masks.append(label_root / city / (stem + LABEL_SUFFIX))
                instances.append(label_root / city / (stem + INSTANCE_SUFFIX) if stem + INSTANCE_SUFFIX in labels else None)
        return images, masks, instances

    @classmethod
    def decode(cls, path: Path) -> np.ndarray:
        image = open_decoded(Path(path), "mask")
        if image.mode not in ("L", "P"):
            raise SegdilError(
                f"{path}: mode {image.mode}, not a labelIds PNG; segdil reads the 8-bit *{LABEL_SUFFIX} files "
                "(the *_gtFine_color.png files are for viewing): keep the original gtFine_trainvaltest.zip files"
            )
        raw = np.asarray(image)
        if int(raw.max(initial=0)) > MAX_LABEL_ID:
            raise SegdilError(_not_label_ids(path, raw))
        return LABEL_TO_TRAIN_ID[raw]

    @classmethod
    def decode_instances(cls, path: Path, mask: np.ndarray) -> np.ndarray:
        ids = load_instances(path)
        ids[ids < 1000] = 0  # regions (crowds, stuff) without instances
        return ids

    @classmethod
    def split_mistakes(cls, root: Path, split: str, stats: dict, problems: list[str]) -> None:
        # train IDs saved as labelIds without a 255 read as label ids 0-18: road, sidewalk, building, wall,
        # fence and pole (train ids 0-5), the rest void. Real labelIds hold sky, vegetation and the things
        # (label ids 19-33, train ids 6-18) in nearly every image, so none of them in a whole split is the sign.
        if stats["pixels"] and not any(stats["class_pixels"][FIRST_HIGH_TRAIN_ID:]):
            problems.append(
                f"{root / 'gtFine' / split}: none of its {stats['images']} *{LABEL_SUFFIX} files holds a label id above 18 "
                "(traffic light, sign, vegetation, terrain, sky, person, car, ...: ids 19-33): they look like train IDs (0-18), "
                f"not label IDs; segdil maps labelIds to train IDs itself: use the original *{LABEL_SUFFIX} files of gtFine_trainvaltest.zip"
            )

    @classmethod
    def mistakes(cls, root: Path, split: str, problems: list[str]) -> None:
        label_root = root / "gtFine" / split
        if not label_root.is_dir():
            problems.append(f"{label_root}: not found; Cityscapes labels ship in gtFine_trainvaltest.zip (gtFine/{split}/<city>/*{LABEL_SUFFIX})")


def _not_label_ids(path: Path, raw: np.ndarray) -> str:
    values = np.flatnonzero(np.bincount(raw.ravel(), minlength=256)).tolist()
    beyond = [v for v in values if v > MAX_LABEL_ID]
    if beyond == [255] and all(v <= 18 for v in values if v != 255):
        return (
            f"{path}: holds train IDs (0-18 and 255), not label IDs (0-{MAX_LABEL_ID}); segdil maps labelIds to train IDs itself: "
            f"use the original *{LABEL_SUFFIX} files of gtFine_trainvaltest.zip, not *_labelTrainIds.png renamed"
        )
    shown = ", ".join(str(v) for v in beyond[:8]) + (f" (+{len(beyond) - 8} more)" if len(beyond) > 8 else "")
    return f"{path}: values {shown} are not Cityscapes label ids (0-{MAX_LABEL_ID}); fix the file or use the original *{LABEL_SUFFIX} of gtFine_trainvaltest.zip"


def _missing_label(folder: Path, stem: str, present: set[str]) -> str:
    expected = folder / (stem + LABEL_SUFFIX)
    if stem + "_gtFine_color.png" in present:
        return f"{expected}: not found, only {stem}_gtFine_color.png; the colour PNGs are for viewing, segdil reads *{LABEL_SUFFIX}: unpack them from gtFine_trainvaltest.zip"
    if stem + "_gtFine_labelTrainIds.png" in present:
        return f"{expected}: not found, only {stem}_gtFine_labelTrainIds.png; segdil maps labelIds to train IDs itself: keep the original *{LABEL_SUFFIX} files"
    return f"{expected}: not found; every leftImg8bit image needs its gtFine labelIds PNG (gtFine_trainvaltest.zip)"
