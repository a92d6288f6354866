"""One inference path: for one trained checkpoint and the same images, ``segdil compare --tta``'s
scoring, ``segdil eval --tta``, ``segdil predict --tta`` and ``segdil.load(ckpt).predict(tta=...)``
give identical masks and identical metrics (all of them go through ``inference.engine.Predictor``
and ``inference.tta.tta_logits``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import segdil
from segdil.cli import cli
from segdil.compare.tta_eval import tta_masks, tta_metrics
from segdil.config import SynthConfig, load_config
from segdil.data import build_datasets
from segdil.data.io import load_mask
from segdil.data.synth_write import write_synthetic
from segdil.inference.engine import Predictor
from segdil.inference.tta import parse_tta
from segdil.train.main import train

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, object]:
    """(last.pt of a tiny HDC trained a few steps, the synthetic benchmark it trained on, written
    to disk so that eval and predict read the same images, the run's config)."""
    tmp = tmp_path_factory.mktemp("one_path")
    root = write_synthetic(tmp / "data", SynthConfig(n_train=8, n_val=3, size=40, max_object=16))
    overrides = [
        f"data.root={root}", "data.crop_size=32", "data.num_workers=0",
        "model.widths=[8]", "model.blocks=1", "train.device=cpu", "train.max_steps=6", "train.batch_size=4",
        "train.warmup_steps=1", "train.val_every=1000", "train.ckpt_every=1000",
    ]
    cfg = load_config(ROOT / "configs" / "hdc_synth.yaml", overrides)
    train(cfg, work_dir=str(tmp / "run"), quiet=True)
    return tmp / "run" / "last.pt", root, cfg


@pytest.fixture
def predictor_calls(monkeypatch) -> list[int]:
    """The number of images of every ``Predictor.logits`` call."""
    calls: list[int] = []
    real = Predictor.logits
    monkeypatch.setattr(Predictor, "logits", lambda self, images: calls.append(len(images)) or real(self, images))
    return calls


def through_the_predictor(calls: list[int], images: int) -> bool:
    """Whether ``images`` images went through ``Predictor.logits`` since the last check."""
    done = sum(calls)
    calls.clear()
    return done == images


def run(*args) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("tta", [["flip"], []], ids=["flip", "no-tta"])
def test_every_command_and_the_api_predict_the_same_masks_and_scores(trained, tmp_path, tta, predictor_calls):
    ckpt, root, cfg = trained
    flags = [x for item in tta for x in ("--tta", item)]
    images = sorted((root / "val" / "images").glob("*.png"))
    gts = [load_mask(root / "val" / "masks" / p.name) for p in images]
    views = 3 * len(parse_tta(tta).views() if tta else [None])  # images x views predicted by each path

    run("predict", ckpt, root / "val" / "images", "--out", tmp_path / "pred", "--device", "cpu", *flags)
    assert through_the_predictor(predictor_calls, views)
    predicted = [load_mask(tmp_path / "pred" / p.name) for p in images]
    model = segdil.load(ckpt, device="cpu")
    api = [model.predict(p, tta=tta or None) for p in images]
    assert through_the_predictor(predictor_calls, views)
    run("eval", "--checkpoint", ckpt, "--data", root, "--device", "cpu", "--json", tmp_path / "eval.json", *flags)
    assert through_the_predictor(predictor_calls, views)
    run("eval", "--pred", tmp_path / "pred", "--gt", root / "val" / "masks", "--num-classes", model.num_classes, "--json", tmp_path / "files.json")

    assert len(images) == 3 and len(np.unique(np.stack(predicted))) > 1  # a trained model, not a constant one
    for mask, other in zip(predicted, api):
        np.testing.assert_array_equal(mask, other)
    scores = json.loads((tmp_path / "eval.json").read_text())
    from_files = json.loads((tmp_path / "files.json").read_text())
    from_api = json.loads(json.dumps(segdil.evaluate(api, gts, model.num_classes)))
    keys = ("mIoU", "per_class_iou", "pixel_acc", "mean_acc", "mDice", "bins", "small_object_iou", "iIoU", "num_objects")
    for key in keys:
        assert scores[key] == from_files[key] == from_api[key], key

    if tta:  # compare --tta: its masks (the function its scores come from) and its scores
        spec = parse_tta(tta)
        _, val_ds, class_names = build_datasets(cfg.data)
        assert [Path(p).name for p in val_ds.images] == [p.name for p in images]
        compared = [mask.numpy() for preds, _, _ in tta_masks(cfg, ckpt, spec, val_ds) for mask in preds]
        assert through_the_predictor(predictor_calls, views)
        for mask, other in zip(predicted, compared, strict=True):
            np.testing.assert_array_equal(mask, other)
        compare_scores = json.loads(json.dumps(tta_metrics(cfg, ckpt, spec, val_ds, len(class_names))))
        for key in keys:
            assert compare_scores[key] == scores[key], key
