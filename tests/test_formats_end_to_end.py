"""Each layout, as shipped: `data check`, 3 training steps, `eval` (format from the checkpoint), `predict --recursive`."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from dataset_fixtures import (
    make_ade20k,
    make_cityscapes,
    make_folder_with_instances,
    make_voc,
)
from PIL import Image

from segdil.cli import cli
from segdil.config import load_config
from segdil.data.cityscapes import TRAIN_TO_LABEL_ID
from segdil.train.main import train

ROOT = Path(__file__).resolve().parent.parent

LAYOUTS = {
    # format: (fixture, root given to segdil relative to tmp_path, image folder for predict, classes)
    "folder": (make_folder_with_instances, "mine", "mine/val/images", 2),
    "voc": (make_voc, ".", "VOCdevkit/VOC2012/JPEGImages", 21),
    "cityscapes": (lambda p: make_cityscapes(p, h=32, w=64), "cityscapes", "cityscapes/leftImg8bit/val", 19),
    "ade20k": (make_ade20k, "ADEChallengeData2016", "ADEChallengeData2016/images/validation", 150),
}


def _run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("fmt", list(LAYOUTS))
def test_check_train_eval_predict(fmt, tmp_path):
    torch.set_num_threads(1)
    make, root, images, num_classes = LAYOUTS[fmt]
    make(tmp_path)
    root = tmp_path / root
    assert "no problems found" in _run("data", "check", "--format", fmt, root)
    overrides = [
        f"data.root={root}", f"data.format={fmt}", "data.crop_size=16", "data.scale_range=[1, 1]", "data.num_workers=0",
        "train.max_steps=3", "train.batch_size=2", "train.warmup_steps=0", "train.val_every=1000", "train.ckpt_every=1000",
        "model.widths=[8]", "model.blocks=1",
    ]  # fmt: skip
    cfg = load_config(ROOT / "configs" / "hdc_synth.yaml", overrides)
    train(cfg, work_dir=str(tmp_path / "run"), quiet=True)
    ckpt = tmp_path / "run" / "last.pt"
    assert torch.load(ckpt, weights_only=True)["model_args"]["num_classes"] == num_classes
    _run("eval", "--checkpoint", ckpt, "--data", root, "--device", "cpu", "--json", tmp_path / "val.json")
    metrics = json.loads((tmp_path / "val.json").read_text())
    assert len(metrics["class_names"]) == num_classes and metrics["num_images"] == 2
    assert metrics.get("object_source") == ("instances" if fmt in ("folder", "cityscapes") else None)
    if fmt == "folder":  # iIoU weights: the training split's average instance size
        assert metrics["iiou_weights"] == "average instance sizes of the train split"
    _run("predict", ckpt, tmp_path / images, "--out", tmp_path / "pred", "--recursive", "--device", "cpu")
    written = sorted(p.relative_to(tmp_path / "pred") for p in (tmp_path / "pred").rglob("*.png"))
    sources = sorted(p.relative_to(tmp_path / images).with_suffix(".png") for p in (tmp_path / images).rglob("*") if p.is_file())
    assert written == sources
    if fmt == "cityscapes":  # city/<stem>_leftImg8bit.png index masks of train IDs
        assert [str(p) for p in written] == ["frankfurt/frankfurt_000000_000019_leftImg8bit.png", "lindau/lindau_000001_000019_leftImg8bit.png"]
        _official_agrees(tmp_path, root, written, metrics)


def _official_agrees(tmp_path, root, written, metrics):
    """`segdil eval --json` on Cityscapes equals cityscapesscripts on the predictions `segdil predict` wrote."""
    cs = pytest.importorskip("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling")
    if not hasattr(np, "in1d"):  # removed in numpy 2.4; the official code still calls it
        np.in1d = lambda a, b, invert=False: np.isin(np.ravel(a), b, invert=invert)
    cs.args.quiet, cs.args.JSONOutput, cs.args.evalInstLevelScore = True, False, True
    preds, gts = [], []
    for rel in written:
        train_ids = np.array(Image.open(tmp_path / "pred" / rel))
        out = tmp_path / "label_ids" / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(TRAIN_TO_LABEL_ID[train_ids]).save(out)
        preds.append(str(out))
        gts.append(str(root / "gtFine" / "val" / rel.parent / rel.name.replace("_leftImg8bit", "_gtFine_labelIds")))
    official = cs.evaluateImgLists(preds, gts, cs.args)
    assert abs(metrics["mIoU"] - official["averageScoreClasses"]) < 1e-6
    official_iiou = official["averageScoreInstClasses"]
    print(f"cityscapes end to end: mIoU {metrics['mIoU']!r} vs {official['averageScoreClasses']!r}, iIoU {metrics['iIoU']!r} vs {official_iiou!r}")
    assert (metrics["iIoU"] is None and np.isnan(official_iiou)) or abs(metrics["iIoU"] - official_iiou) < 1e-6


def test_eval_format_option_overrides_the_checkpoint(tmp_path):
    from helpers import make_checkpoint

    ckpt = make_checkpoint(tmp_path / "best.pt")  # 3 classes, folder format in its config
    make_cityscapes(tmp_path)
    result = CliRunner().invoke(cli, ["eval", "--checkpoint", str(ckpt), "--data", str(tmp_path / "cityscapes"), "--format", "cityscapes", "--device", "cpu"])
    assert result.exit_code == 2 and "19 train IDs" in result.output and len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(cli, ["eval", "--checkpoint", str(ckpt), "--data", str(tmp_path / "cityscapes"), "--device", "cpu"])
    assert result.exit_code == 2 and "classes.yaml" in result.output  # read as the checkpoint's folder format
