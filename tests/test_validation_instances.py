"""Validation during training counts objects as `segdil eval` does: instances where the data has
instance maps (same evaluator, same numbers on the same checkpoint), components elsewhere; and its
per-class IoU reaches metrics.jsonl and TensorBoard."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from dataset_fixtures import make_cityscapes, make_folder_with_instances
from helpers import TINY_SYNTH

from segdil.cli import cli
from segdil.config import load_config
from segdil.data import build_datasets
from segdil.metrics import Evaluator
from segdil.models import create_model
from segdil.train.logger import RunLogger
from segdil.train.validate import validate

ROOT = Path(__file__).resolve().parent.parent
SCORES = ("mIoU", "per_class_iou", "bins", "small_object_iou", "iIoU", "per_class_iiou", "num_objects", "object_source", "iiou_weights")


def _train_then_eval(tmp_path: Path, root: Path, fmt: str, extra: list[str]) -> tuple[dict, dict]:
    from segdil.train.main import train

    overrides = [f"data.root={root}", f"data.format={fmt}", "data.num_workers=0", "data.crop_size=32", "train.batch_size=2", "train.max_steps=2", "train.warmup_steps=0",
                 "train.device=cpu", "train.precision=fp32", "model.widths=[4]", "model.blocks=1", *extra]  # fmt: skip
    metrics = train(load_config(ROOT / "configs" / "hdc_synth.yaml", overrides), work_dir=str(tmp_path / "run"), quiet=True)
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(cli, ["eval", "--checkpoint", str(tmp_path / "run" / "last.pt"), "--data", str(root), "--format", fmt, "--device", "cpu", "--precision", "fp32", "--no-fuse", "--json", str(out)])
    assert result.exit_code == 0, result.output
    return metrics, json.loads(out.read_text())


def test_folder_instances_validation_agrees_with_eval(tmp_path):
    # each validation image: two touching instances (one component) and a third object
    validation, evaluated = _train_then_eval(tmp_path, make_folder_with_instances(tmp_path), "folder", ["data.val_split=val"])
    assert validation["object_source"] == "instances" and validation["num_objects"] == 6  # 4 as components
    assert validation["iiou_weights"] == "average instance sizes of the train split"
    for key in SCORES:
        assert validation[key] == evaluated[key], key


def test_cityscapes_validation_agrees_with_eval(tmp_path):
    validation, evaluated = _train_then_eval(tmp_path, make_cityscapes(tmp_path), "cityscapes", ["eval.background_class=null"])
    assert validation["object_source"] == "instances" and validation["iiou_weights"] == "cityscapes official average instance sizes"
    for key in SCORES:
        assert validation[key] == evaluated[key], key


def test_validation_without_instance_maps_keeps_the_plain_evaluator():
    cfg = load_config(ROOT / "configs" / "hdc_synth.yaml", [*TINY_SYNTH, "data.synth.n_train=2", "data.synth.max_object=16"])
    _, val_ds, names = build_datasets(cfg.data)
    assert getattr(val_ds, "instances", None) is None
    torch.manual_seed(0)
    model = create_model("hdc", num_classes=len(names), widths=[4], blocks=1)
    loader = torch.utils.data.DataLoader(val_ds, batch_size=1)
    metrics, _ = validate(model, loader, len(names), cfg, torch.device("cpu"), torch.autocast("cpu", enabled=False))
    expected = Evaluator(len(names), size_bins=tuple(cfg.eval.size_bins), small_threshold=cfg.eval.small_threshold, background_class=cfg.eval.background_class)
    with torch.no_grad():
        for images, masks in loader:
            expected.update(model(images).argmax(1), masks)
    assert "object_source" not in metrics and metrics == expected.compute()


def test_per_class_iou_in_metrics_jsonl_and_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = RunLogger(tmp_path, enabled=True, total_steps=4, stream=io.StringIO())
    log.validation(4, {"mIoU": 0.5, "per_class_iou": [0.9, None, 0.1]}, ["background", "disc", "traffic sign"])
    log.close()
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["val_iou_per_class"] == {"background": 0.9, "disc": None, "traffic sign": 0.1}
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"val_iou_per_class/background", "val_iou_per_class/traffic sign", "val/mIoU"} <= set(tags) and "val_iou_per_class/disc" not in tags
    assert events.Scalars("val_iou_per_class/traffic sign")[0].value == pytest.approx(0.1) and events.Scalars("val_iou_per_class/background")[0].step == 4


def test_street_scenes_in_memory_validate_as_eval_scores_them_written(tmp_path):
    from segdil.checkpoint import save_checkpoint
    from segdil.data.synth_write import write_synthetic

    cfg = load_config(ROOT / "configs" / "street" / "hdc.yaml", ["data.synth.size=64", "data.synth.n_train=1", "data.synth.n_val=2", "data.num_workers=0", "train.device=cpu", "model.widths=[4]", "model.blocks=1"])
    _, val_ds, names = build_datasets(cfg.data)
    torch.manual_seed(0)
    args = {**cfg.model, "num_classes": len(names)}
    model = create_model(**args)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(val_ds, [0, 1]), batch_size=2)
    metrics, _ = validate(model, loader, len(names), cfg, torch.device("cpu"), torch.autocast("cpu", enabled=False))
    assert metrics["object_source"] == "instances" and metrics["iiou_weights"] == "cityscapes official average instance sizes"

    root = write_synthetic(tmp_path / "street", cfg.data.synth)
    ckpt = tmp_path / "model.pt"
    save_checkpoint({"model_args": args, "model": model.state_dict(), "config": cfg.to_dict(), "class_names": names}, ckpt)
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(cli, ["eval", "--checkpoint", str(ckpt), "--data", str(root), "--format", "cityscapes", "--device", "cpu", "--precision", "fp32", "--no-fuse", "--json", str(out)])
    assert result.exit_code == 0, result.output
    evaluated = json.loads(out.read_text())
    for key in SCORES:
        assert metrics[key] == evaluated[key], key


def test_compare_tta_scores_count_instances_as_eval_tta_does(tmp_path):
    from segdil.checkpoint import save_checkpoint
    from segdil.compare.tta_eval import tta_metrics
    from segdil.data.synth_write import write_synthetic
    from segdil.inference.tta import parse_tta

    cfg = load_config(ROOT / "configs" / "street" / "hdc.yaml", ["data.synth.size=64", "data.synth.n_train=1", "data.synth.n_val=2", "data.num_workers=0", "train.device=cpu", "model.widths=[4]", "model.blocks=1"])
    _, val_ds, names = build_datasets(cfg.data)
    torch.manual_seed(0)
    args = {**cfg.model, "num_classes": len(names)}
    ckpt = tmp_path / "model.pt"
    save_checkpoint({"model_args": args, "model": create_model(**args).state_dict(), "config": cfg.to_dict(), "class_names": names}, ckpt)
    scores = json.loads(json.dumps(tta_metrics(cfg, ckpt, parse_tta(("flip",)), val_ds, len(names))))
    assert scores["object_source"] == "instances"

    root = write_synthetic(tmp_path / "street", cfg.data.synth)
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(cli, ["eval", "--checkpoint", str(ckpt), "--data", str(root), "--format", "cityscapes", "--device", "cpu", "--tta", "flip", "--json", str(out)])
    assert result.exit_code == 0, result.output
    evaluated = json.loads(out.read_text())
    for key in SCORES:
        assert scores[key] == evaluated[key], key
