"""ADE20K (MIT SceneParsing, 150 classes) read in place: ``ADEChallengeData2016`` itself.

Images ``images/{training,validation}/<id>.jpg``, annotations ``annotations/{training,validation}/<id>.png``
with 0 = other/unlabelled and k = class k. ``reduce_zero_label`` is applied: 0 -> 255 (ignore),
k -> k - 1. The splits ``train`` and ``val`` name ``training`` and ``validation``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from segdil.data.folder import reduce_zero
from segdil.data.format_base import Format
from segdil.data.io import default_palette, load_mask
from segdil.errors import SegdilError

ADE20K_CLASSES = [
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand",
    "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
    "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
    "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle",
    "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
    "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven",
    "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake",
    "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray",
    "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator",
    "glass", "clock", "flag",
]  # fmt: skip
assert len(ADE20K_CLASSES) == 150


class ADE20K(Format):
    name = "ade20k"
    class_names = ADE20K_CLASSES
    class_colors = default_palette(256)[1:151]
    split_aliases = {"train": "training", "val": "validation"}
    expected = "ADEChallengeData2016 holding images/{training,validation} and annotations/{training,validation}"

    @classmethod
    def resolve(cls, root):
        return cls.find(root, "annotations")

    @classmethod
    def split(cls, root: Path, split: str):
        image_dir, mask_dir = root / "images" / split, root / "annotations" / split
        if not image_dir.is_dir():
            raise SegdilError(f"{image_dir}: split folder not found; ADE20K splits are images/training and images/validation")
        images = sorted(Path(e.path) for e in os.scandir(image_dir) if e.is_file() and e.name.lower().endswith((".jpg", ".jpeg", ".png")) and not e.name.startswith("."))
        masks = {e.name[:-4]: Path(e.path) for e in os.scandir(mask_dir) if e.name.endswith(".png")} if mask_dir.is_dir() else {}
        missing = [p for p in images if p.stem not in masks]
        if missing:
            raise SegdilError(f"{missing[0]}: no annotation; expected {mask_dir / (missing[0].stem + '.png')}")
        return images, [masks[p.stem] for p in images], None

    @classmethod
    def decode(cls, path: Path) -> np.ndarray:
        raw = load_mask(path)
        top = int(raw.max(initial=0))
        if top > 150:
            raise SegdilError(
                f"{path}: value {top}; ADE20K annotations hold 0 (other) and classes 1-150, and segdil applies reduce_zero_label "
                "itself (0 -> ignore, k -> k-1): use the original ADEChallengeData2016 annotations, not reduced ones"
            )
        return reduce_zero(raw)

    @classmethod
    def mistakes(cls, root: Path, split: str, problems: list[str]) -> None:
        if not (root / "annotations" / split).is_dir():
            problems.append(f"{root / 'annotations' / split}: not found; ADE20K ships annotations/training and annotations/validation")
