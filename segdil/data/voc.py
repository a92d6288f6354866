"""Pascal VOC 2012 read in place: ``VOCdevkit/VOC2012`` (holding ``JPEGImages/``).

Images ``JPEGImages/<id>.jpg``; masks ``SegmentationClass/<id>.png`` (palette PNGs: the palette
index is the class, 255 = ignore) or, for ids only SBD labels, ``SegmentationClassAug/<id>.png``;
the ids of a split come from ``ImageSets/Segmentation/<split>.txt`` (or ``ImageSets/SegmentationAug/``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from segdil.data.format_base import Format
from segdil.data.io import default_palette, open_decoded
from segdil.errors import SegdilError, shown

VOC_CLASSES = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
]  # fmt: skip


class VOC(Format):
    name = "voc"
    class_names = VOC_CLASSES
    class_colors = default_palette(len(VOC_CLASSES))
    expected = "VOCdevkit/VOC2012 holding JPEGImages/, SegmentationClass/ and ImageSets/Segmentation/{train,val}.txt"

    @classmethod
    def resolve(cls, root):
        return cls.find(root, "JPEGImages")

    @classmethod
    def split_file(cls, root: Path, split: str) -> Optional[Path]:
        for folder in ("Segmentation", "SegmentationAug"):
            path = root / "ImageSets" / folder / f"{split}.txt"
            if path.is_file():
                return path
        return None

    @classmethod
    def split(cls, root: Path, split: str):
        listing = cls.split_file(root, split)
        if listing is None:
            raise SegdilError(f"{root / 'ImageSets' / 'Segmentation' / (split + '.txt')}: split list not found; VOC splits are ImageSets/Segmentation/train.txt and val.txt")
        ids = read_split_list(listing)
        images = {p.stem: p for p in _scan(root / "JPEGImages")}
        masks = {p.stem: p for p in _scan(root / "SegmentationClassAug")}
        masks.update({p.stem: p for p in _scan(root / "SegmentationClass")})
        for stem in ids:
            if stem not in images:
                raise SegdilError(f"{listing}: id {shown(stem)} has no image in {root / 'JPEGImages'} (expected <id>.jpg)")
            if stem not in masks:
                raise SegdilError(f"{listing}: id {shown(stem)} has no mask in {root / 'SegmentationClass'} (nor in SegmentationClassAug/; expected <id>.png)")
        return [images[s] for s in ids], [masks[s] for s in ids], None

    @classmethod
    def decode(cls, path: Path) -> np.ndarray:
        image = open_decoded(Path(path), "mask")
        if image.mode in ("RGB", "RGBA"):
            raise SegdilError(
                f"{path}: RGB mask; VOC masks are palette PNGs whose palette index is the class (255 = ignore): "
                "use the original SegmentationClass/ PNGs (an image editor or cv2.imwrite turns them into colours)"
            )
        if image.mode not in ("P", "L"):
            raise SegdilError(f"{path}: mask in mode {image.mode}; VOC masks are 8-bit palette PNGs")
        return np.ascontiguousarray(np.array(image))

    @classmethod
    def mistakes(cls, root: Path, split: str, problems: list[str]) -> None:
        if not (root / "SegmentationClass").is_dir() and not (root / "SegmentationClassAug").is_dir():
            problems.append(f"{root / 'SegmentationClass'}: not found; the VOC masks ship in VOCtrainval_11-May-2012.tar (VOC2012/SegmentationClass/)")
        elif cls.split_file(root, split) is None:
            problems.append(f"{root / 'ImageSets' / 'Segmentation' / (split + '.txt')}: split list not found; VOC splits are ImageSets/Segmentation/train.txt and val.txt")


def read_split_list(path: Path) -> list[str]:
    """The image ids of a split list (first word of each non-empty line); a file that is not UTF-8
    text or cannot be read is a one-line error naming it."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SegdilError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); a VOC split list holds one image id per line, "
            "e.g. 2007_000032: re-save it as UTF-8 (or plain ASCII)"
        ) from None
    except OSError as exc:
        raise SegdilError(f"{path}: cannot read the split list ({exc.strerror or type(exc).__name__})") from None
    if "\x00" in text:
        raise SegdilError(f"{path}: holds NUL bytes, not a text split list; a VOC split list holds one image id per line, e.g. 2007_000032")
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def _scan(folder: Path) -> list[Path]:
    import os

    if not folder.is_dir():
        return []
    return [Path(e.path) for e in os.scandir(folder) if e.is_file() and not e.name.startswith(".")]
