"""``segdil data synth --scene street``: street scenes written in the Cityscapes layout.

    OUT/leftImg8bit/{train,val}/street/street_<index:06d>_000019_leftImg8bit.png
    OUT/gtFine/{train,val}/street/street_<index:06d>_000019_gtFine_labelIds.png      Cityscapes label ids (8-bit)
                                                        _gtFine_instanceIds.png   16-bit: label id x 1000 + k on
                                                                                  person and car, the label id elsewhere
    OUT/objects.json   every thing (car, person, pole, traffic sign: class, bbox, visible area, depth) and decoy
    OUT/preview.png    the first scenes beside their colourised masks

``data.format: cityscapes`` (``segdil.data.cityscapes``), ``segdil data check --format cityscapes``
and cityscapesscripts' evaluator read it as they read Cityscapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np
from PIL import Image

from segdil.atomic import atomic_write
from segdil.config import SynthConfig
from segdil.data.io import save_image
from segdil.data.synth_street import cityscapes_ids, generate_street, street_colour

CITY = "street"
IMAGE_SUFFIX, LABEL_SUFFIX, INSTANCE_SUFFIX = "_leftImg8bit.png", "_gtFine_labelIds.png", "_gtFine_instanceIds.png"


def street_stem(index: int) -> str:
    """``street_<index>_000019``: Cityscapes' ``<city>_<sequence>_<frame>`` (frame 19 is the annotated one)."""
    return f"{CITY}_{index:06d}_000019"


def save_png(path: str | Path, array: np.ndarray) -> None:
    """A single-channel PNG, atomically: uint8 as 8-bit gray, uint16 as 16-bit gray (mode I;16)."""
    with atomic_write(path) as f:
        Image.fromarray(np.ascontiguousarray(array)).save(f, format="PNG")


def write_street(root: Path, cfg: SynthConfig, progress: Optional[Callable[[int], None]] = None) -> tuple[dict, dict]:
    """Write both splits under ``root``; returns ``objects[split][stem]`` and ``decoys[split][stem]``."""
    objects: dict[str, dict[str, list]] = {}
    decoys: dict[str, dict[str, list]] = {}
    done = 0
    for split, count in (("train", cfg.n_train), ("val", cfg.n_val)):
        objects[split], decoys[split] = {}, {}
        images, labels = root / "leftImg8bit" / split / CITY, root / "gtFine" / split / CITY
        images.mkdir(parents=True)
        labels.mkdir(parents=True)
        for index in range(count):
            scene = generate_street(cfg, split, index)
            label_ids, instance_ids = cityscapes_ids(scene)
            stem = street_stem(index)
            save_image(images / f"{stem}{IMAGE_SUFFIX}", scene.image)
            save_png(labels / f"{stem}{LABEL_SUFFIX}", label_ids)
            save_png(labels / f"{stem}{INSTANCE_SUFFIX}", instance_ids)
            objects[split][stem] = [{k: o[k] for k in ("class", "class_id", "instance_id", "bbox", "area", "depth_m")} for o in scene.objects]
            decoys[split][stem] = [{k: d[k] for k in ("kind", "label", "label_id", "bbox", "area")} for d in scene.decoys]
            done += 1
            if progress is not None:
                progress(done)
    return objects, decoys


def street_preview(cfg: SynthConfig, count: int = 2, width: int = 1024, split: str = "train", first: int = 0) -> np.ndarray:
    """Scenes beside their colourised masks, one row each, every row ``width`` pixels wide."""
    rows = []
    for index in range(first, first + count):
        scene = generate_street(cfg, split, index)
        row = np.concatenate([scene.image, np.full((scene.mask.shape[0], max(2, cfg.size // 128), 3), 255, np.uint8), street_colour(scene.mask)], axis=1)
        height = round(row.shape[0] * width / row.shape[1])
        rows.append(cv2.resize(row, (width, height), interpolation=cv2.INTER_AREA))
    return np.concatenate(rows, axis=0) if rows else np.zeros((8, width, 3), np.uint8)
