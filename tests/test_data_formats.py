"""VOC, Cityscapes and ADE20K read in place: listing, class mapping, ignore, `data check` messages."""

import numpy as np
import pytest
from click.testing import CliRunner
from dataset_fixtures import (
    make_ade20k,
    make_cityscapes,
    make_folder_with_instances,
    make_voc,
)
from PIL import Image

from segdil.cli import cli
from segdil.data.cityscapes import CLASS_NAMES, LABEL_TO_TRAIN_ID
from segdil.data.formats import check_format, open_dataset
from segdil.errors import SegdilError


def _check(fmt, root):
    return CliRunner().invoke(cli, ["data", "check", "--format", fmt, str(root)])


def test_voc_palette_indices_ignore_and_parent_root(tmp_path):
    root = make_voc(tmp_path)
    for given in (root, root.parent, tmp_path):  # VOC2012, VOCdevkit, a parent of VOCdevkit
        ds = open_dataset("voc", given, "train")
        assert ds.root == root and len(ds) == 4
    image, mask = ds.load(1)
    assert image.shape == (24, 32, 3) and mask.dtype == np.uint8
    assert mask[5, 5] == 2 and mask[15, 21] == 15 and (mask[1] == 255).all()  # palette index = class
    assert ds.class_names[15] == "person" and len(ds.class_names) == 21
    assert [p.stem for p in open_dataset("voc", root, "val").images] == ["2007_000004", "2007_000005"]
    result = _check("voc", tmp_path)
    assert result.exit_code == 0, result.output
    assert "21 classes" in result.output and "no problems found" in result.output


def test_voc_rgb_masks_are_one_clear_message(tmp_path):
    root = make_voc(tmp_path)
    bad = root / "SegmentationClass" / "2007_000002.png"
    Image.open(bad).convert("RGB").save(bad)
    result = _check("voc", root)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if "2007_000002.png" in line]
    assert len(lines) == 1 and "RGB mask" in lines[0] and "palette" in lines[0]
    with pytest.raises(SegdilError, match="SegmentationClass"):
        open_dataset("voc", root, "train").load(2)


def test_cityscapes_label_ids_to_train_ids_and_instances(tmp_path):
    root = make_cityscapes(tmp_path)
    ds = open_dataset("cityscapes", tmp_path, "train")
    assert ds.root == root and len(ds) == 3 and len(ds.class_names) == 19
    assert [p.parent.name for p in ds.images] == ["aachen", "aachen", "bremen"]
    raw = np.array(Image.open(ds.masks[0]))
    _, mask = ds.load(0)
    assert (mask[raw == 26] == CLASS_NAMES.index("car")).all() and (mask[raw == 7] == 0).all()
    assert (mask[raw == 1] == 255).all() and (mask[raw == 9] == 255).all() and (mask[raw == 29] == 255).all()
    assert LABEL_TO_TRAIN_ID[33] == 18 and LABEL_TO_TRAIN_ID[0] == 255
    ids = ds.load_instances(0)
    assert ids.dtype == np.int64 and set(np.unique(ids[ids > 0]) // 1000) <= {24, 25, 26, 29, 33}
    assert (ids[raw == 26] >= 0).all() and 26 not in np.unique(ids)  # the car group is no instance
    assert _check("cityscapes", root).exit_code == 0


def test_cityscapes_color_png_instead_of_label_ids(tmp_path):
    root = make_cityscapes(tmp_path)
    label = next((root / "gtFine" / "val").rglob("*_labelIds.png"))
    label.rename(str(label).replace("_labelIds", "_color"))
    result = _check("cityscapes", root)
    assert result.exit_code == 2
    assert "_gtFine_color.png" in result.output and "for viewing" in result.output and "labelIds" in result.output
    # a colour PNG saved under the labelIds name
    other = next((root / "gtFine" / "train").rglob("*_labelIds.png"))
    Image.new("RGB", Image.open(other).size).save(other)
    ds = open_dataset("cityscapes", root, "train")
    with pytest.raises(SegdilError, match="not a labelIds PNG"):
        ds.load(ds.masks.index(other))


def test_ade20k_reduce_zero_label_and_split_names(tmp_path):
    root = make_ade20k(tmp_path)
    ds = open_dataset("ade20k", tmp_path, "train")
    assert ds.split == "training" and len(ds) == 3 and len(ds.class_names) == 150
    _, mask = ds.load(0)
    assert mask[0, 0] == 255 and mask[5, 5] == 2 and mask[11, 6] == 12 and mask[20, 28] == 149  # k -> k-1, 0 -> ignore
    assert ds.class_names[12] == "person" and ds.class_names[149] == "flag"
    assert _check("ade20k", root).exit_code == 0


def test_ade20k_already_reduced_annotations(tmp_path):
    root = make_ade20k(tmp_path)
    path = next((root / "annotations" / "validation").glob("*.png"))
    Image.fromarray(np.full((24, 32), 255, np.uint8)).save(path)
    result = _check("ade20k", root)
    assert result.exit_code == 2 and "reduce_zero_label" in result.output and path.name in result.output


def test_ade20k_as_a_folder_without_reduce_zero_label(tmp_path):
    root = tmp_path / "ade_folder"
    (root / "train" / "images").mkdir(parents=True)
    (root / "train" / "masks").mkdir(parents=True)
    (root / "classes.yaml").write_text("classes: [" + ", ".join(f"c{i}" for i in range(150)) + "]\n")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "train" / "images" / "a.png")
    mask = np.zeros((8, 8), np.uint8)
    mask[2:4, 2:4] = 150
    Image.fromarray(mask).save(root / "train" / "masks" / "a.png")
    result = CliRunner().invoke(cli, ["data", "check", str(root)])
    assert result.exit_code == 2
    line = next(line for line in result.output.splitlines() if "a.png" in line)
    assert "reduce_zero_label: true" in line


