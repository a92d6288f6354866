"""Bad-input rows: datasets, masks and the Python API (issue #30)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from bad_input_kit import train_args
from dataset_fixtures import make_cityscapes, make_voc
from PIL import Image


def _voc_bad_split_list(t: Path) -> Path:
    root = make_voc(t)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_bytes(b"2007_000000\n2007_\xff\xfe0001\n")
    return root


def _voc_mask_77(t: Path) -> Path:
    root = make_voc(t)
    path = root / "SegmentationClass" / "2007_000002.png"
    mask = np.array(Image.open(path))
    mask[5:8, 5:8] = 77  # VOC has 21 classes; 77 is neither a class nor 255
    image = Image.fromarray(mask, mode="L").convert("P")
    image.putpalette(Image.open(path).getpalette())
    image.save(path)
    return root


def _cityscapes_small_instances(t: Path) -> Path:
    root = make_cityscapes(t)
    path = next((root / "gtFine" / "val").rglob("*_instanceIds.png"))
    Image.fromarray(np.zeros((16, 16), np.uint16)).save(path)
    return root


def _cityscapes_label(t: Path, value: int) -> Path:
    root = make_cityscapes(t)
    path = next((root / "gtFine" / "train").rglob("*_labelIds.png"))
    label = np.array(Image.open(path))
    label[0:3, 0:3] = value
    Image.fromarray(label).save(path)
    return root


def _cityscapes_train_ids(t: Path, with_ignore: bool) -> Path:
    """Every labelIds file of the train split replaced by its train IDs (as *_labelTrainIds.png hold them)."""
    from segdil.data.cityscapes import LABEL_TO_TRAIN_ID

    root = make_cityscapes(t)
    for path in (root / "gtFine" / "train").rglob("*_labelIds.png"):
        train_ids = LABEL_TO_TRAIN_ID[np.array(Image.open(path))]
        if not with_ignore:
            train_ids[train_ids == 255] = 0
        Image.fromarray(train_ids).save(path)
    return root


CASES: dict[str, tuple[Callable[[Path], list], int, tuple[str, ...]]] = {
    "voc-split-list-not-utf8": (lambda t: ["data", "check", "--format", "voc", _voc_bad_split_list(t)], 2, ("train.txt", "not UTF-8")),
    "train-voc-split-list-not-utf8": (lambda t: train_args(t / "run", "data.format=voc", f"data.root={_voc_bad_split_list(t)}"), 2, ("train.txt", "not UTF-8")),
    "voc-mask-value-77": (lambda t: ["data", "check", "--format", "voc", _voc_mask_77(t)], 2, ("2007_000002.png", "values 77 out of range")),
    "cityscapes-instances-wrong-size": (lambda t: ["data", "check", "--format", "cityscapes", _cityscapes_small_instances(t)], 2, ("_instanceIds.png", "16x16", "64x32")),
    "cityscapes-label-id-250": (lambda t: ["data", "check", "--format", "cityscapes", _cityscapes_label(t, 250)], 2, ("_labelIds.png", "250", "not Cityscapes label ids")),
    "cityscapes-train-ids-with-255": (lambda t: ["data", "check", "--format", "cityscapes", _cityscapes_train_ids(t, True)], 2, ("_labelIds.png", "holds train IDs")),
    "cityscapes-train-ids-without-255": (lambda t: ["data", "check", "--format", "cityscapes", _cityscapes_train_ids(t, False)], 2, ("gtFine/train", "look like train IDs")),
}
