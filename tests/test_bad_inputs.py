"""Bad inputs a user can type (issues #14, #30). Each row: exit code, one line naming the file or key, no
traceback, and no file under the test folder created, changed or removed (hashed before and after).

The rows of this file are ``CASES`` below and the area tables of ``tests/bad_input_cases/`` (one module per area),
all run by :func:`test_bad_input_is_one_line_and_changes_nothing`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from bad_input_cases import AREA_CASES
from bad_input_kit import (
    BOMB,
    CONFIG,
    assert_one_line_error,
    checkpoint,
    dataset,
    header_only_png,
    invoke,
    snapshot,
    train_args,
)
from helpers import make_checkpoint
from PIL import Image

from segdil.data.io import save_mask


def _ckpt_and_data(t: Path) -> tuple[Path, Path]:
    return checkpoint(t / "model.pt"), dataset(t / "data")


def _hardlink(t: Path) -> list:
    ckpt = checkpoint(t / "model.pt")
    os.link(ckpt, t / "link.onnx")
    return ["export", ckpt, "--onnx", t / "link.onnx"]


def _symlink_json(t: Path) -> list:
    ckpt, data = _ckpt_and_data(t)
    (t / "alias.json").symlink_to(ckpt)
    return ["eval", "--checkpoint", ckpt, "--data", data, "--device", "cpu", "--json", t / "alias.json"]


def _pred_folders(t: Path) -> tuple[Path, Path]:
    gt = dataset(t / "data") / "val" / "masks"
    pred = t / "pred"
    shutil.copytree(gt, pred)
    return pred, gt


def _existing(t: Path, name: str) -> Path:
    (t / name).write_text("keep me\n")
    return t / name


def _zero(t: Path) -> Path:
    (t / "empty.pt").write_bytes(b"")
    return t / "empty.pt"


def _pickle_payload(t: Path) -> Path:
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"model_args": {"name": "hdc"}, "model": {}, "extra": Payload()}, t / "evil.pt")
    return t / "evil.pt"


def _classes_bomb(t: Path) -> Path:
    root = dataset(t / "data")
    (root / "classes.yaml").write_text(BOMB + "classes: *g\n")
    return root


def _tiny_image(t: Path) -> Path:
    def odd(root: Path) -> None:
        Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(root / "train" / "images" / "tiny.png")
        save_mask(root / "train" / "masks" / "tiny.png", np.zeros((1, 1), np.uint8))

    return dataset(t / "data", odd=odd)


def _binary_mask(t: Path) -> Path:
    def odd(root: Path) -> None:
        mask = np.zeros((24, 24), np.uint8)
        mask[3:9, 3:9] = 255
        save_mask(root / "train" / "masks" / "b.png", mask)

    return dataset(t / "data", odd=odd)


CASES: dict[str, tuple[Callable[[Path], list], int, tuple[str, ...]]] = {
    # 1, 2: outputs never replace inputs, and existing outputs only with --overwrite
    "export-onnx-is-checkpoint": (lambda t: ["export", checkpoint(t / "model.pt"), "--onnx", t / "model.pt", "--overwrite"], 2, ("--onnx", "is the input")),
    "export-onnx-hardlink-of-checkpoint": (_hardlink, 2, ("link.onnx", "is the input")),
    "export-onnx-exists": (lambda t: ["export", checkpoint(t / "model.pt"), "--onnx", _existing(t, "old.onnx")], 2, ("old.onnx", "already exists", "--overwrite")),
    "eval-json-is-checkpoint": (lambda t: ["eval", "--checkpoint", (p := _ckpt_and_data(t))[0], "--data", p[1], "--device", "cpu", "--json", p[0], "--overwrite"], 2, ("--json", "is the input")),
    "eval-json-symlink-to-checkpoint": (_symlink_json, 2, ("alias.json", "is the input")),
    "eval-json-is-a-mask-of-the-data": (lambda t: ["eval", "--checkpoint", (p := _ckpt_and_data(t))[0], "--data", p[1], "--device", "cpu", "--json", p[1] / "val" / "masks" / "a.png", "--overwrite"], 2, ("a.png", "inside the input folder")),
    "eval-json-exists": (lambda t: ["eval", "--pred", (p := _pred_folders(t))[0], "--gt", p[1], "--num-classes", 3, "--json", _existing(t, "m.json")], 2, ("m.json", "already exists")),
    "bench-json-is-config": (lambda t: ["bench", "--model", shutil.copy(CONFIG, t / "c.yaml"), "--json", t / "c.yaml"], 2, ("c.yaml", "is the input")),
    "rf-erf-is-config": (lambda t: ["rf", "--config", shutil.copy(CONFIG, t / "c.yaml"), "--erf", t / "c.yaml"], 2, ("--erf", "is the input")),
    "rf-plot-exists": (lambda t: ["rf", "--rates", "1,2,5", "--plot", _existing(t, "rf.png")], 2, ("rf.png", "already exists")),
    # 5: ranges at config load
    "max_steps-0": (lambda t: train_args(t / "run", "train.max_steps=0"), 2, ("train.max_steps", ">= 1")),
    "max_steps-negative": (lambda t: train_args(t / "run", "train.max_steps=-5"), 2, ("train.max_steps", ">= 1")),
    "val_every-0": (lambda t: train_args(t / "run", "train.val_every=0"), 2, ("train.val_every", ">= 1")),
    "batch_size-0": (lambda t: train_args(t / "run", "train.batch_size=0"), 2, ("train.batch_size", ">= 1")),
    "lr-negative": (lambda t: train_args(t / "run", "train.lr=-1"), 2, ("train.lr", "> 0")),
    "rates-0": (lambda t: train_args(t / "run", "model.rates=[0]"), 2, ("model", "rates")),
    "rates-negative": (lambda t: train_args(t / "run", "model.rates=[-1]"), 2, ("model", "rates")),
    # 6: a zero-byte checkpoint
    "predict-empty-checkpoint": (lambda t: ["predict", _zero(t), dataset(t / "data") / "val" / "images", "--out", t / "out"], 2, ("empty.pt", "empty file")),
    "eval-empty-checkpoint": (lambda t: ["eval", "--checkpoint", _zero(t), "--data", dataset(t / "data"), "--device", "cpu"], 2, ("empty.pt", "empty file")),
    "export-empty-checkpoint": (lambda t: ["export", _zero(t), "--onnx", t / "m.onnx"], 2, ("empty.pt", "empty file")),
    # 7: crafted model_args
    "ckpt-wrong-shapes": (lambda t: ["export", checkpoint(t / "m.pt", widths=[16]), "--onnx", t / "m.onnx"], 2, ("m.pt", "wrong shape")),
    "ckpt-no-name": (lambda t: ["eval", "--checkpoint", checkpoint(t / "m.pt", name=None), "--data", dataset(t / "data"), "--device", "cpu"], 2, ("m.pt", "model.name")),
    "ckpt-unknown-argument": (lambda t: ["export", checkpoint(t / "m.pt", colour="red"), "--onnx", t / "m.onnx"], 2, ("m.pt", "model.colour")),
    "ckpt-huge-widths": (lambda t: ["export", checkpoint(t / "m.pt", widths=[65536]), "--onnx", t / "m.onnx"], 2, ("m.pt", "wrong shape")),
    "ckpt-pickle-payload": (lambda t: ["export", _pickle_payload(t), "--onnx", t / "m.onnx"], 2, ("evil.pt", "not a segdil checkpoint")),
    # 8: images smaller than training can take
    "data-check-1x1-image": (lambda t: ["data", "check", _tiny_image(t)], 2, ("tiny.png", "smaller than 8x8")),
    "train-1x1-image": (lambda t: train_args(t / "run", f"data.root={_tiny_image(t)}"), 2, ("tiny.png", "smaller than 8x8")),
    # 9: --work-dir is a file
    "work-dir-is-file": (lambda t: train_args(_existing(t, "notes.txt")), 2, ("notes.txt", "is a file")),
    "work-dir-under-file": (lambda t: train_args(_existing(t, "notes.txt") / "run"), 2, ("notes.txt", "is a file")),
    # 11: YAML alias bombs
    "bomb-model-name": (lambda t: train_args(t / "run", config=(_existing(t, "c.yaml").write_text(BOMB + "model: {name: *g}\n"), t / "c.yaml")[1]), 2, ("c.yaml", "aliases")),
    "bomb-base": (lambda t: train_args(t / "run", config=(_existing(t, "b.yaml").write_text(BOMB), _existing(t, "c.yaml").write_text("base: b.yaml\n"), t / "c.yaml")[2]), 2, ("b.yaml", "aliases")),
    "bomb-classes-yaml": (lambda t: ["data", "check", _classes_bomb(t)], 2, ("classes.yaml", "aliases")),
    "bomb-set-value": (lambda t: train_args(t / "run", "model.name={" + BOMB.replace("\n", ", ") + "}"), 2, ("--set model.name", "aliases")),
    "long-value-bounded": (lambda t: train_args(t / "run", "train.max_steps=[" + ",".join(["1"] * 5000) + "]"), 2, ("train.max_steps", "...")),
    # 12: pixel limit, refused by name before decoding
    "data-check-huge-header": (lambda t: ["data", "check", dataset(t / "data", odd=lambda r: header_only_png(r / "train" / "images" / "a.png", 20000, 20000))], 2, ("a.png", "20000x20000", "SEGDIL_MAX_IMAGE_PIXELS")),
    # 13: checkpoint and data classes differ
    "eval-class-count-mismatch": (lambda t: ["eval", "--checkpoint", checkpoint(t / "m.pt", num_classes=5), "--data", dataset(t / "data"), "--device", "cpu"], 2, ("m.pt", "class count", "'bg', 'a', 'b', 'c', 'd'", "'bg', 'a', 'b']")),
    "eval-class-name-mismatch": (lambda t: ["eval", "--checkpoint", checkpoint(t / "m.pt"), "--data", dataset(t / "data", names=("sky", "car", "dog")), "--device", "cpu"], 2, ("class names", "'sky'", "'bg'")),
    # 14: one 0/255 mask among index masks
    "data-check-one-binary-mask": (lambda t: ["data", "check", _binary_mask(t)], 2, ("1 problem",)),
}
assert not CASES.keys() & AREA_CASES.keys(), CASES.keys() & AREA_CASES.keys()
CASES.update(AREA_CASES)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_is_one_line_and_changes_nothing(case, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    setup, code, needles = CASES[case]
    args = setup(tmp_path)
    before = snapshot(tmp_path)
    result = invoke(args)
    assert_one_line_error(result, code, *needles, listed=args[:2] == ["data", "check"])
    assert snapshot(tmp_path) == before


def test_classes_by_index_scores_under_the_data_names(tmp_path):
    ckpt = checkpoint(tmp_path / "m.pt")
    root = dataset(tmp_path / "data", names=("sky", "car", "dog"))
    result = invoke(["eval", "--checkpoint", ckpt, "--data", root, "--device", "cpu", "--classes-by-index", "--json", tmp_path / "m.json"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "m.json").read_text())["class_names"] == ["sky", "car", "dog"]
    # a different count is refused even then
    result = invoke(["eval", "--checkpoint", checkpoint(tmp_path / "m5.pt", num_classes=5), "--data", root, "--device", "cpu", "--classes-by-index"])
    assert_one_line_error(result, 2, "class counts")


def test_binary_mask_is_named_among_index_masks(tmp_path):
    result = invoke(["data", "check", _binary_mask(tmp_path)])
    assert result.exit_code == 2
    assert f"{tmp_path / 'data' / 'train' / 'masks' / 'b.png'}: looks like a 0/255 binary mask" in result.output


def test_pixel_limit_is_configurable(tmp_path, monkeypatch):
    root = dataset(tmp_path / "data")
    assert invoke(["data", "check", root]).exit_code == 0
    monkeypatch.setenv("SEGDIL_MAX_IMAGE_PIXELS", "100")
    result = invoke(["data", "check", root])
    assert result.exit_code == 2 and "24x24 image (576 pixels) is larger than the limit of 100 pixels" in result.output


def test_predict_refuses_a_huge_image_by_name(tmp_path):
    ckpt = checkpoint(tmp_path / "m.pt")
    image = header_only_png(tmp_path / "huge.png", 20000, 20000)
    result = invoke(["predict", ckpt, image, "--out", tmp_path / "out", "--device", "cpu"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "MemoryError" not in result.output
    assert f"{image}: 20000x20000 image" in result.output
    assert not list((tmp_path / "out").rglob("*.png")) if (tmp_path / "out").exists() else True


def test_pickle_refusal_never_suggests_weights_only_false(tmp_path):
    result = invoke(["export", _pickle_payload(tmp_path), "--onnx", tmp_path / "m.onnx"])
    assert result.exit_code == 2 and "weights_only" not in result.output and "pwned" not in result.output


def test_eval_pred_names_ignored_predictions(tmp_path):
    pred, gt = _pred_folders(tmp_path)
    for stem in ("extra1", "extra2"):
        shutil.copy(pred / "a.png", pred / f"{stem}.png")
    result = invoke(["eval", "--pred", pred, "--gt", gt, "--num-classes", 3])
    assert result.exit_code == 0, result.output
    text = result.output  # stdout and stderr
    assert "2 file(s)" in text and "extra1.png" in text and "not scored" in text


def test_synth_default_max_object_adapts_to_size(tmp_path):
    result = invoke(["data", "synth", tmp_path / "s", "--size", "64", "--n-train", "2", "--n-val", "1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s" / "train" / "images").is_dir()
    # an explicit value that cannot fit is still refused
    result = invoke(["data", "synth", tmp_path / "t", "--size", "64", "--max-object", "60", "--n-train", "2", "--n-val", "1"])
    assert result.exit_code == 2 and "max_object" in result.output and not (tmp_path / "t").exists()


def test_export_overwrite_replaces_an_existing_output(tmp_path):
    pytest.importorskip("onnxruntime")
    ckpt = make_checkpoint(tmp_path / "m.pt")
    _existing(tmp_path, "m.onnx")
    result = invoke(["export", ckpt, "--onnx", tmp_path / "m.onnx", "--height", 32, "--width", 32, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m.onnx").read_bytes() != b"keep me\n"


def test_training_on_bad_data_creates_no_work_dir(tmp_path):
    def odd(root: Path) -> None:
        (root / "val" / "masks" / "b.png").write_bytes(b"")

    root = dataset(tmp_path / "data", odd=odd)
    result = invoke(train_args(tmp_path / "run", f"data.root={root}"))
    assert_one_line_error(result, 2, "b.png")
    assert not (tmp_path / "run").exists()


def test_stub_work_dir_is_reused(tmp_path):
    """A work dir left by a run that never saved (config.yaml, empty metrics.jsonl, tb/) is not a run."""
    run = tmp_path / "run"
    (run / "tb").mkdir(parents=True)
    (run / "config.yaml").write_text("name: old\n")
    (run / "metrics.jsonl").write_text("")
    result = invoke(["train", CONFIG, "--work-dir", run, "--resume"])
    line = assert_one_line_error(result, 2, "last.pt not found", "without --resume")
    assert "before its first checkpoint" in line
    result = invoke(train_args(run))
    assert result.exit_code == 0, result.output
    assert (run / "last.pt").is_file()
    # a folder with someone else's files is not reused
    other = tmp_path / "other"
    other.mkdir()
    _existing(other, "thesis.tex")
    assert_one_line_error(invoke(train_args(other)), 2, "not empty and holds no checkpoint")