def test_missing_layout_is_one_line(tmp_path):
    result = _check("cityscapes", tmp_path)
    assert result.exit_code == 2 and "no leftImg8bit/" in result.output
    root = make_cityscapes(tmp_path)
    for p in (root / "gtFine" / "val").rglob("*"):
        if p.is_file():
            p.unlink()
    result = _check("cityscapes", root)
    assert result.exit_code == 2 and "gtFine" in result.output


def test_folder_instances_are_listed(tmp_path):
    root = make_folder_with_instances(tmp_path)
    ds = open_dataset("folder", root, "val")
    ids = ds.load_instances(1)
    assert sorted(np.unique(ids).tolist()) == [0, 1, 2, 3]
    assert check_format("folder", root).ok


def test_listing_cityscapes_scans_each_folder_once_and_never_each_file(tmp_path, monkeypatch):
    # the listing reads names only: its file-system calls grow with the cities, not the images
    import os
    from pathlib import Path

    root = tmp_path / "cs"
    cities, per_city = 3, 40
    for city in range(cities):
        images = root / "leftImg8bit" / "train" / f"city{city}"
        labels = root / "gtFine" / "train" / f"city{city}"
        images.mkdir(parents=True)
        labels.mkdir(parents=True)
        for i in range(per_city):
            stem = f"city{city}_{i:06d}_000019"
            (images / f"{stem}_leftImg8bit.png").touch()
            for suffix in ("labelIds", "instanceIds", "color", "polygons"):
                (labels / f"{stem}_gtFine_{suffix}.png").touch()
    scans, stats = [], []
    real_scandir, real_stat = os.scandir, Path.stat
    monkeypatch.setattr(os, "scandir", lambda path=".": scans.append(path) or real_scandir(path))
    monkeypatch.setattr(Path, "stat", lambda self, **kw: stats.append(self) or real_stat(self, **kw))
    ds = open_dataset("cityscapes", root, "train")
    monkeypatch.undo()
    assert len(ds) == cities * per_city and len(ds.instances) == cities * per_city
    assert len(scans) <= 1 + 2 * cities, scans  # the image root, then each city's images and labels
    assert len(stats) < per_city, stats  # a few per city at most, never one per image


def test_voc_sbd_masks_and_aug_split(tmp_path):
    root = make_voc(tmp_path)
    extra = "2008_000099"
    Image.new("RGB", (32, 24)).save(root / "JPEGImages" / f"{extra}.jpg")
    (root / "SegmentationClassAug").mkdir()
    Image.fromarray(np.full((24, 32), 7, np.uint8)).save(root / "SegmentationClassAug" / f"{extra}.png")  # SBD: gray PNGs
    (root / "ImageSets" / "SegmentationAug").mkdir()
    (root / "ImageSets" / "SegmentationAug" / "train_aug.txt").write_text(f"2007_000000\n{extra}\n")
    ds = open_dataset("voc", root, "train_aug")
    assert [p.parent.name for p in ds.masks] == ["SegmentationClass", "SegmentationClassAug"]
    assert (ds.load(1)[1] == 7).all()
    result = CliRunner().invoke(cli, ["data", "check", "--format", "voc", str(root), "--split", "nope"])
    assert result.exit_code == 2 and "ImageSets/Segmentation/nope.txt: split list not found" in result.output


def test_items_decode_in_loader_workers(tmp_path):
    import torch

    from segdil.config import DataConfig
    from segdil.data.loader import build_loader
    from segdil.data.transforms import build_val_transform

    make_cityscapes(tmp_path)
    ds = open_dataset("cityscapes", tmp_path, "train", build_val_transform(DataConfig()))
    batches = list(build_loader(ds, 3, num_workers=2))
    images, masks = batches[0]
    assert images.shape == (3, 3, 32, 64) and masks.dtype == torch.int64 and int(masks.max()) == 255
